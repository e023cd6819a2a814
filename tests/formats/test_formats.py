from __future__ import annotations

import pyarrow as pa
import pytest

from sluice.errors import FormatError
from sluice.formats import build_format
from sluice.sql import ast, parse


def spec(tail: str) -> ast.FormatSpec:
    stmt = parse(f"CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t {tail}")
    assert isinstance(stmt, ast.CreatePipeline)
    return stmt.format


def test_json_values_follow_singlestore_conversions() -> None:
    fmt = build_format(
        spec("FORMAT JSON (a <- a, b <- b, c <- c, d <- d, e <- e, f <- f::g, h <- h DEFAULT 'z')"),
        [],
    )
    doc = b'{"a": 1.50, "b": "text", "c": true, "d": null, "e": {"x": [1, 2]}, "f": {"g": false}}'
    parsed = fmt.parse_records([doc])
    assert parsed.errors == []
    assert parsed.table.to_pylist() == [
        {"a": "1.5", "b": "text", "c": "1", "d": None, "e": '{"x":[1,2]}', "f": "0", "h": "z"}
    ]


def test_json_bad_records_are_data_not_exceptions() -> None:
    fmt = build_format(spec("FORMAT JSON (a <- a, n <- x::y)"), [])
    records = [b'{"a": 1, "x": {"y": 2}}', b"{oops", b'{"a": 2}', b"[1]", b"\xff", b""]
    parsed = fmt.parse_records(records)
    assert parsed.table.to_pylist() == [{"a": "1", "n": "2"}]
    assert parsed.record_index is not None and parsed.record_index.to_pylist() == [0]
    reasons = {e.index: e.reason for e in parsed.errors}
    assert sorted(reasons) == [1, 2, 3, 4, 5]
    assert "not valid JSON" in reasons[1]
    assert reasons[2] == "JSON path x::y is missing and has no DEFAULT"
    assert "expected an object" in reasons[3]
    assert "not valid UTF-8" in reasons[4]


def test_json_bad_records_in_arrow_chunks_are_found_as_in_bytes() -> None:
    """The native Kafka path hands the format Arrow arrays in chunks, a message without a
    value as a null: the same rows, record numbers and errors as the same records as bytes."""
    fmt = build_format(spec("FORMAT JSON (a <- a, n <- x::y)"), [])
    records = [
        b'{"a": 1, "x": {"y": 2}}',
        b"{oops",
        None,
        b'{"a": 2}',
        b"\xff",
        b'{"a": 3, "x": {"y": 4}}',
    ]
    chunks = pa.chunked_array([pa.array(records[:3], pa.binary()), pa.array(records[3:])])
    from_arrow = fmt.parse_array(chunks)
    from_bytes = fmt.parse_records([r or b"" for r in records])
    assert from_arrow.table.to_pylist() == from_bytes.table.to_pylist()
    assert from_arrow.table.to_pylist() == [{"a": "1", "n": "2"}, {"a": "3", "n": "4"}]
    assert from_arrow.record_index is not None and from_bytes.record_index is not None
    assert from_arrow.record_index.to_pylist() == from_bytes.record_index.to_pylist() == [0, 5]
    assert [(e.index, e.reason, e.raw) for e in from_arrow.errors] == [
        (e.index, e.reason, e.raw) for e in from_bytes.errors
    ]
    assert [e.index for e in from_arrow.errors] == [1, 2, 3, 4]


def test_csv_enclosure_nulls_and_field_count() -> None:
    fmt = build_format(
        spec("FIELDS TERMINATED BY ',' OPTIONALLY ENCLOSED BY '\"' NULL DEFINED BY 'NULL'"),
        ["a", "@b", "c"],
    )
    parsed = fmt.parse_records([b'1,"x, y",NULL', b"2,3", b'4,"q""uote",6'])
    assert parsed.table.to_pylist() == [
        {"a": "1", "@b": "x, y", "c": None},
        {"a": "4", "@b": 'q"uote', "c": "6"},
    ]
    assert [e.reason for e in parsed.errors] == ["record has 2 fields, expected 3 (a, @b, c)"]


def test_csv_files_skip_header_lines_and_custom_terminators() -> None:
    fmt = build_format(
        spec("FIELDS TERMINATED BY '|' LINES TERMINATED BY ';' IGNORE 1 LINES"), ["a", "b"]
    )
    assert fmt.parse_file(b"h1|h2;1|2;3|4;").table.to_pylist() == [
        {"a": "1", "b": "2"},
        {"a": "3", "b": "4"},
    ]


def test_bad_format_options_are_clear() -> None:
    with pytest.raises(FormatError, match="FIELDS TERMINATED BY must be one character"):
        build_format(spec("FIELDS TERMINATED BY '||'"), ["a"])
    with pytest.raises(FormatError, match="FORMAT PARQUET maps columns by name"):
        build_format(spec("FORMAT PARQUET (a <- %)"), ["a"])
    with pytest.raises(FormatError, match="SCHEMA is not a valid Avro schema"):
        build_format(spec("""FORMAT AVRO (a <- a) SCHEMA '{"type": "nope"}'"""), ["a"])


def test_json_booleans_become_1_0_but_strings_reading_true_stay_text() -> None:
    fmt = build_format(spec("FORMAT JSON (a <- a, b <- b, c <- c::d)"), [])
    parsed = fmt.parse_records([b'{"a": true, "b": "true", "c": {"d": false}}'])
    assert parsed.table.to_pylist() == [{"a": "1", "b": "true", "c": "0"}]
