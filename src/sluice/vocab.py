"""The words every layer uses for a batch: where a row came from, what a batch did to a
partition, a record left out, the table a batch loads into. Neutral: sources, formats,
transforms, stores and the engine all import it; it imports none of them."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, overload

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

#: The sources whose partitions are logs of messages with offsets (the others' are files).
MESSAGE_SOURCES = ("KAFKA", "RABBITMQ")

#: The lineage column every row of a batch carries through every stage: the row's id, which
#: names its record (its position among the batch's records, or its row within its file) and
#: is also the load order.
ROW_COLUMN = "__row"
#: The name a store gives a batch's rows while it loads them.
BATCH_RELATION = "__sluice_batch"
#: Where each row came from, as SQL sees it (``pipeline_source_file()``,
#: ``get_kafka_pipeline_prop(...)``): columns a batch carries only when its SET/WHERE asks.
#: ``BATCH_ID`` is filled in by the store, which numbers the batch as it loads it.
BATCH_ID = "__batch_id"
META_COLUMNS = {
    BATCH_ID: "BIGINT",
    "__source": "VARCHAR",  # the partition: a file's path, a Kafka partition's number
    "__topic": "VARCHAR",
    "__offset": "BIGINT",
    "__timestamp": "BIGINT",  # Kafka's, in milliseconds since 1970
    "__key": "VARCHAR",
    "__headers": "VARCHAR",  # Kafka's, as a JSON object of text values
}


class ArrowRecords(Sequence[bytes]):
    """Records held in Arrow binary arrays (the native Kafka drain's: a partition's records are
    slices of the fills they came in, so they may be in chunks): a sequence of bytes for the
    code that wants Python objects, ``array`` and ``chunks`` for the code that does not. A null
    (a message without a value) reads as an empty record."""

    def __init__(self, array: pa.Array | pa.ChunkedArray) -> None:
        self.array = array

    @property
    def chunks(self) -> list[pa.Array]:
        return self.array.chunks if isinstance(self.array, pa.ChunkedArray) else [self.array]

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, i: int) -> bytes: ...
    @overload
    def __getitem__(self, i: slice) -> ArrowRecords: ...
    def __getitem__(self, i: int | slice) -> bytes | ArrowRecords:
        if isinstance(i, slice):
            start, stop, step = i.indices(len(self.array))
            if step != 1:
                raise ValueError("ArrowRecords slices have a step of 1")
            return ArrowRecords(self.array.slice(start, max(stop - start, 0)))
        return bytes(self.array[i].as_py() or b"")

    def __iter__(self) -> Iterator[bytes]:
        return iter([v or b"" for v in self.array.to_pylist()])

    @property
    def nbytes(self) -> int:
        """The bytes of the records (not of the arrays' buffers)."""
        return sum(end - start for start, end in map(value_span, self.chunks))


def empty_for_null(values: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """Records with a null (a message without a value) read as an empty record; the array as it
    is when it has none (no pass over it, and no Python scalar: that imports pandas)."""
    if not values.null_count:
        return values
    return pc.fill_null(values, pa.scalar(b"", values.type))


def value_span(array: pa.Array) -> tuple[int, int]:
    """Where a binary array's values start and end in its data buffer."""
    if not len(array):
        return 0, 0
    width = 8 if pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type) else 4
    dtype = np.int64 if width == 8 else np.int32
    offsets = np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array) + 1,
                            offset=array.offset * width)  # fmt: skip
    return int(offsets[0]), int(offsets[-1])


class NumpyInts(Sequence[int]):
    """Integers held in a numpy array (offsets and timestamps from the native Kafka drain): a
    sequence for the code that wants ints, the array itself for numpy (``np.asarray``)."""

    def __init__(self, array: np.ndarray) -> None:
        self.array = array

    def __len__(self) -> int:
        return len(self.array)

    @overload
    def __getitem__(self, i: int) -> int: ...
    @overload
    def __getitem__(self, i: slice) -> NumpyInts: ...
    def __getitem__(self, i: int | slice) -> int | NumpyInts:
        if isinstance(i, slice):
            return NumpyInts(self.array[i])
        return int(self.array[i])

    def __iter__(self) -> Iterator[int]:
        return iter(self.array.tolist())

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return self.array if dtype is None else self.array.astype(dtype, copy=False)


@dataclass
class PartitionBatch:
    """The raw records of one partition in one batch (a source extracts them; a program
    transform replaces them with its output, as ``data``)."""

    partition: str
    start: int | None  # the stored cursor this batch starts from; None: partition not seen yet
    end: int  # the cursor once this batch commits (exclusive end)
    records: Sequence[bytes] = ()  # one per message (Kafka)
    data: bytes | None = None  # the file's bytes from ``start`` (FS)
    latest: int | None = None  # the partition's end as last seen, for lag
    size: int | None = None  # bytes in the file (FS)
    offsets: Sequence[int] = field(default=())  # offset of each record, when known
    continues: bool = False  # FS: ``data`` continues a file a previous batch began loading
    timestamps: Sequence[int] = ()  # per record, when the pipeline asks (Kafka, ms)
    keys: Sequence[bytes | None] = ()  # per record, when the pipeline asks (Kafka)
    # per record as JSON, when the pipeline asks (Kafka; the native drain's text column)
    headers: Sequence[str | None] | ArrowRecords = ()
    stderr: str = ""  # what a transform program wrote to standard error for this partition
    table: pa.Table | None = None  # a piece of a file its format reads itself (Parquet)

    @property
    def is_file(self) -> bool:
        return self.data is not None or self.table is not None

    @property
    def count(self) -> int:
        return 1 if self.is_file else len(self.records)

    @property
    def nbytes(self) -> int:
        if self.table is not None:
            return int(self.table.nbytes)
        if self.data is not None:
            return len(self.data)
        if isinstance(self.records, ArrowRecords):
            return self.records.nbytes
        return sum(map(len, self.records))


def row_numbers(n: int) -> pa.Array:
    """``0 … n-1`` as int64, made in one numpy call (``pa.array`` of a range makes a Python int
    per row)."""
    return int64_array(np.arange(n, dtype=np.int64))


def int64_array(values: np.ndarray) -> pa.Array:
    """A numpy array of integers as an Arrow int64 array, sharing its buffer when it can
    (``pa.array`` of a numpy array imports pandas)."""
    values = np.ascontiguousarray(values, dtype=np.int64)
    return pa.Array.from_buffers(pa.int64(), len(values), [None, pa.py_buffer(values)])


def numpy_ints(array: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """An Arrow integer array without nulls as numpy, sharing its buffer when it is one chunk
    (pyarrow's ``to_numpy`` imports pandas)."""
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if not pa.types.is_integer(array.type) or array.null_count:
        raise TypeError(f"numpy_ints needs integers without nulls, not {array.type}")
    dtype = np.dtype(str(array.type))
    return np.frombuffer(array.buffers()[1], dtype=dtype, count=len(array),
                         offset=array.offset * dtype.itemsize)  # fmt: skip


def is_text_type(sql_type: str) -> bool:
    """Whether a column of this SQL type holds text (no conversion from a batch's text)."""
    return sql_type.upper().startswith(_TEXT_TYPES)


def is_text(arrow_type: pa.DataType) -> bool:
    """Whether a batch column of this Arrow type holds text (not values already typed)."""
    return bool(pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type))


_TEXT_TYPES = ("VARCHAR", "TEXT", "CHAR", "STRING", "JSON", "BPCHAR", "CHARACTER")


@dataclass(frozen=True)
class PartitionProgress:
    """What one batch did to one partition's cursor: ``start`` → ``end``."""

    partition: str
    start: int | None  # None: the partition has no cursor yet
    end: int
    rows: int
    latest: int | None = None
    size: int | None = None


@dataclass(frozen=True)
class SourcePosition:
    """Where a source partition stands, for its lag: its first offset, its end (the offset the
    next message written gets), and the seconds between the timestamps of its newest message
    and of the next one the pipeline has not loaded (0 when nothing is left to load; None
    when the messages carry no timestamps)."""

    earliest: int | None
    latest: int | None
    lag_seconds: float | None


@dataclass(frozen=True)
class Rejected:
    """A record left out of a batch, kept in ``PIPELINES_ERRORS`` with what is needed to replay
    it: where it came from and its raw bytes. (Also a note about a batch, ``error_type``
    Warning: what a transform program wrote to standard error, in ``std_error``.)"""

    kind: str  # Parse | Transform | Load
    reason: str
    partition: str | None = None
    offset: int | None = None
    raw: bytes | None = None
    std_error: str | None = None
    error_type: str = "Error"


@dataclass(frozen=True)
class TableInfo:
    """A table a pipeline loads into, as its store describes it."""

    name: str
    columns: tuple[tuple[str, str], ...]  # (name, SQL type) in table order
    key: tuple[str, ...] = ()  # primary key, else the first unique constraint

    def column_type(self, name: str) -> str | None:
        lowered = name.lower()
        return next((t for n, t in self.columns if n.lower() == lowered), None)

    def canonical(self, name: str) -> str:
        lowered = name.lower()
        return next(n for n, _ in self.columns if n.lower() == lowered)
