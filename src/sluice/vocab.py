"""The words every layer uses for a batch: where a row came from, what a batch did to a
partition, a record left out, the table a batch loads into. Neutral: sources, formats,
transforms, stores and the engine all import it; it imports none of them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

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
    headers: Sequence[str | None] = ()  # per record as JSON, when the pipeline asks (Kafka)
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
        return len(self.data) if self.data is not None else sum(map(len, self.records))


def row_numbers(n: int) -> pa.Array:
    """``0 … n-1`` as int64, made in one numpy call (``pa.array`` of a range makes a Python int
    per row, and of a numpy array imports pandas)."""
    return pa.Array.from_buffers(pa.int64(), n, [None, pa.py_buffer(np.arange(n, dtype=np.int64))])


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
