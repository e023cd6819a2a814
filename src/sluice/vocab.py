"""The words every layer uses for a batch: where a row came from, what a batch did to a
partition, a record left out, the table a batch loads into. Neutral: sources, formats,
transforms, stores and the engine all import it; it imports none of them."""

from __future__ import annotations

from dataclasses import dataclass

#: The lineage column every row of a batch carries through every stage: the row's id, which
#: names its record (its position among the batch's records, or its row within its file) and
#: is also the load order.
ROW_COLUMN = "__row"
#: The name a store gives a batch's rows while it loads them.
BATCH_RELATION = "__sluice_batch"


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
    it: where it came from and its raw bytes."""

    kind: str  # Parse | Transform | Load
    reason: str
    partition: str | None = None
    offset: int | None = None
    raw: bytes | None = None


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
