"""Render pipeline statements back to canonical SQL (``parse(render(s)) == s``)."""

from __future__ import annotations

import re
from functools import singledispatch

from sluice.sql import ast

_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
_RESERVED = {
    "AS", "BY", "DEFAULT", "FORMAT", "FROM", "INTO", "LINES", "NULL", "ON", "SET", "TABLE",
    "WHERE", "SELECT", "KEY", "IGNORE", "REPLACE", "FIELDS", "COLUMNS", "DATA", "LOAD",
}  # fmt: skip
_ESCAPES = {"\\": "\\\\", "'": "\\'", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\0": "\\0"}


def ident(name: str) -> str:
    if _PLAIN.match(name) and name.upper() not in _RESERVED:
        return name
    return "`" + name.replace("`", "``") + "`"


def qualified(name: str) -> str:
    return ".".join(ident(part) for part in name.split("."))


def string(value: str) -> str:
    return "'" + "".join(_ESCAPES.get(c, c) for c in value) + "'"


def target(name: str) -> str:
    return name if name.startswith("@") else ident(name)


@singledispatch
def render(stmt: object, *, hide_secrets: bool = False) -> str:
    raise TypeError(f"cannot render {type(stmt).__name__}")


@render.register
def _(stmt: ast.CreatePipeline, *, hide_secrets: bool = False) -> str:
    head = ["CREATE"]
    if stmt.or_replace:
        head.append("OR REPLACE")
    if stmt.aggregator:
        head.append("AGGREGATOR")
    head.append("PIPELINE")
    if stmt.if_not_exists:
        head.append("IF NOT EXISTS")
    head += [ident(stmt.name), "AS"]
    lines = [" ".join(head), _source(stmt.source, hide_secrets)]
    lines += _options(stmt)
    into = "PROCEDURE" if stmt.into_procedure else "TABLE"
    lines.append(f"INTO {into} {qualified(stmt.table)}")
    lines += _format(stmt.format)
    if stmt.columns is not None:
        lines.append("(" + ", ".join(target(c) for c in stmt.columns) + ")")
    if stmt.set:
        lines.append("SET " + _assignments(stmt.set))
    if stmt.where is not None:
        lines.append(f"WHERE {stmt.where}")
    if stmt.on_duplicate_key_update:
        lines.append("ON DUPLICATE KEY UPDATE " + _assignments(stmt.on_duplicate_key_update))
    return "\n".join(lines)


def _source(src: ast.SourceSpec, hide_secrets: bool) -> str:
    link = f" {qualified(src.link)}" if src.link is not None else ""
    out = f"LOAD DATA {src.kind}{link} {string(src.uri)}"
    if src.config is not None:
        out += f"\nCONFIG {string(src.config)}"
    if src.credentials is not None:
        out += "\nCREDENTIALS " + ("'<hidden>'" if hide_secrets else string(src.credentials))
    return out


def _options(stmt: ast.CreatePipeline) -> list[str]:
    out = []
    if stmt.resource_pool is not None:
        out.append(f"RESOURCE POOL {ident(stmt.resource_pool)}")
    for key in (
        "batch_interval",
        "max_partitions_per_batch",
        "max_offsets_per_batch_partition",
        "max_retries_per_batch_partition",
    ):
        value = getattr(stmt, key)
        if value is not None:
            out.append(f"{key.upper()} {value}")
    if stmt.retry_options is not None:
        out.append(f"RETRY_OPTIONS {string(stmt.retry_options)}")
    if stmt.out_of_order is not None:
        out.append(("ENABLE" if stmt.out_of_order else "DISABLE") + " OUT_OF_ORDER OPTIMIZATION")
    if stmt.offsets_metadata_gc is not None:
        out.append(("ENABLE" if stmt.offsets_metadata_gc else "DISABLE") + " OFFSETS METADATA GC")
    if stmt.transform is not None:
        out.append("WITH TRANSFORM " + render_transform(stmt.transform))
    if stmt.stop_on_error is not None:
        out.append("STOP_ON_ERROR " + ("ON" if stmt.stop_on_error else "OFF"))
    if stmt.duplicates is not None:
        out.append(stmt.duplicates)
    if stmt.skip_errors is not None:
        out.append(f"SKIP {stmt.skip_errors} ERRORS")
    return out


@render.register
def _(stmt: ast.CreateProcedure, *, hide_secrets: bool = False) -> str:
    head = "CREATE OR REPLACE PROCEDURE" if stmt.or_replace else "CREATE PROCEDURE"
    columns = ", ".join(f"{ident(c)} {t}" for c, t in stmt.columns)
    body = "".join(f"  {s};\n" for s in stmt.body)
    return (
        f"{head} {qualified(stmt.name)} ({ident(stmt.param)} QUERY({columns})) AS\nBEGIN\n{body}END"
    )


@render.register
def _(stmt: ast.DropProcedure, *, hide_secrets: bool = False) -> str:
    return f"DROP PROCEDURE {'IF EXISTS ' if stmt.if_exists else ''}{qualified(stmt.name)}"


@render.register
def _(stmt: ast.ShowCreateProcedure, *, hide_secrets: bool = False) -> str:
    return f"SHOW CREATE PROCEDURE {qualified(stmt.name)}"


def render_transform(t: ast.Transform) -> str:
    if t.python:
        return f"PYTHON {string(t.uri)}" + (f" {string(t.args)}" if t.args else "")
    return f"({string(t.uri)}, {string(t.executable)}, {string(t.args)})"


def _format(fmt: ast.FormatSpec) -> list[str]:
    if isinstance(fmt, ast.MappedSpec):
        head = f"FORMAT {fmt.kind}"
        if fmt.schema_registry is not None:
            head += f" SCHEMA REGISTRY {string(fmt.schema_registry)}"
        out = [head]
        if fmt.mappings:
            out.append("(\n  " + ",\n  ".join(_mapping(m) for m in fmt.mappings) + "\n)")
        if fmt.schema is not None:
            out.append(f"SCHEMA {string(fmt.schema)}")
        return out
    default = ast.CsvSpec()
    out = ["FORMAT CSV"] if fmt.explicit else []
    fields = []
    if fmt.fields_terminated_by != default.fields_terminated_by:
        fields.append(f"TERMINATED BY {string(fmt.fields_terminated_by)}")
    if fmt.enclosed_by or fmt.optionally_enclosed:
        opt = "OPTIONALLY " if fmt.optionally_enclosed else ""
        fields.append(f"{opt}ENCLOSED BY {string(fmt.enclosed_by)}")
    if fmt.escaped_by != default.escaped_by:
        fields.append(f"ESCAPED BY {string(fmt.escaped_by)}")
    if fields:
        out.append("FIELDS " + " ".join(fields))
    lines = []
    if fmt.lines_starting_by:
        lines.append(f"STARTING BY {string(fmt.lines_starting_by)}")
    if fmt.lines_terminated_by != default.lines_terminated_by:
        lines.append(f"TERMINATED BY {string(fmt.lines_terminated_by)}")
    if lines:
        out.append("LINES " + " ".join(lines))
    if fmt.ignore_lines:
        out.append(f"IGNORE {fmt.ignore_lines} LINES")
    if fmt.null_defined_by is not None:
        out.append(f"NULL DEFINED BY {string(fmt.null_defined_by)}")
    if fmt.trailing_nullcols:
        out.append("TRAILING NULLCOLS")
    return out


def _mapping(m: ast.FieldMapping) -> str:
    path = "::".join(ident(k) for k in m.path) if m.path else "%"
    out = f"{target(m.target)} <- {path}"
    if m.default is not None:
        out += f" DEFAULT {_literal(m.default)}"
    return out


def _literal(sql_literal: str) -> str:
    """A literal kept as standard SQL (``'it''s'``), written back with MySQL escapes."""
    if sql_literal.startswith("'"):
        return string(sql_literal[1:-1].replace("''", "'"))
    return sql_literal


def _assignments(items: tuple[ast.Assignment, ...]) -> str:
    return ", ".join(f"{ident(a.column)} = {a.expr}" for a in items)


@render.register
def _(stmt: ast.StartPipeline, *, hide_secrets: bool = False) -> str:
    if stmt.name is None:
        return "START ALL PIPELINES"
    out = "START PIPELINE " + ("IF NOT RUNNING " if stmt.if_not_running else "") + ident(stmt.name)
    if stmt.foreground:
        out += " FOREGROUND"
        if stmt.limit_batches is not None:
            out += f" LIMIT {stmt.limit_batches} BATCHES"
    return out


@render.register
def _(stmt: ast.StopPipeline, *, hide_secrets: bool = False) -> str:
    if stmt.name is None:
        return "STOP ALL PIPELINES"
    return "STOP PIPELINE " + ("IF RUNNING " if stmt.if_running else "") + ident(stmt.name)


@render.register
def _(stmt: ast.DropPipeline, *, hide_secrets: bool = False) -> str:
    return "DROP PIPELINE " + ("IF EXISTS " if stmt.if_exists else "") + ident(stmt.name)


@render.register
def _(stmt: ast.ShowPipelines, *, hide_secrets: bool = False) -> str:
    return "SHOW PIPELINES" + (f" LIKE {string(stmt.like)}" if stmt.like is not None else "")


@render.register
def _(stmt: ast.ShowCreatePipeline, *, hide_secrets: bool = False) -> str:
    return f"SHOW CREATE PIPELINE {ident(stmt.name)}" + (" EXTENDED" if stmt.extended else "")


@render.register
def _(stmt: ast.TestPipeline, *, hide_secrets: bool = False) -> str:
    limit = f" LIMIT {stmt.limit}" if stmt.limit is not None else ""
    stages = " STAGES" if stmt.stages else ""
    return f"TEST PIPELINE {ident(stmt.name)}{limit}{stages}"


@render.register
def _(stmt: ast.AlterPipeline, *, hide_secrets: bool = False) -> str:
    parts = [f"ALTER PIPELINE {ident(stmt.name)}"]
    if stmt.offsets is not None:
        value = stmt.offsets if stmt.offsets in ("EARLIEST", "LATEST") else string(stmt.offsets)
        parts.append(f"SET OFFSETS {value}")
    for key in (
        "batch_interval",
        "max_partitions_per_batch",
        "max_offsets_per_batch_partition",
        "max_retries_per_batch_partition",
    ):
        value = getattr(stmt, key)
        if value is not None:
            parts.append(f"SET {key.upper()} {value}")
    if stmt.resource_pool is not None:
        parts.append(f"SET RESOURCE POOL {ident(stmt.resource_pool)}")
    for word, whole, keys in (
        ("CONFIG", stmt.config, stmt.config_keys),
        ("CREDENTIALS", stmt.credentials, stmt.credentials_keys),
    ):
        secret = hide_secrets and word == "CREDENTIALS"
        if whole is not None:
            parts.append(f"SET {word} " + ("'<hidden>'" if secret else string(whole)))
        if keys:
            pairs = (f"::{ident(k)} = " + ("'<hidden>'" if secret else string(v)) for k, v in keys)
            parts.append(f"SET {word} " + ", ".join(pairs))
    if stmt.link is not None:
        parts.append(f"SET LINK {qualified(stmt.link)}")
    if stmt.transform is not None:
        parts.append("SET TRANSFORM " + render_transform(stmt.transform))
    if stmt.stop_on_error is not None:
        parts.append("STOP_ON_ERROR " + ("ON" if stmt.stop_on_error else "OFF"))
    for flag, clause in ((stmt.out_of_order, "OUT_OF_ORDER OPTIMIZATION"),
                         (stmt.offsets_metadata_gc, "OFFSETS METADATA GC")):  # fmt: skip
        if flag is not None:
            parts.append(("ENABLE " if flag else "DISABLE ") + clause)
    if stmt.reload_transform:
        parts.append("RELOAD TRANSFORM")
    if stmt.drop_file is not None:
        parts.append(f"DROP FILE {string(stmt.drop_file)}")
    if stmt.drop_partition is not None:
        parts.append(f"DROP PARTITION {string(stmt.drop_partition)}")
    if stmt.drop_orphan_files:
        parts.append("DROP ORPHAN FILES")
    if stmt.drop_orphan_partitions:
        parts.append("DROP ORPHAN PARTITIONS")
    if stmt.csv:
        parts += _csv_changes(dict(stmt.csv))
    parts += stmt.refused
    return " ".join(parts)


def _csv_changes(csv: dict[str, str | bool]) -> list[str]:
    """ALTER PIPELINE's FIELDS / LINES, each value as given (defaults included)."""
    fields, lines = [], []
    if "fields_terminated_by" in csv:
        fields.append(f"TERMINATED BY {string(str(csv['fields_terminated_by']))}")
    if "enclosed_by" in csv:
        opt = "OPTIONALLY " if csv.get("optionally_enclosed") else ""
        fields.append(f"{opt}ENCLOSED BY {string(str(csv['enclosed_by']))}")
    if "escaped_by" in csv:
        fields.append(f"ESCAPED BY {string(str(csv['escaped_by']))}")
    if "lines_starting_by" in csv:
        lines.append(f"STARTING BY {string(str(csv['lines_starting_by']))}")
    if "lines_terminated_by" in csv:
        lines.append(f"TERMINATED BY {string(str(csv['lines_terminated_by']))}")
    return ["FIELDS " + " ".join(fields)] * bool(fields) + ["LINES " + " ".join(lines)] * bool(
        lines
    )


@render.register
def _(stmt: ast.CreateLink, *, hide_secrets: bool = False) -> str:
    head = "CREATE OR REPLACE LINK" if stmt.or_replace else "CREATE LINK"
    if stmt.if_not_exists:
        head += " IF NOT EXISTS"
    out = f"{head} {qualified(stmt.name)} AS {stmt.kind}"
    if stmt.config is not None:
        out += f" CONFIG {string(stmt.config)}"
    if stmt.credentials is not None:
        out += " CREDENTIALS " + ("'<hidden>'" if hide_secrets else string(stmt.credentials))
    if stmt.description is not None:
        out += f" DESCRIPTION {string(stmt.description)}"
    return out


@render.register
def _(stmt: ast.DropLink, *, hide_secrets: bool = False) -> str:
    return "DROP LINK " + ("IF EXISTS " if stmt.if_exists else "") + qualified(stmt.name)


@render.register
def _(stmt: ast.ShowLinks, *, hide_secrets: bool = False) -> str:
    return "SHOW LINKS" + (f" ON {ident(stmt.database)}" if stmt.database else "")


@render.register
def _(stmt: ast.ExtractPipeline, *, hide_secrets: bool = False) -> str:
    out = f"EXTRACT PIPELINE {qualified(stmt.name)}"
    if stmt.partition is not None:
        out += f" FROM {string(stmt.partition)}"
        if stmt.start is not None:
            out += f" OFFSETS {stmt.start} TO {stmt.end}"
    return out + f" INTO OUTFILE {string(stmt.outfile)}"


@render.register
def _(stmt: ast.ProfilePipeline, *, hide_secrets: bool = False) -> str:
    return f"PROFILE PIPELINE {qualified(stmt.name)}"


@render.register
def _(stmt: ast.ReplayErrors, *, hide_secrets: bool = False) -> str:
    where = f" WHERE {stmt.where}" if stmt.where is not None else ""
    return f"REPLAY ERRORS FOR PIPELINE {ident(stmt.name)}{where}"


@render.register
def _(stmt: ast.ClearErrors, *, hide_secrets: bool = False) -> str:
    return "CLEAR PIPELINE ERRORS" + (f" {ident(stmt.name)}" if stmt.name else "")


@render.register
def _(stmt: ast.Passthrough, *, hide_secrets: bool = False) -> str:
    return stmt.sql


@render.register
def _(stmt: ast.CreateUser, *, hide_secrets: bool = False) -> str:
    head = "ALTER USER" if stmt.alter else "CREATE USER"
    if stmt.if_not_exists:
        head += " IF NOT EXISTS"
    password = "'<hidden>'" if hide_secrets else string(stmt.password)
    return f"{head} {ident(stmt.name)} IDENTIFIED BY {password}"


@render.register
def _(stmt: ast.DropUser, *, hide_secrets: bool = False) -> str:
    return "DROP USER " + ("IF EXISTS " if stmt.if_exists else "") + ident(stmt.name)


@render.register
def _(stmt: ast.Grant, *, hide_secrets: bool = False) -> str:
    verb, to = ("REVOKE", "FROM") if stmt.revoke else ("GRANT", "TO")
    return f"{verb} {stmt.privilege} ON *.* {to} {ident(stmt.user)}"


@render.register
def _(stmt: ast.ShowUsers, *, hide_secrets: bool = False) -> str:
    if not stmt.grants:
        return "SHOW USERS"
    return "SHOW GRANTS" + (f" FOR {ident(stmt.user)}" if stmt.user is not None else "")
