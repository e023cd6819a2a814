"""A pipeline compiled for running: its source, format and load plan, and one batch's work."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import accumulate, chain

import pyarrow as pa

from sluice.errors import BatchError, NotSupportedError
from sluice.formats import Format, ParsedBatch, RecordError, build_format
from sluice.result import Result
from sluice.sources import PartitionBatch, Source, build_source
from sluice.sql import ast
from sluice.stores.base import PartitionProgress, Store
from sluice.stores.loadsql import ORDER_COLUMN, LoadPlan, build_plan

# Defaults where a pipeline does not say. SingleStore waits 2500 ms between batches when
# caught up; Sluice waits 100 ms so rows show up within a fraction of a second.
DEFAULT_BATCH_INTERVAL_MS = 100
DEFAULT_MAX_OFFSETS_PER_BATCH_PARTITION = 100_000
FOREGROUND_WAIT_SECONDS = 10.0  # how long a FOREGROUND / TEST batch waits to reach the end

_NOT_YET = {
    "transform": "WITH TRANSFORM",
    "skip_errors": "SKIP ... ERRORS",
    "stop_on_error": "STOP_ON_ERROR",
    "max_retries_per_batch_partition": "MAX_RETRIES_PER_BATCH_PARTITION",
}
_NO_EFFECT = {
    "resource_pool": "RESOURCE POOL",
    "aggregator": "AGGREGATOR",
    "out_of_order": "ENABLE/DISABLE OUT_OF_ORDER OPTIMIZATION",
}


def check_supported(defn: ast.CreatePipeline) -> list[str]:
    """Raise for clauses not built yet; return warnings for clauses with no effect here."""
    for attr, clause in _NOT_YET.items():
        if getattr(defn, attr) is not None:
            raise NotSupportedError(f"{clause} is not supported yet")
    if defn.into_procedure:
        raise NotSupportedError("INTO PROCEDURE is not supported yet; load INTO TABLE")
    fmt = defn.format
    if defn.source.kind == "KAFKA" and isinstance(fmt, ast.CsvSpec) and fmt.ignore_lines:
        raise NotSupportedError("IGNORE n LINES applies to file sources, not KAFKA")
    return [
        f"{clause} is accepted for compatibility and has no effect in Sluice"
        for attr, clause in _NO_EFFECT.items()
        if getattr(defn, attr) not in (None, False)
    ]


@dataclass
class BatchReport:
    batch_id: int
    rows: int
    rows_loaded: int
    partitions: int
    seconds: float
    errors: list[RecordError] = field(default_factory=list)


class PipelineRuntime:
    """Everything needed to run batches of one pipeline definition. One thread at a time."""

    def __init__(self, defn: ast.CreatePipeline, store: Store) -> None:
        self.defn = defn
        self.name = defn.name
        table = store.table_info(defn.table)
        targets = defn.columns or tuple(name for name, _ in table.columns)
        self.format: Format = build_format(defn.format, targets)
        self.plan: LoadPlan = build_plan(
            defn, table, self.format.targets, table_sql=store.table_sql(defn.table)
        )
        self.source: Source = build_source(defn.source, pipeline=defn.name)

    @property
    def batch_interval(self) -> float:
        ms = self.defn.batch_interval
        return (DEFAULT_BATCH_INTERVAL_MS if ms is None else ms) / 1000

    @property
    def max_offsets(self) -> int:
        n = self.defn.max_offsets_per_batch_partition
        return DEFAULT_MAX_OFFSETS_PER_BATCH_PARTITION if n is None else n

    def close(self) -> None:
        self.source.close()

    def extract(
        self, cursors: Mapping[str, int], wait: float, *, stop_at_end: bool = False
    ) -> list[PartitionBatch]:
        parts = self.source.extract(cursors, self.max_offsets, wait, stop_at_end=stop_at_end)
        limit = self.defn.max_partitions_per_batch
        return parts[:limit] if limit else parts

    def parse(self, parts: Sequence[PartitionBatch]) -> tuple[pa.Table, list[int], ParsedBatch]:
        """All partitions' rows as one table (plus the load order column), rows per partition."""
        if parts and parts[0].data is None:
            parsed = self.format.parse_records(list(chain.from_iterable(p.records for p in parts)))
            counts = _rows_per_partition(parts, parsed)
        else:
            pieces = [self.format.parse_file(p.data or b"") for p in parts]
            parsed = ParsedBatch(
                pa.concat_tables([b.table for b in pieces]) if pieces else pa.table({}),
                errors=[e for b in pieces for e in b.errors],
            )
            counts = [b.table.num_rows for b in pieces]
        table = parsed.table
        if self.plan.needs_order:
            order = pa.array(range(table.num_rows), pa.int64())
            table = table.append_column(ORDER_COLUMN, order)
        return table, counts, parsed

    def run_batch(
        self, store: Store, wait: float, *, stop_at_end: bool = False
    ) -> BatchReport | None:
        """Extract, parse and load one batch in one store transaction. None: nothing new."""
        cursors = store.cursors(self.name)
        parts = self.extract(cursors, wait, stop_at_end=stop_at_end)
        if not parts:
            return None
        started, t0 = datetime.now(), time.perf_counter()
        table, counts, parsed = self.parse(parts)
        if parsed.errors:
            raise self._record_failure(parts, parsed.errors[0])
        progress = [
            PartitionProgress(p.partition, p.start, p.end, n, p.latest, p.size)
            for p, n in zip(parts, counts, strict=True)
        ]
        nbytes = sum(p.nbytes for p in parts)
        outcome = store.load_batch(
            self.name,
            self.source.kind,
            self.plan,
            table,
            progress,
            started=started,
            nbytes=nbytes,
        )
        return BatchReport(
            outcome.batch_id,
            table.num_rows,
            outcome.rows_loaded,
            len(parts),
            time.perf_counter() - t0,
        )

    def _record_failure(self, parts: Sequence[PartitionBatch], error: RecordError) -> BatchError:
        where = _locate(parts, error.index)
        return BatchError(
            f"pipeline {self.name}: {where}{error.reason}. "
            "No row of this batch was loaded; fix the record or the pipeline "
            "(CREATE OR REPLACE PIPELINE keeps the cursors) and START it again.",
            pipeline=self.name,
        )

    def test(self, store: Store, limit: int | None) -> Result:
        """TEST PIPELINE: the rows the next batch would load; nothing is written."""
        cursors = store.cursors(self.name)
        parts = self.extract(cursors, FOREGROUND_WAIT_SECONDS, stop_at_end=True)
        table, _, parsed = self.parse(parts)
        if parsed.errors:
            raise self._record_failure(parts, parsed.errors[0])
        return store.preview(self.plan, table, limit)


def _rows_per_partition(parts: Sequence[PartitionBatch], parsed: ParsedBatch) -> list[int]:
    records = [p.count for p in parts]
    if parsed.table.num_rows == sum(records) or parsed.record_index is None:
        return records  # one row per record (or rows that do not map to records)
    bounds = list(accumulate(records))
    counts = [0] * len(parts)
    k = 0
    for i in parsed.record_index.to_pylist():  # rare path: some records failed to parse
        while i >= bounds[k]:
            k += 1
        counts[k] += 1
    return counts


def _locate(parts: Sequence[PartitionBatch], index: int | None) -> str:
    if index is None:
        return ""
    for p in parts:
        if index < p.count:
            offset = p.offsets[index] if p.offsets else None
            at = f" offset {offset}" if offset is not None else ""
            return f"record at partition {p.partition}{at}: "
        index -= p.count
    return ""
