"""FORMAT JSON: one JSON object per record, parsed for the whole batch at once by DuckDB.

The mapping ``(target <- a::b DEFAULT x, ...)`` becomes one ``json_transform`` over an Arrow
string column, so each document is parsed once, in C++, whatever the number of targets.
Values follow SingleStore's conversions: null → NULL, true/false → 1/0, strings unquoted,
numbers as written, objects and arrays as JSON text.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.errors import FormatError
from sluice.formats.base import (
    ArrowQueries,
    Format,
    ParsedBatch,
    RecordError,
    binary_array,
    empty_table,
    text_array,
)
from sluice.sql import ast
from sluice.vocab import empty_for_null, numpy_ints, row_numbers

_LEAF = '"VARCHAR"'


class JsonFormat(Format):
    def __init__(
        self,
        spec: ast.MappedSpec,
        targets: Sequence[str] = (),
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not spec.mappings:
            raise FormatError("FORMAT JSON needs a field mapping: FORMAT JSON (col <- key, ...)")
        self.mappings = spec.mappings
        self.targets = tuple(m.target for m in spec.mappings)
        self._db = ArrowQueries()
        self._sql = _compile(spec.mappings)

    def parse_file(self, data: bytes, *, continues: bool = False) -> ParsedBatch:
        return self.parse_records([line for line in data.split(b"\n") if line.strip()])

    def parse_records(self, records: Sequence[bytes]) -> ParsedBatch:
        if not records:
            return ParsedBatch(empty_table(self.targets))
        try:
            return ParsedBatch(*self._run(text_array(records)))
        except (pa.ArrowInvalid, duckdb.Error):
            return self._separate(binary_array(records))  # some record is not a JSON object

    def parse_array(self, values: pa.Array | pa.ChunkedArray) -> ParsedBatch:
        if not len(values):
            return ParsedBatch(empty_table(self.targets))
        values = empty_for_null(values)
        try:  # the text shares the records' buffers: only the offsets are new
            return ParsedBatch(*self._run(values.cast(pa.large_string())))
        except (pa.ArrowInvalid, duckdb.Error):
            if isinstance(values, pa.ChunkedArray):
                values = values.combine_chunks()
            return self._separate(values.cast(pa.large_binary()))

    def _separate(self, values: pa.Array) -> ParsedBatch:
        """The rare path: parse the records that are JSON objects, and an error for each other
        one."""
        good, errors = self._split_invalid(values)
        if not len(good):
            return ParsedBatch(empty_table(self.targets), errors=errors)
        remap = pa.array(good)
        table, index, missing = self._run(values.take(remap).cast(pa.large_string()))
        missing = [
            RecordError(int(good[e.index]), e.reason, e.raw) for e in missing if e.index is not None
        ]
        return ParsedBatch(table, remap.take(index), sorted(errors + missing, key=_by_index))

    def _run(
        self, column: pa.Array | pa.ChunkedArray
    ) -> tuple[pa.Table, pa.Array, list[RecordError]]:
        out = self._db.query(
            self._sql, records=pa.table({"v": column, "i": row_numbers(len(column))})
        )
        missing = out.column("__missing")
        errors: list[RecordError] = []
        if missing.null_count < len(missing):  # found for the batch; a step per bad one
            for i in np.flatnonzero(pc.is_valid(missing).to_numpy(zero_copy_only=False)).tolist():
                idx = out.column("__i")[i].as_py()
                errors.append(RecordError(idx, missing[i].as_py(), column[idx].as_py().encode()))
            out = out.filter(pc.is_null(missing))
        return out.select(list(self.targets)), out.column("__i").combine_chunks(), errors

    def _split_invalid(self, values: pa.Array) -> tuple[np.ndarray, list[RecordError]]:
        """The positions of the records (a binary array without nulls) that are JSON objects,
        and an error for each other one. DuckDB finds them over the whole batch
        (``json_valid``, ``json_type``); only those are looked at one by one, for their
        reason."""
        utf8: np.ndarray | None = None
        try:
            text = values.cast(pa.large_string())
        except pa.ArrowInvalid:  # some record is not UTF-8 (rarer still): found one by one
            utf8 = np.flatnonzero([_is_utf8(raw) for raw in values.to_pylist()])
            text = values.take(pa.array(utf8, pa.int64())).cast(pa.large_string())
        found = self._db.query(
            "SELECT i FROM records "
            "WHERE NOT coalesce(json_valid(v), false) OR json_type(v) <> 'OBJECT'",
            records=pa.table({"v": text, "i": row_numbers(len(text))}),
        )
        bad = numpy_ints(found.column("i"))
        if utf8 is not None:  # positions among the UTF-8 records → among all
            bad = np.union1d(utf8[bad], np.setdiff1d(np.arange(len(values)), utf8))
        bad = np.unique(bad)
        good = np.setdiff1d(np.arange(len(values)), bad)
        errors = []
        for i in bad.tolist():  # one step per bad record only
            raw = values[i].as_py()
            errors.append(RecordError(i, _invalid_reason(raw) or "record is not valid JSON", raw))
        return good, errors


def _is_utf8(raw: bytes) -> bool:
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _by_index(e: RecordError) -> int:
    return e.index if e.index is not None else -1


def _invalid_reason(raw: bytes) -> str | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"record is not valid UTF-8 (byte {exc.start})"
    try:
        doc = json.loads(text)
    except ValueError as exc:
        return f"record is not valid JSON: {exc}"
    if not isinstance(doc, dict):
        return f"record is a JSON {type(doc).__name__}, expected an object"
    return None


def _compile(mappings: Sequence[ast.FieldMapping]) -> str:
    """``SELECT <one text expression per target>, __missing, __i FROM records``."""
    tree = _path_tree([m.path for m in mappings])
    values, missing = [], []
    for m in mappings:
        if not m.path:
            values.append(f"v AS {_q(m.target)}")
            continue
        x = _access(tree, m.path)
        path = _sql_string(_json_path(m.path))
        exists = f"json_exists(v, {path})"
        fallback = f"CAST({m.default} AS VARCHAR)" if m.default is not None else "NULL"
        # VARCHAR leaves read strings unquoted, numbers as written and objects as JSON text;
        # a value reading true/false is a boolean only if the document says so (1/0 then).
        text = (
            f"CASE WHEN {x} IN ('true', 'false') AND json_type(v, {path}) = 'BOOLEAN' "
            f"THEN CASE {x} WHEN 'true' THEN '1' ELSE '0' END ELSE {x} END"
        )
        values.append(
            f"CASE WHEN {x} IS NOT NULL THEN {text} "
            f"WHEN {exists} THEN NULL ELSE {fallback} END AS {_q(m.target)}"
        )
        if m.default is None:
            reason = f"JSON path {'::'.join(m.path)} is missing and has no DEFAULT"
            missing.append(f"CASE WHEN {x} IS NULL AND NOT {exists} THEN {_sql_string(reason)} END")
    missing_sql = f"coalesce({', '.join(missing)})" if missing else "NULL::VARCHAR"
    inner = f"SELECT v, i, json_transform(v, {_sql_string(_struct_type(tree))}) AS j FROM records"
    return f"SELECT {', '.join(values)}, {missing_sql} AS __missing, i AS __i FROM ({inner})"


def _path_tree(paths: Sequence[tuple[str, ...]]) -> dict[str, Any]:
    """Nested keys down to text leaves. A mapped path that is a prefix of another becomes the
    leaf (shorter paths go first), and the longer one is extracted from its JSON text."""
    tree: dict[str, Any] = {}
    for path in sorted((p for p in paths if p), key=len):
        node = tree
        for key in path[:-1]:
            node = node.setdefault(key, {})
            if node == _LEAF:
                break
        else:
            node[path[-1]] = _LEAF
    return tree


def _struct_type(tree: dict[str, Any]) -> str:
    parts = []
    for key, child in tree.items():
        inner = child if child == _LEAF else _struct_type(child)
        parts.append(f"{json.dumps(key)}: {inner}")
    return "{" + ", ".join(parts) + "}"


def _access(tree: dict[str, Any], path: Sequence[str]) -> str:
    """Field access into the transformed struct; below a leaf, json_extract_string."""
    expr = "j"
    node: Any = tree
    for depth, key in enumerate(path):
        if node == _LEAF:
            return f"json_extract_string({expr}, {_sql_string(_json_path(path[depth:]))})"
        expr = f"{expr}[{_sql_string(key)}]"
        node = node[key]
    return expr


def _json_path(path: Sequence[str]) -> str:
    return "$" + "".join("." + json.dumps(k) for k in path)


def _sql_string(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
