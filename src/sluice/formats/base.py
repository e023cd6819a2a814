"""Formats turn raw records into an Arrow table, one column per target.

A text format (CSV, JSON) hands its values on as text (``None`` for NULL) and the load casts
them to the columns' types in the store's SQL (measured: cheaper than a pass of its own before
the load); a format whose records carry types may hand on typed columns, which the load casts
only where the type differs. The stages that need values, a Python transform or a model, get
the columns typed (``sluice.formats.typed``). A record that cannot be parsed is not an
exception: it is a ``RecordError`` in ``ParsedBatch.errors``.
"""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from array import array
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any, BinaryIO

import pyarrow as pa

from sluice.sql import ast


@dataclass(frozen=True)
class RecordError:
    index: int | None  # position of the record in the input (None when unknown)
    reason: str
    raw: bytes | None = None


@dataclass
class ParsedBatch:
    """Rows parsed from a sequence of records.

    ``table`` has one string column per target, in target order. ``record_index`` gives, for
    each row, the position of the input record it came from (``None`` when rows and records do
    not correspond one to one, e.g. a CSV record holding several lines).
    """

    table: pa.Table
    record_index: pa.Array | None = None
    errors: list[RecordError] = field(default_factory=list)


class Format(ABC):
    """Parses records into rows. Instances are used by one thread at a time."""

    #: The names of the values this format produces: columns and ``@variables``.
    targets: tuple[str, ...]

    @abstractmethod
    def __init__(
        self,
        spec: ast.FormatSpec,
        targets: Sequence[str],
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        """The format of the ``FORMAT`` clause ``spec``; ``targets`` are the names the fields
        of a record without names of its own (CSV) load into; ``settings`` are the pipeline's
        CONFIG/CREDENTIALS keys that are the format's. A ``FormatError`` names a bad option."""

    @abstractmethod
    def parse_records(self, records: Sequence[bytes]) -> ParsedBatch:
        """Parse messages, one record each (a Kafka partition's batch)."""

    def parse_array(self, values: pa.Array | pa.ChunkedArray) -> ParsedBatch:
        """Parse messages held in an Arrow binary array, maybe in chunks (a null is an empty
        record). Formats that parse Arrow directly override this; the others read the records
        as bytes."""
        return self.parse_records([v or b"" for v in values.to_pylist()])

    @abstractmethod
    def parse_file(self, data: bytes, *, continues: bool = False) -> ParsedBatch:
        """Parse the content of a file, or with ``continues`` a later piece of one (cut at
        ``record_end``; the lines a format skips at the start of a file are not skipped)."""

    #: Whether this format reads its files itself, in pieces it chooses (Parquet's row groups),
    #: through ``read_file`` and ``parse_table``, instead of as bytes cut at ``record_end``.
    reads_files: bool = False

    def read_file(self, file: BinaryIO, done: int, budget: int) -> tuple[pa.Table, int]:
        """A piece of ``file`` after the ``done`` pieces already loaded, of about ``budget``
        bytes at most (at least one piece): its columns, and the cursor after it (``-n`` once
        ``n`` pieces are loaded, or 1 once the file is read). Only if ``reads_files``."""
        raise NotImplementedError(f"{type(self).__name__} reads files as bytes")

    def parse_table(self, table: pa.Table) -> ParsedBatch:
        """The rows of a piece ``read_file`` read. Only if ``reads_files``."""
        raise NotImplementedError(f"{type(self).__name__} reads files as bytes")

    def record_end(self, data: bytes) -> int:
        """Where the last complete record of ``data`` (a file's bytes) ends: the length of the
        longest prefix that holds whole records only; 0 if none ends within ``data``."""
        return data.rfind(b"\n") + 1


def text_array(records: Sequence[bytes]) -> pa.Array:
    """One Arrow string array over ``records`` without a Python object per value: the bytes are
    joined once and the offsets are the running sum of their lengths (both C loops). Raises
    ``pa.ArrowInvalid`` if a record is not UTF-8."""
    data = b"".join(records)
    offsets = array("q", accumulate(map(len, records), initial=0))
    column = pa.Array.from_buffers(
        pa.large_string(), len(records), [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    column.validate(full=True)
    return column


def binary_array(records: Sequence[bytes]) -> pa.Array:
    """``text_array`` for bytes that need not be text."""
    offsets = array("q", accumulate(map(len, records), initial=0))
    data = pa.py_buffer(b"".join(records))
    return pa.Array.from_buffers(
        pa.large_binary(), len(records), [None, pa.py_buffer(offsets), data]
    )


def default_text(sql: str) -> str | None:
    """A mapping's DEFAULT literal (SQL text) as the text it loads as."""
    if sql.upper() == "NULL":
        return None
    if sql.startswith("'"):
        return sql[1:-1].replace("''", "'")
    return {"TRUE": "1", "FALSE": "0"}.get(sql.upper(), sql)


class ArrowQueries:
    """An in-memory DuckDB that runs SQL over Arrow tables, from any thread: a pipeline parses
    the batch it loads while its read-ahead thread may parse the next one, and a DuckDB
    connection takes one call at a time."""

    def __init__(self) -> None:
        import duckdb

        self._con = duckdb.connect()
        self._lock = threading.Lock()

    def query(self, sql: str, **tables: pa.Table) -> pa.Table:
        """``sql`` with each of ``tables`` under its name, as an Arrow table."""
        with self._lock:
            for name, table in tables.items():
                self._con.register(name, table)
            try:
                return self._con.sql(sql).to_arrow_table()
            finally:
                for name in tables:
                    self._con.unregister(name)

    def close(self) -> None:
        with self._lock:
            self._con.close()


def json_text(value: pa.Array) -> pa.Array:
    """Nested values (structs, lists, maps) as JSON text, in one DuckDB pass."""
    import duckdb

    con = duckdb.connect()
    try:
        con.register("v", pa.table({"v": value}))
        out = con.sql("SELECT to_json(v)::VARCHAR AS j FROM v").to_arrow_table()
    finally:
        con.close()
    return out.column("j").combine_chunks().cast(pa.string())


def empty_table(targets: Sequence[str]) -> pa.Table:
    return pa.table({t: pa.array([], pa.string()) for t in targets})
