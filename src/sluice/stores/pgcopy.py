"""An Arrow batch in PostgreSQL's ``COPY`` formats, built by Arrow's kernels: binary (for the
staging table of a batch) and CSV (for a batch copied straight into its table).

A binary COPY stream is a header, then per row a 16-bit field count and, per field, a 32-bit
length (-1 for NULL) and the value's bytes, then a trailer. Text values travel as their UTF-8
bytes and BIGINT as 8 big-endian bytes. Each row is one element-wise join of those pieces, so
the whole batch is one Arrow buffer: no Python loop over rows.
"""

from __future__ import annotations

import array
import struct
import sys
from collections.abc import Collection

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
TRAILER = struct.pack(">h", -1)
_NOTHING = pa.scalar(b"", pa.binary())


def encode(table: pa.Table) -> memoryview:
    """The rows of ``table`` (string and integer columns) as binary COPY tuples, without the
    header and trailer."""
    if table.num_rows == 0:
        return memoryview(b"")
    pieces: list[pa.Array | pa.Scalar] = [
        pa.scalar(struct.pack(">h", table.num_columns), pa.binary())
    ]
    for column in table.columns:
        values = column.combine_chunks()
        if pa.types.is_integer(values.type):
            if values.null_count:
                raise ValueError("integer columns of a COPY batch cannot hold NULL")
            pieces += [pa.scalar(struct.pack(">i", 8), pa.binary()), _big_endian(values, "q")]
            continue
        lengths = pc.binary_length(values).fill_null(-1).cast(pa.int32())
        pieces += [_big_endian(lengths, "i"), values.fill_null("").cast(pa.binary())]
    rows = pc.binary_join_element_wise(*pieces, _NOTHING)
    offsets = memoryview(rows.buffers()[1]).cast("B").cast("i")
    first, last = offsets[rows.offset], offsets[rows.offset + len(rows)]
    return memoryview(rows.buffers()[2])[first:last]


def _big_endian(values: pa.Array, code: str) -> pa.Array:
    """Integers as fixed-width big-endian byte strings (``code``: ``i`` int32, ``q`` int64)."""
    raw = array.array(code)
    width = raw.itemsize
    values = values.cast(pa.int32() if code == "i" else pa.int64())
    start = values.offset * width
    raw.frombytes(values.buffers()[1][start : start + len(values) * width])
    if sys.byteorder == "little":
        raw.byteswap()
    fixed = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(width), len(raw), [None, pa.py_buffer(raw)]
    )
    return fixed.cast(pa.binary())


def encode_csv(table: pa.Table, empty_is_null: Collection[str] = ()) -> pa.Buffer:
    """The rows of ``table`` (text columns) as ``COPY … (FORMAT csv)`` reads them: a NULL as an
    empty field, every string quoted (so an empty string stays one); in the columns named in
    ``empty_is_null`` an empty string is a NULL (an empty field loads NULL into a number)."""
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if name in empty_is_null:
            empty = pc.equal(column, pa.scalar("", column.type))
            column = pc.if_else(empty, pa.scalar(None, column.type), column)
        columns.append(column)
    sink = pa.BufferOutputStream()
    pacsv.write_csv(
        pa.table(columns, names=table.column_names), sink,
        pacsv.WriteOptions(include_header=False, quoting_style="needed"),
    )  # fmt: skip
    return sink.getvalue()
