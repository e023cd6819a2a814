"""FORMAT AVRO: Avro records decoded a whole batch at a time.

Where a record's schema comes from:

- ``SCHEMA REGISTRY 'url'``: each Kafka message is in Confluent's wire format (byte 0, a 4-byte
  big-endian schema id, the body); each id's schema is fetched once, by confluent-kafka's own
  ``SchemaRegistryClient``, which caches it. A topic whose schema changes loads on: every id is
  decoded with its own schema.
- ``SCHEMA '<json>'``: messages are bare bodies in that schema.
- a file: an Avro object container file carries its schema; with ``SCHEMA``, a file of bare
  bodies one after another.

Decoding. The bodies of one schema are framed in memory as one block of an Avro container file,
each followed by its 4-byte position, and Polars' Avro reader (Rust) decodes the block into Arrow
in one call; the positions read back prove that every body was read with exactly its own bytes
(a body cut short or too long shifts them). When they do not, or the reader fails, each body is
decoded on its own with fastavro to name the bad ones (the rare path). A schema Polars cannot
read (a union of several non-null types) is decoded with fastavro a record at a time.

Paths are SingleStore's: ``%::a::b`` walks record fields and union branches (a branch is named
by its type: ``int``, ``string``, or a named type's full name); a union of null and one type may
also be walked through without naming the branch. A field or branch the schema does not have is
an error for every record of that schema (unless the mapping has a ``DEFAULT``); a branch that
is not the one a record holds reads NULL. Values keep their types: numbers, timestamps
(timestamp-millis/micros, UTC), dates, decimals, uuid as text, booleans as 1/0, enums as their
symbol, bytes and fixed as bytes, and records, arrays and maps (and ``%``) as JSON text.
"""

from __future__ import annotations

import io
import json
import os
import urllib.parse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.errors import FormatError, TransientError
from sluice.formats.base import (
    Format,
    ParsedBatch,
    RecordError,
    binary_array,
    default_text,
    empty_table,
    json_text,
)
from sluice.sql import ast

MAGIC = 0  # the first byte of Confluent's wire format
_CONTAINER = b"Obj\x01"
_PRIMITIVES = ("null", "boolean", "int", "long", "float", "double", "bytes", "string")
#: The keys of a pipeline's CONFIG and CREDENTIALS that are the registry client's, with this
#: prefix taken off (``schema.registry.basic.auth.user.info``, ``schema.registry.ssl.ca.location``).
REGISTRY_PREFIX = "schema.registry."


class SchemaRegistryUnavailableError(FormatError, TransientError):
    """The schema registry cannot be reached, or answered with a server error."""


class AvroFormat(Format):
    def __init__(
        self,
        spec: ast.MappedSpec,
        targets: Sequence[str] = (),
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not spec.mappings:
            raise FormatError(
                "FORMAT AVRO needs a field mapping: FORMAT AVRO (col <- %::field, ...)"
            )
        self.mappings = spec.mappings
        self.targets = tuple(m.target for m in spec.mappings)
        self._registry = (
            _registry_client(spec.schema_registry, settings or {}) if spec.schema_registry else None
        )
        self._inline = _Schema.of(spec.schema, self.mappings, "SCHEMA") if spec.schema else None
        self._by_id: dict[int, _Schema] = {}

    def record_end(self, data: bytes) -> int:
        return 0  # an Avro file is read whole: its records are not cut at a byte

    # -- Kafka messages ---------------------------------------------------------------------

    def parse_records(self, records: Sequence[bytes]) -> ParsedBatch:
        if not records:
            return ParsedBatch(empty_table(self.targets))
        column = binary_array(records)
        if self._registry is None:
            if self._inline is None:
                raise FormatError("FORMAT AVRO over KAFKA needs SCHEMA REGISTRY or SCHEMA")
            return _assemble(self.targets, [self._inline.decode(column, np.arange(len(column)))])
        return _assemble(self.targets, self._decode_framed(column))

    def _decode_framed(self, column: pa.Array) -> list[_Decoded]:
        offsets = np.frombuffer(column.buffers()[1], np.int64)[: len(column) + 1]
        data = np.frombuffer(column.buffers()[2] or b"", np.uint8)
        lengths = np.diff(offsets)
        framed = lengths >= 5
        starts = offsets[:-1][framed]
        ids = np.full(len(column), -1, np.int64)
        magic = np.full(len(column), -1, np.int64)
        magic[framed] = data[starts]
        header = data[starts[:, None] + np.arange(1, 5)] if len(starts) else np.empty((0, 4))
        ids[framed] = header.astype(np.int64) @ np.array([1 << 24, 1 << 16, 1 << 8, 1])
        pieces: list[_Decoded] = []
        bad = np.flatnonzero(~framed | (magic != MAGIC))
        if len(bad):
            errors = []
            for i in bad.tolist():
                raw = column[i].as_py()
                if lengths[i] < 5:
                    reason = (
                        f"Avro record of {lengths[i]} bytes is too short for Confluent's wire "
                        "format (byte 0, a 4-byte schema id, the body)"
                    )
                else:
                    reason = (
                        f"Avro record starts with byte {magic[i]}, not {MAGIC}: not Confluent's "
                        "wire format as Sluice reads it (a newer framing, or not Avro)"
                    )
                errors.append(RecordError(i, reason, raw))
            pieces.append(_Decoded.failed(errors))
        bodies = _without_headers(offsets, data, framed)
        good = ids[framed & (magic == MAGIC)]
        for schema_id in np.unique(good).tolist():
            index = np.flatnonzero((ids == schema_id) & (magic == MAGIC))
            schema = self._schema(schema_id)
            if isinstance(schema, str):
                pieces.append(
                    _Decoded.failed(
                        [RecordError(i, schema, column[i].as_py()) for i in index.tolist()]
                    )
                )
                continue
            pieces.append(schema.decode(bodies.take(pa.array(index)), index))
        return pieces

    def _schema(self, schema_id: int) -> _Schema | str:
        """The schema of an id, or why the records with it cannot be read."""
        known = self._by_id.get(schema_id)
        if known is not None:
            return known
        assert self._registry is not None
        try:
            text = self._registry.get_schema(schema_id).schema_str
        except Exception as exc:  # the client raises httpx's errors and its own
            problem = _registry_problem(exc, schema_id)
            if problem is None:
                raise
            return problem
        schema = _Schema.of(text, self.mappings, f"schema id {schema_id}")
        self._by_id[schema_id] = schema
        return schema

    # -- files -------------------------------------------------------------------------------

    def parse_file(self, data: bytes, *, continues: bool = False) -> ParsedBatch:
        if not data:
            return ParsedBatch(empty_table(self.targets))
        if data.startswith(_CONTAINER):
            try:
                meta, body_at = _read_header(data)
                text = meta["avro.schema"].decode()
            except (ValueError, KeyError, IndexError, UnicodeDecodeError) as exc:
                return _whole_file_failed(
                    self.targets, f"not a readable Avro container file: {exc}"
                )
            schema = _Schema.of(text, self.mappings, "the file's schema")
            return _assemble(self.targets, [schema.decode_container(data, meta, body_at)])
        if self._inline is None:
            return _whole_file_failed(
                self.targets,
                "not an Avro object container file (no 'Obj' header); a file of bare Avro "
                "bodies needs SCHEMA '<json>'",
            )
        return _assemble(self.targets, [self._inline.decode_stream(data)])


def _without_headers(offsets: np.ndarray, data: np.ndarray, framed: np.ndarray) -> pa.Array:
    """The bodies of framed records, their 5-byte headers cut out in one pass over the bytes
    (the others empty). One byte of mask per byte of data."""
    lengths = np.diff(offsets)
    keep = np.repeat(framed, lengths)
    starts = offsets[:-1][framed]
    keep[(starts[:, None] + np.arange(5)).ravel()] = False
    body_lengths = np.where(framed, lengths - 5, 0)
    new_offsets = np.concatenate([[0], np.cumsum(body_lengths)]).astype(np.int64)
    return pa.Array.from_buffers(
        pa.large_binary(),
        len(lengths),
        [None, pa.py_buffer(new_offsets), pa.py_buffer(np.ascontiguousarray(data[keep]))],
    )


# -- one writer schema ------------------------------------------------------------------------


@dataclass
class _Decoded:
    """What decoding some records gave: one array per target (None where they all failed),
    the positions of the records the rows came from, and the records that failed."""

    columns: dict[str, pa.Array]
    index: np.ndarray
    errors: list[RecordError]

    @classmethod
    def failed(cls, errors: list[RecordError]) -> _Decoded:
        return cls({}, np.empty(0, np.int64), errors)


@dataclass(frozen=True)
class _Leaf:
    """Where a mapping's value is in a decoded record: the struct fields down to it, and its
    Avro type there (None: always NULL, a union branch ``null``)."""

    fields: tuple[str, ...]
    avro: Any
    path: tuple[str, ...] = ()


class _Schema:
    """A writer schema, with the mappings resolved against it."""

    def __init__(self, schema: Any, mappings: Sequence[ast.FieldMapping], name: str) -> None:
        import fastavro

        self.name = name
        self.expanded = fastavro.schema.expand_schema(schema)
        self.parsed = fastavro.parse_schema(schema)
        self.polars_ok = not _has_wide_union(self.expanded)
        self.polars_schema = json.dumps(_polars_schema(self.expanded))
        self.leaves: dict[str, _Leaf] = {}
        self.defaults: dict[str, str | None] = {}
        self.problems: dict[str, str] = {}
        for m in mappings:
            found = _resolve(self.expanded, m.path)
            if isinstance(found, str):
                if m.default is None:
                    self.problems[m.target] = (
                        f"Avro path {'::'.join(m.path)}: {found} in {name}, and the mapping has "
                        "no DEFAULT"
                    )
                else:
                    self.defaults[m.target] = default_text(m.default)
            else:
                self.leaves[m.target] = found

    @classmethod
    def of(cls, text: str, mappings: Sequence[ast.FieldMapping], name: str) -> _Schema:
        import fastavro

        try:
            return cls(json.loads(text), mappings, name)
        except (ValueError, fastavro.schema.SchemaParseException) as exc:
            raise FormatError(f"{name} is not a valid Avro schema: {exc}") from exc

    def decode(self, bodies: pa.Array, index: np.ndarray) -> _Decoded:
        """Decode bare bodies (record ``i`` of them came from record ``index[i]``)."""
        if self.problems:
            return self._unmapped(bodies, index)
        if self.polars_ok:
            table = self._decode_block(bodies)
            if table is not None:
                return self._columns(table, index)
        return self._decode_each(bodies, index)

    def _unmapped(self, bodies: pa.Array, index: np.ndarray) -> _Decoded:
        reason = "; ".join(self.problems.values())
        errors = [RecordError(int(i), reason, bodies[k].as_py()) for k, i in enumerate(index)]
        return _Decoded.failed(errors)

    def _decode_block(self, bodies: pa.Array) -> pa.Table | None:
        """All of ``bodies`` through Polars, or None if any is not exactly one record."""
        import polars as pl

        n = len(bodies)
        positions = pa.Array.from_buffers(
            pa.large_binary(),
            n,
            [
                None,
                pa.py_buffer(np.arange(0, 4 * n + 1, 4, dtype=np.int64)),
                pa.py_buffer(np.arange(n, dtype=">u4")),
            ],
        )
        framed = pc.binary_join_element_wise(
            bodies.cast(pa.large_binary()), positions, pa.scalar(b"", pa.large_binary())
        )
        offsets = np.frombuffer(framed.buffers()[1], np.int64)[: n + 1]
        block = framed.buffers()[2][int(offsets[0]) : int(offsets[-1])]
        wrapper = {
            "type": "record",
            "name": "__sluice_framed",
            "fields": [
                {"name": "r", "type": json.loads(self.polars_schema)},
                {"name": "n", "type": {"type": "fixed", "name": "__sluice_position", "size": 4}},
            ],
        }
        sync = os.urandom(16)
        container = b"".join(
            (_header(json.dumps(wrapper), sync), _long(n), _long(block.size), block, sync)
        )
        try:
            table = pl.read_avro(io.BytesIO(container)).to_arrow()
        except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError, ValueError):
            return None
        if table.num_rows != n:
            return None
        read = table.column("n").combine_chunks()
        start = np.frombuffer(read.buffers()[1], np.int64)[0] if n else 0
        got = np.frombuffer(read.buffers()[2], ">u4", n, int(start)) if n else np.empty(0)
        if not np.array_equal(got, np.arange(n)):
            return None
        return pa.table({"r": table.column("r")})

    def _decode_each(self, bodies: pa.Array, index: np.ndarray) -> _Decoded:
        """One body at a time with fastavro: the bad ones named, the others decoded (through
        Polars again where it reads the schema, else here)."""

        good: list[int] = []
        values: list[Any] = []
        errors: list[RecordError] = []
        for k, raw in enumerate(bodies.to_pylist()):
            stream = io.BytesIO(raw)
            try:
                value = self._read_one(stream)
            except Exception as exc:
                errors.append(
                    RecordError(
                        int(index[k]),
                        f"not an Avro record of {self.name}: {type(exc).__name__}: {exc}",
                        raw,
                    )
                )
                continue
            left = len(raw) - stream.tell()
            if left:
                errors.append(
                    RecordError(
                        int(index[k]),
                        f"Avro record of {self.name} is followed by {left} more "
                        "byte(s): the body does not match the schema",
                        raw,
                    )
                )
                continue
            good.append(k)
            values.append(value)
        keep = np.asarray(good, np.int64)
        if self.polars_ok and good:
            table = self._decode_block(bodies.take(pa.array(keep)))
            if table is not None:
                decoded = self._columns(table, index[keep])
                decoded.errors = errors
                return decoded
        return _Decoded(self._python_columns(values), index[keep], errors)

    def _read_one(self, stream: io.BytesIO) -> Any:
        """One record from ``stream`` with fastavro (a record in a wide union as (name, value))."""
        import fastavro

        return fastavro.schemaless_reader(
            stream, self.parsed, None, return_record_name=True, return_record_name_override=True
        )

    def decode_container(self, data: bytes, meta: Mapping[str, bytes], body_at: int) -> _Decoded:
        """A whole object container file."""
        import fastavro
        import polars as pl

        if self.problems:
            return _Decoded.failed([RecordError(None, "; ".join(self.problems.values()))])
        if self.polars_ok:
            sync = data[body_at - 16 : body_at]
            rewritten = _header(self.polars_schema, sync, meta.get("avro.codec", b"null"))
            try:
                table = pl.read_avro(io.BytesIO(rewritten + data[body_at:])).to_arrow()
            except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as exc:
                return _Decoded.failed([RecordError(None, f"cannot read the Avro file: {exc}")])
            rows = pa.table({"r": table.to_struct_array()})
            return self._columns(rows, np.arange(table.num_rows))
        try:
            values = list(
                fastavro.reader(
                    io.BytesIO(data), return_record_name=True, return_record_name_override=True
                )
            )
        except Exception as exc:
            return _Decoded.failed([RecordError(None, f"cannot read the Avro file: {exc}")])
        return _Decoded(self._python_columns(values), np.arange(len(values)), [])

    def decode_stream(self, data: bytes) -> _Decoded:
        """A file of bare bodies one after another (no boundaries: read one by one)."""

        stream = io.BytesIO(data)
        values: list[Any] = []
        while stream.tell() < len(data):
            at = stream.tell()
            try:
                values.append(self._read_one(stream))
            except Exception as exc:
                reason = f"bytes from {at} are not an Avro record of {self.name}: {exc}"
                return _Decoded(
                    self._python_columns(values),
                    np.arange(len(values)),
                    [RecordError(len(values), reason, data[at:])],
                )
        return _Decoded(self._python_columns(values), np.arange(len(values)), [])

    # -- values ------------------------------------------------------------------------------

    def _columns(self, table: pa.Table, index: np.ndarray) -> _Decoded:
        """Polars' Arrow rows → one array per target."""
        records = table.column("r").combine_chunks()
        n = len(records)
        columns: dict[str, pa.Array] = {}
        for target, leaf in self.leaves.items():
            if leaf.avro is None:
                columns[target] = pa.nulls(n, pa.string())
                continue
            value: pa.Array = records
            for name in leaf.fields:
                value = pc.struct_field(value, name)
            columns[target] = _arrow_value(value, leaf.avro)
        for target, default in self.defaults.items():
            columns[target] = pa.repeat(pa.scalar(default, pa.string()), n)
        return _Decoded(columns, np.asarray(index, np.int64), [])

    def _python_columns(self, values: list[Any]) -> dict[str, pa.Array]:
        """fastavro's Python values → one text array per target (the slow path)."""
        columns: dict[str, pa.Array] = {}
        for target, leaf in self.leaves.items():
            texts = [_python_text(_walk(v, leaf.path, self.expanded)) for v in values]
            columns[target] = pa.array(
                texts if leaf.avro is not None else [None] * len(values), pa.string()
            )
        for target, default in self.defaults.items():
            columns[target] = pa.repeat(pa.scalar(default, pa.string()), len(values))
        return columns


# -- schema walking ---------------------------------------------------------------------------


def _resolve(schema: Any, path: Sequence[str]) -> _Leaf | str:
    """Where ``path`` leads in ``schema`` (expanded), or what is missing."""
    node = schema
    fields: list[str] = []
    for key in path:
        if isinstance(node, list):
            branches = {_branch_name(b): b for b in node}
            if key in branches:
                if key == "null":
                    return _Leaf(tuple(fields), None, tuple(path))
                node = branches[key]
                continue
            single = _non_null(node)
            if len(single) != 1:
                names = ", ".join(branches)
                return f"the union at {'::'.join(fields) or '%'} has no branch {key!r} ({names})"
            node = single[0]
        node = _type_of(node)
        if isinstance(node, dict) and node.get("type") == "record":
            if key not in [f["name"] for f in node["fields"]]:
                return f"record {node.get('name')} has no field {key!r}"
            fields.append(key)
            node = next(f["type"] for f in node["fields"] if f["name"] == key)
            continue
        return f"{key!r} is below a value of type {_branch_name(node)}, which has no fields"
    return _Leaf(tuple(fields), node, tuple(path))


def _type_of(node: Any) -> Any:
    """A ``{"type": "int"}`` written as an object, as its primitive name."""
    if isinstance(node, dict) and node.get("type") in _PRIMITIVES and "logicalType" not in node:
        return node["type"]
    return node


def _non_null(union: list[Any]) -> list[Any]:
    return [b for b in union if _type_of(b) != "null"]


def _branch_name(branch: Any) -> str:
    branch = _type_of(branch)
    if isinstance(branch, str):
        return branch
    if isinstance(branch, dict):
        if branch.get("type") in ("record", "enum", "fixed"):
            return str(branch["name"])  # expand_schema writes full names
        return str(branch.get("type"))
    return "union"


def _has_wide_union(node: Any) -> bool:
    if isinstance(node, list):
        return len(_non_null(node)) > 1 or any(_has_wide_union(b) for b in node)
    if isinstance(node, dict):
        kind = node.get("type")
        if kind == "record":
            return any(_has_wide_union(f["type"]) for f in node["fields"])
        if kind == "array":
            return _has_wide_union(node["items"])
        if kind == "map":
            return _has_wide_union(node["values"])
        return _has_wide_union(kind) if isinstance(kind, (list, dict)) else False
    return False


def _polars_schema(node: Any, counter: list[int] | None = None) -> Any:
    """The schema as Polars reads it: a map (which it cannot read) as the array of key/value
    records it is encoded as."""
    counter = counter if counter is not None else [0]
    if isinstance(node, list):
        return [_polars_schema(b, counter) for b in node]
    if not isinstance(node, dict):
        return node
    kind = node.get("type")
    if kind == "map":
        counter[0] += 1
        entry = {
            "type": "record",
            "name": f"__sluice_entry{counter[0]}",
            "fields": [
                {"name": "key", "type": "string"},
                {"name": "value", "type": _polars_schema(node["values"], counter)},
            ],
        }
        return {"type": "array", "items": entry}
    if kind == "record":
        fields = [{**f, "type": _polars_schema(f["type"], counter)} for f in node["fields"]]
        return {**node, "fields": fields}
    if kind == "array":
        return {**node, "items": _polars_schema(node["items"], counter)}
    if isinstance(kind, (list, dict)):
        return {**node, "type": _polars_schema(kind, counter)}
    return node


# -- values -----------------------------------------------------------------------------------


def _arrow_value(value: pa.Array, avro: Any) -> pa.Array:
    """A decoded leaf as the column it loads as."""
    avro = _type_of(avro)
    if isinstance(avro, list):
        single = _non_null(avro)
        avro = _type_of(single[0]) if len(single) == 1 else avro
    kind = avro.get("type") if isinstance(avro, dict) else avro
    if pa.types.is_dictionary(value.type):
        value = value.cast(pa.string())
    if kind == "boolean":
        return value.cast(pa.int8())
    if isinstance(avro, list) or kind in ("record", "array", "map"):
        return json_text(_restore_maps(value, avro))
    if pa.types.is_large_string(value.type):
        return value.cast(pa.string())
    return value


def _restore_maps(value: pa.Array, avro: Any) -> pa.Array:
    """Undo ``_polars_schema``: the key/value lists back into Arrow maps, at any depth."""
    avro = _type_of(avro)
    if isinstance(avro, list):
        single = _non_null(avro)
        return _restore_maps(value, single[0]) if len(single) == 1 else value
    if not isinstance(avro, dict):
        return value
    kind = avro.get("type")
    if kind == "map" and (pa.types.is_list(value.type) or pa.types.is_large_list(value.type)):
        entries = value.values
        items = _restore_maps(pc.struct_field(entries, "value"), avro["values"])
        keys = pc.struct_field(entries, "key").cast(pa.string())
        offsets = value.offsets.cast(pa.int32())
        return pa.MapArray.from_arrays(offsets, keys, items, mask=value.is_null())
    if kind == "array" and (pa.types.is_list(value.type) or pa.types.is_large_list(value.type)):
        inner = _restore_maps(value.values, avro["items"])
        return pa.ListArray.from_arrays(value.offsets.cast(pa.int32()), inner, mask=value.is_null())
    if kind == "record" and pa.types.is_struct(value.type):
        children = [
            _restore_maps(pc.struct_field(value, f["name"]), f["type"]) for f in avro["fields"]
        ]
        return pa.StructArray.from_arrays(
            children, names=[f["name"] for f in avro["fields"]], mask=value.is_null()
        )
    return value


def _walk(value: Any, path: Sequence[str], schema: Any) -> Any:
    """Follow a mapping's path in a fastavro value, as ``_resolve`` did in the schema (it
    found every step there)."""
    node = schema
    for key in path:
        if isinstance(node, list):
            branch = next((b for b in node if _branch_name(b) == key), None)
            if branch is not None:  # the step names a branch: NULL unless the value is in it
                if not _holds(branch, value):
                    return None
                value = value[1] if isinstance(value, tuple) else value
                node = branch
                continue
            node = _non_null(node)[0]
        if value is None:
            return None
        if isinstance(value, tuple):
            value = value[1]
        node = _type_of(node)
        value = value.get(key)
        node = next(f["type"] for f in node["fields"] if f["name"] == key)
    return value


def _holds(branch: Any, value: Any) -> bool:
    """Whether a fastavro value of a wide union is of this branch."""
    branch = _type_of(branch)
    kind = branch.get("type") if isinstance(branch, dict) else branch
    if isinstance(value, tuple):
        return bool(kind in ("record", "enum", "fixed") and value[0] == branch.get("name"))
    checks: dict[str, Any] = {
        "null": lambda v: v is None,
        "boolean": lambda v: isinstance(v, bool),
        "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "long": lambda v: isinstance(v, int) and not isinstance(v, bool),
        "float": lambda v: isinstance(v, float),
        "double": lambda v: isinstance(v, float),
        "string": lambda v: isinstance(v, str),
        "bytes": lambda v: isinstance(v, bytes),
        "array": lambda v: isinstance(v, list),
        "map": lambda v: isinstance(v, dict),
        "record": lambda v: isinstance(v, dict),
        "enum": lambda v: isinstance(v, str) and v in branch.get("symbols", ()),
        "fixed": lambda v: isinstance(v, bytes) and len(v) == branch.get("size"),
    }
    check = checks.get(str(kind))
    return bool(check(value)) if check is not None else False


def _python_text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, tuple):
        value = value[1]
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, (dict, list)):
        return json.dumps(_plain(value), default=str)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return _plain(value[1])
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- assembling a batch -----------------------------------------------------------------------


def _assemble(targets: Sequence[str], pieces: Sequence[_Decoded]) -> ParsedBatch:
    """The pieces (one per schema) as one table in record order."""
    errors = sorted((e for p in pieces for e in p.errors), key=lambda e: e.index or 0)
    decoded = [p for p in pieces if len(p.index)]
    if not decoded:
        return ParsedBatch(empty_table(targets), pa.array([], pa.int64()), errors)
    columns = {}
    for t in targets:
        arrays = [p.columns[t] for p in decoded]
        if len({a.type for a in arrays}) > 1:  # a schema changed the type: load it as text
            arrays = [_as_text(a) for a in arrays]
        columns[t] = pa.concat_arrays(arrays)
    table = pa.table(columns)
    index = pa.array(np.concatenate([p.index for p in decoded]).astype(np.int64))
    if len(decoded) > 1:
        order = pc.sort_indices(index)
        table, index = table.take(order), index.take(order)
    return ParsedBatch(table, index, errors)


def _as_text(array: pa.Array) -> pa.Array:
    if pa.types.is_boolean(array.type):
        array = array.cast(pa.int8())
    return array.cast(pa.string())


def _whole_file_failed(targets: Sequence[str], reason: str) -> ParsedBatch:
    return ParsedBatch(empty_table(targets), pa.array([], pa.int64()), [RecordError(None, reason)])


# -- the container framing --------------------------------------------------------------------


def _long(n: int) -> bytes:
    """An Avro long: zig-zag, then 7 bits a byte."""
    n = (n << 1) ^ (n >> 63)
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _header(schema: str, sync: bytes, codec: bytes = b"null") -> bytes:
    meta = {"avro.schema": schema.encode(), "avro.codec": codec}
    parts = [_CONTAINER, _long(len(meta))]
    for key, value in meta.items():
        parts += [_long(len(key)), key.encode(), _long(len(value)), value]
    return b"".join([*parts, _long(0), sync])


def _read_header(data: bytes) -> tuple[dict[str, bytes], int]:
    """A container file's metadata, and where its first block starts (after the sync)."""
    at = len(_CONTAINER)

    def read_long() -> int:
        nonlocal at
        shift = result = 0
        while True:
            byte = data[at]
            at += 1
            result |= (byte & 0x7F) << shift
            shift += 7
            if not byte & 0x80:
                return (result >> 1) ^ -(result & 1)

    def read_bytes() -> bytes:
        nonlocal at
        size = read_long()
        if size < 0 or at + size > len(data):
            raise ValueError("the header is cut short")
        value = data[at : at + size]
        at += size
        return value

    meta: dict[str, bytes] = {}
    while True:
        count = read_long()
        if count == 0:
            break
        if count < 0:
            read_long()  # a block size follows a negative count
            count = -count
        for _ in range(count):
            key = read_bytes().decode()
            meta[key] = read_bytes()
    at += 16
    if at > len(data):
        raise ValueError("the header is cut short")
    return meta, at


# -- the registry -----------------------------------------------------------------------------


def _registry_client(url: str, config: Mapping[str, Any]) -> Any:
    try:
        from confluent_kafka.schema_registry import SchemaRegistryClient
    except ImportError as exc:  # pragma: no cover - the avro extra is not installed
        raise FormatError(
            "FORMAT AVRO SCHEMA REGISTRY needs the avro extra: pip install 'sluice[avro]'"
        ) from exc
    if "://" not in url:
        url = "http://" + url  # SingleStore's form: 'host:port'
    parts = urllib.parse.urlsplit(url)
    conf: dict[str, Any] = {"timeout": 10, "max.retries": 1}
    if parts.username is not None:  # 'http://user:password@host:port'
        conf["basic.auth.user.info"] = (
            f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
        )
        host = parts.netloc.rsplit("@", 1)[1]
        url = urllib.parse.urlunsplit((parts.scheme, host, parts.path, parts.query, ""))
    conf["url"] = url
    conf.update(config)
    try:
        return SchemaRegistryClient(conf)
    except (ValueError, TypeError) as exc:
        raise FormatError(f"bad schema registry settings: {exc}") from exc


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What the registry client raises when it cannot reach the registry: httpx's errors (the
    client picks httpx or its successor httpx2, and says which in this module)."""
    try:
        from confluent_kafka.schema_registry.common._httpx_compat import httpx
    except ImportError:  # pragma: no cover - another client version
        return (OSError,)
    return (httpx.HTTPError, OSError)


def _registry_problem(exc: Exception, schema_id: int) -> str | None:
    """Why the records with ``schema_id`` cannot be read (an error of theirs), raising for a
    registry that is away; None for an exception that is not the registry's."""
    from confluent_kafka.schema_registry.error import SchemaRegistryError

    if isinstance(exc, _transport_errors()):
        raise SchemaRegistryUnavailableError(
            f"cannot reach the schema registry for schema id {schema_id}: {exc}"
        ) from exc
    if not isinstance(exc, SchemaRegistryError):
        return None
    if exc.http_status_code >= 500:
        raise SchemaRegistryUnavailableError(
            f"the schema registry failed for schema id {schema_id}: "
            f"{exc.http_status_code} {exc.error_message}"
        ) from exc
    if exc.http_status_code in (401, 403):
        raise FormatError(
            f"the schema registry refused Sluice ({exc.http_status_code} {exc.error_message}): "
            "give its user and password in CREDENTIALS "
            '\'{"schema.registry.basic.auth.user.info": "user:password"}\''
        ) from exc
    return (
        f"schema id {schema_id} is not in the schema registry ({exc.http_status_code} "
        f"error {exc.error_code}: {exc.error_message})"
    )
