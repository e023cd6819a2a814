"""Property-based: random valid statements round-trip; random garbage is a ParseError at worst."""

from __future__ import annotations

import string

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sluice.errors import ParseError
from sluice.sql import ast, parse, render
from sluice.sql.render import ident as render_ident

PROFILE = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

names = st.one_of(
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,12}", fullmatch=True),
    st.text(string.ascii_letters + string.digits + " -.`é", min_size=1, max_size=12),
)
texts = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=20
)  # quotes, backslashes, newlines, NULs and non-ASCII included
numbers = st.integers(min_value=0, max_value=10**9)
variables = st.from_regex(r"@[A-Za-z_][A-Za-z0-9_]{0,8}", fullmatch=True)
literals = st.one_of(
    texts.map(lambda s: "'" + s.replace("'", "''") + "'"),
    st.integers(-(10**6), 10**6).map(str),
    st.sampled_from(["NULL", "TRUE", "FALSE", "1.5", "-0.25"]),
)


@st.composite
def expressions(draw: st.DrawFn, depth: int = 0) -> str:
    atom = st.one_of(
        names.filter(lambda n: n.isidentifier()),
        variables,
        st.integers(0, 999).map(str),
        texts.filter(lambda s: "\\" not in s).map(lambda s: "'" + s.replace("'", "''") + "'"),
    )
    if depth > 2 or draw(st.booleans()):
        return draw(atom)
    left, right = draw(expressions(depth + 1)), draw(expressions(depth + 1))
    form = draw(st.sampled_from(["{} + {}", "coalesce({}, {})", "({}) * ({})", "{} || {}"]))
    return form.format(left, right)


csv_specs = st.builds(
    ast.CsvSpec,
    fields_terminated_by=st.sampled_from([",", "\t", "|", ";"]),
    enclosed_by=st.sampled_from(["", '"', "'"]),
    optionally_enclosed=st.booleans(),
    escaped_by=st.sampled_from(["\\", "", "^"]),
    lines_starting_by=st.sampled_from(["", ">"]),
    lines_terminated_by=st.sampled_from(["\n", "\r\n", ";"]),
    ignore_lines=st.integers(0, 5),
    null_defined_by=st.none() | texts,
    explicit=st.booleans(),
).filter(lambda f: not (f.optionally_enclosed and not f.enclosed_by))
mappings = st.builds(
    ast.FieldMapping,
    target=st.one_of(names, variables),
    path=st.lists(names, max_size=3).map(tuple),
    default=st.none() | literals,
)
json_specs = st.builds(
    ast.MappedSpec,
    kind=st.just("JSON"),
    mappings=st.lists(mappings, min_size=1, max_size=4).map(tuple),
)
assignments = st.builds(ast.Assignment, column=names, expr=expressions())
optional_count = st.none() | numbers


@st.composite
def create_statements(draw: st.DrawFn) -> ast.CreatePipeline:
    fmt = draw(st.one_of(csv_specs, json_specs))
    return ast.CreatePipeline(
        name=draw(names),
        source=ast.SourceSpec(
            draw(st.sampled_from(["KAFKA", "FS", "S3"])),
            draw(texts),
            draw(st.none() | texts),
            draw(st.none() | texts),
        ),
        table=draw(names),
        format=fmt,
        or_replace=draw(st.booleans()),
        if_not_exists=draw(st.booleans()),
        batch_interval=draw(optional_count),
        max_partitions_per_batch=draw(optional_count),
        max_offsets_per_batch_partition=draw(optional_count),
        max_retries_per_batch_partition=draw(optional_count),
        duplicates=draw(st.sampled_from([None, "REPLACE", "IGNORE"])),
        skip_errors=draw(st.sampled_from([None, "ALL", "CONSTRAINT", "DUPLICATE KEY", "PARSER"])),
        stop_on_error=draw(st.none() | st.booleans()),
        columns=(
            draw(
                st.none() | st.lists(st.one_of(names, variables), min_size=1, max_size=4).map(tuple)
            )
            if isinstance(fmt, ast.CsvSpec)
            else None
        ),
        set=tuple(draw(st.lists(assignments, max_size=3))),
        where=draw(st.none() | expressions()),
        on_duplicate_key_update=tuple(draw(st.lists(assignments, max_size=2))),
    )


lifecycle = st.one_of(
    st.builds(ast.StartPipeline, names, st.booleans(), st.just(True), optional_count),
    st.builds(ast.StartPipeline, names, st.booleans()),
    st.builds(ast.StopPipeline, st.none() | names, st.booleans()).filter(
        lambda s: s.name is not None or not s.if_running
    ),
    st.builds(ast.DropPipeline, names, st.booleans()),
    st.builds(ast.ShowCreatePipeline, names, st.booleans()),
    st.builds(ast.TestPipeline, names, optional_count),
    st.builds(
        ast.AlterPipeline,
        names,
        offsets=st.none() | st.sampled_from(["EARLIEST", "LATEST", '{"0": 1}']),
        batch_interval=optional_count,
        max_partitions_per_batch=optional_count,
        config=st.none() | texts,
        credentials_keys=st.lists(st.tuples(names, texts), max_size=2).map(tuple),
        out_of_order=st.none() | st.booleans(),
        reload_transform=st.booleans(),
        drop_file=st.none() | texts,
        drop_partition=st.none() | texts,
        drop_orphan_files=st.booleans(),
    ).filter(lambda a: render(a) != f"ALTER PIPELINE {render_ident(a.name)}"),
    st.builds(
        ast.CreateLink,
        names,
        st.sampled_from(["KAFKA", "S3", "AZURE", "GCS", "HDFS", "HTTP"]),
        config=st.none() | texts,
        credentials=st.none() | texts,
        description=st.none() | texts,
    ),
    st.builds(ast.DropLink, names, st.booleans()),
    st.builds(ast.ShowLinks, st.none() | names),
    st.builds(ast.ExtractPipeline, names, texts),
    st.builds(ast.ProfilePipeline, names),
    st.builds(ast.ReplayErrors, names, st.none() | expressions()),
    st.builds(ast.ClearErrors, st.none() | names),
)


@PROFILE
@given(create_statements())
def test_random_create_statements_round_trip(stmt: ast.CreatePipeline) -> None:
    assert parse(render(stmt)) == stmt


@PROFILE
@given(lifecycle)
def test_random_lifecycle_statements_round_trip(stmt: ast.Statement) -> None:
    assert parse(render(stmt)) == stmt


HEADS = [
    "CREATE PIPELINE ", "CREATE OR REPLACE PIPELINE p AS LOAD DATA ", "START PIPELINE ",
    "STOP PIPELINE ", "ALTER PIPELINE p ", "SHOW CREATE PIPELINE ", "TEST PIPELINE p ",
    "REPLAY ERRORS FOR PIPELINE ", "CREATE PIPELINE p AS LOAD DATA KAFKA 'h/t' INTO TABLE t ",
    "", "DROP PIPELINE ",
]  # fmt: skip


@PROFILE
@given(st.sampled_from(HEADS), st.text(max_size=60))
def test_garbage_is_a_parse_error_never_another_exception(head: str, tail: str) -> None:
    try:
        parse(head + tail)
    except ParseError as err:
        assert err.line >= 1 and err.column >= 1
