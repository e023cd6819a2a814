"""FORMAT PARQUET: files read a few row groups at a time, only the mapped columns, typed.

``(col <- name [DEFAULT x], …)`` maps a Parquet column (``a::b`` reaches field ``b`` of struct
column ``a``) to a table column. A batch reads a file's row groups from its cursor until the
batch's byte budget (``max_bytes_per_batch``, counted as Parquet's uncompressed sizes) is
spent, at least one, so a file larger than memory loads over several batches, each committing
with its cursor (``-n``: the first ``n`` row groups loaded). Values keep their Parquet types;
booleans load as 1/0, nested values (structs, lists, maps) as JSON text. A path the file does
not have takes its ``DEFAULT``; without one, the file's rows are left out with an error naming
the column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from sluice.errors import FormatError
from sluice.formats.base import (
    Format,
    ParsedBatch,
    RecordError,
    default_text,
    empty_table,
    json_text,
)
from sluice.sql import ast

LOADED = 1


class ParquetFormat(Format):
    reads_files = True

    def __init__(
        self,
        spec: ast.MappedSpec,
        targets: Sequence[str] = (),
        *,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        if not spec.mappings:
            raise FormatError("FORMAT PARQUET needs a field mapping: FORMAT PARQUET (col <- name)")
        if any(not m.path for m in spec.mappings):
            raise FormatError("FORMAT PARQUET maps columns by name: % (the whole record) is JSON's")
        self.mappings = spec.mappings
        self.targets = tuple(m.target for m in spec.mappings)
        self._columns = sorted({m.path[0] for m in spec.mappings})

    def read_file(self, file: BinaryIO, done: int, budget: int) -> tuple[pa.Table, int]:
        parquet = pq.ParquetFile(file)
        first = done  # the row groups already loaded
        groups: list[int] = []
        size = 0
        for i in range(first, parquet.num_row_groups):
            group_size = parquet.metadata.row_group(i).total_byte_size
            if groups and size + group_size > budget:
                break
            groups.append(i)
            size += group_size
        names = set(parquet.schema_arrow.names)
        table = parquet.read_row_groups(groups, columns=[c for c in self._columns if c in names])
        end = (
            LOADED if not groups or groups[-1] == parquet.num_row_groups - 1 else -(groups[-1] + 1)
        )
        return table, end

    def parse_table(self, table: pa.Table) -> ParsedBatch:
        columns: dict[str, pa.Array | pa.ChunkedArray] = {}
        problems = []
        for m in self.mappings:
            value = _column(table, m.path)
            if value is None:
                if m.default is None:
                    problems.append(
                        f"Parquet column {'::'.join(m.path)} is not in the file and the mapping "
                        "has no DEFAULT"
                    )
                    continue
                columns[m.target] = pa.repeat(
                    pa.scalar(default_text(m.default), pa.string()), len(table)
                )
                continue
            columns[m.target] = _loadable(value)
        if problems:
            error = RecordError(None, "; ".join(problems))
            return ParsedBatch(empty_table(self.targets), pa.array([], pa.int64()), [error])
        return ParsedBatch(pa.table(columns) if columns else empty_table(self.targets))

    def parse_records(self, records: Sequence[bytes]) -> ParsedBatch:
        raise FormatError("FORMAT PARQUET reads files (LOAD DATA FS or S3), not messages")

    def parse_file(self, data: bytes, *, continues: bool = False) -> ParsedBatch:
        raise FormatError("FORMAT PARQUET files are read by row groups (read_file)")

    def record_end(self, data: bytes) -> int:
        return 0


def _column(table: pa.Table, path: Sequence[str]) -> pa.ChunkedArray | None:
    """The column at ``path``, as the file's row groups hold it (one chunk each: not copied)."""
    if path[0] not in table.column_names:
        return None
    value: pa.ChunkedArray = table.column(path[0])
    for name in path[1:]:
        if not pa.types.is_struct(value.type) or value.type.get_field_index(name) < 0:
            return None
        value = pc.struct_field(value, name)
    return value


def _loadable(value: pa.ChunkedArray) -> pa.ChunkedArray | pa.Array:
    kind = value.type
    if pa.types.is_dictionary(kind):
        return _loadable(value.cast(kind.value_type))
    if pa.types.is_boolean(kind):
        return value.cast(pa.int8())
    if pa.types.is_nested(kind):
        return json_text(value.combine_chunks())
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        return value.cast(pa.string())
    return value
