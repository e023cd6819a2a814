"""One batch between extract and load: its rows, and where each row came from."""

from __future__ import annotations

import json
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import accumulate, chain
from typing import Any, cast

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.formats import Format, ParsedBatch, RecordError
from sluice.vocab import (
    BATCH_ID,
    ROW_COLUMN,
    ArrowRecords,
    NumpyInts,
    PartitionBatch,
    PartitionProgress,
    Rejected,
    numpy_ints,
    row_numbers,
)


@dataclass(frozen=True)
class SkipPolicy:
    """What a pipeline may leave out of a batch instead of failing it (SKIP … ERRORS)."""

    parser: bool = False
    constraint: bool = False
    duplicate_key: bool = False

    @classmethod
    def of(cls, clause: str | None) -> SkipPolicy:
        return {
            None: cls(),
            "PARSER": cls(parser=True),
            "CONSTRAINT": cls(constraint=True, duplicate_key=True),
            "DUPLICATE KEY": cls(duplicate_key=True),
            "ALL": cls(parser=True, constraint=True, duplicate_key=True),
        }[clause]

    def allows(self, kind: str, duplicate_key: bool = False) -> bool:
        if kind in ("Parse", "Transform"):  # the record itself is bad (a transform says so)
            return self.parser
        return self.constraint or (duplicate_key and self.duplicate_key)


@dataclass
class Batch:
    """Parsed rows of the partitions of one batch. Every row carries ROW_COLUMN: for Kafka the
    position of its record among the batch's records, for files its row number."""

    parts: Sequence[PartitionBatch]
    rows: pa.Table
    counts: list[int]  # rows per partition
    rejected: list[Rejected] = field(default_factory=list)  # by the format or a transform
    _bounds: list[int] = field(default_factory=list)  # cumulative records (Kafka) or rows (FS)
    _records: bool = True
    #: Seconds the batch spent in each stage before its load: ``extract``, ``transform``
    #: (programs, Python transforms and models), ``parse``.
    stages: dict[str, float] = field(default_factory=dict)

    @classmethod
    def parse(cls, fmt: Format, parts: Sequence[PartitionBatch]) -> Batch:
        if parts and not parts[0].is_file:
            return cls._parse_records(fmt, parts)
        return cls._parse_files(fmt, parts)

    @classmethod
    def _parse_records(cls, fmt: Format, parts: Sequence[PartitionBatch]) -> Batch:
        sizes = [p.count for p in parts]
        bounds = list(accumulate(sizes))
        if all(isinstance(p.records, ArrowRecords) for p in parts):  # the native drain's
            chunks = [c for p in parts for c in cast(ArrowRecords, p.records).chunks]
            parsed = fmt.parse_array(pa.chunked_array(chunks, pa.binary()))
        else:
            parsed = fmt.parse_records(list(chain.from_iterable(p.records for p in parts)))
        mapped = parsed.record_index is not None
        ids = parsed.record_index if mapped else _range(parsed.table.num_rows)
        batch = cls(parts, parsed.table.append_column(ROW_COLUMN, ids), [], [], bounds, mapped)
        batch.counts = batch._rows_per_partition(parsed) if mapped else sizes
        batch.rejected = [batch._locate_record_error(e) for e in parsed.errors]
        return batch

    @classmethod
    def _parse_files(cls, fmt: Format, parts: Sequence[PartitionBatch]) -> Batch:
        pieces = [
            fmt.parse_table(p.table)
            if p.table is not None
            else fmt.parse_file(p.data or b"", continues=p.continues)
            for p in parts
        ]
        counts = [b.table.num_rows for b in pieces]
        table = (
            pa.concat_tables([b.table for b in pieces]) if pieces else pa.table({})
        ).append_column(ROW_COLUMN, _range(sum(counts)))
        errors = [
            Rejected("Parse", e.reason, p.partition, _offset(p, e.index, n), e.raw)
            for p, b, n in zip(parts, pieces, counts, strict=True)
            for e in b.errors
        ]
        return cls(parts, table, counts, errors, list(accumulate(counts)), False)

    def _rows_per_partition(self, parsed: ParsedBatch) -> list[int]:
        records = [p.count for p in self.parts]
        if parsed.table.num_rows == sum(records) or parsed.record_index is None:
            return records
        # some records failed to parse: count the rows of each partition's records
        index = numpy_ints(parsed.record_index)
        owner = np.searchsorted(np.asarray(self._bounds), index, side="right")
        return [int(n) for n in np.bincount(owner, minlength=len(self.parts))]

    def _locate_record_error(self, e: RecordError) -> Rejected:
        if e.index is None:
            return Rejected("Parse", e.reason, raw=e.raw)
        partition, offset, raw = self.locate(e.index)
        return Rejected("Parse", e.reason, partition, offset, e.raw or raw)

    def locate(self, row: int) -> tuple[str | None, int | None, bytes | None]:
        """(partition, offset, raw record) of a row id; for files the offset is the row's
        number within its file."""
        k = bisect_right(self._bounds, row)
        if k >= len(self.parts):
            return None, None, None
        part = self.parts[k]
        i = row - (self._bounds[k - 1] if k else 0)
        if not self._records:
            return part.partition, _offset(part, i, self.counts[k]), None
        offset = part.offsets[i] if part.offsets else None
        return part.partition, offset, part.records[i]

    def with_lineage(self, rows: pa.Table, names: Sequence[str], topic: str | None) -> pa.Table:
        """``rows`` with the lineage columns ``names`` (``sluice.vocab.META_COLUMNS``) that the
        pipeline's SET/WHERE read, built from the batch's partitions without a step per row.
        ``BATCH_ID`` is left NULL for the store to fill in."""
        if not names:
            return rows
        ids = rows.column(ROW_COLUMN).combine_chunks()
        records = bool(self.parts) and not self.parts[0].is_file
        known = self._records or not records  # rows map to their records (or to file rows)
        for name in names:
            column = self._lineage(name, records, topic) if known else None
            values = (
                column.take(ids)
                if column is not None
                else pa.nulls(rows.num_rows, pa.int64() if name in _NUMBERS else pa.string())
            )
            rows = rows.append_column(name, values)
        return rows

    def _lineage(self, name: str, records: bool, topic: str | None) -> pa.Array | None:
        """One value per record (Kafka) or per parsed row (files), in batch order."""
        sizes = [len(p.records) for p in self.parts] if records else self.counts
        if name == "__source":
            which = np.repeat(np.arange(len(self.parts)), sizes)
            return pa.array([p.partition for p in self.parts], pa.string()).take(which)
        if name == "__topic" and topic is not None:
            return pa.repeat(pa.scalar(topic, pa.string()), sum(sizes))
        if name == "__offset":
            pieces = []
            for part, n in zip(self.parts, sizes, strict=True):
                if len(part.offsets) == n:
                    pieces.append(np.asarray(part.offsets, dtype=np.int64))
                elif part.offsets:  # a program's output, not one row per record
                    return None
                else:  # a file: the row's number in it
                    pieces.append(np.arange(n, dtype=np.int64))
            return pa.array(np.concatenate(pieces) if pieces else np.empty(0, np.int64))
        field_of = {"__timestamp": "timestamps", "__key": "keys", "__headers": "headers"}
        if name in field_of and records:
            values = [getattr(p, field_of[name]) for p in self.parts]
            if all(len(v) == len(p.records) for v, p in zip(values, self.parts, strict=True)):
                return _column(values, name)
        return None

    @property
    def maps_records(self) -> bool:
        """Whether every row names the record it came from (not so for a CSV record that
        spans lines among Kafka messages)."""
        return self._records

    def rejection(self, row: int, kind: str, reason: str) -> Rejected:
        partition, offset, raw = self.locate(row)
        if raw is None:  # a row of a file: no raw record to replay, so show its values
            match = self.rows.filter(pc.equal(self.rows.column(ROW_COLUMN), row))
            values = match.drop_columns([ROW_COLUMN]).to_pylist()
            if values:
                reason += f" (row: {json.dumps(values[0], default=str)})"
        return Rejected(kind, reason, partition, offset, raw)

    def progress(self) -> list[PartitionProgress]:
        return [
            PartitionProgress(p.partition, p.start, p.end, n, p.latest, p.size)
            for p, n in zip(self.parts, self.counts, strict=True)
        ]

    def notes(self) -> list[Rejected]:
        """Warnings for PIPELINES_ERRORS about this batch: what a transform program wrote to
        standard error while it succeeded."""
        return [
            Rejected(
                "Transform",
                "the transform wrote to standard error (see STD_ERROR)",
                p.partition,
                std_error=p.stderr,
                error_type="Warning",
            )
            for p in self.parts
            if p.stderr
        ]

    @property
    def nbytes(self) -> int:
        return sum(p.nbytes for p in self.parts)

    def where(self, rejected: Rejected) -> str:
        at = f"partition {rejected.partition}" if rejected.partition is not None else ""
        if rejected.offset is not None:
            at += f" offset {rejected.offset}" if self._records else f" row {rejected.offset}"
        return f"record at {at}: " if at else ""


_NUMBERS = (BATCH_ID, "__offset", "__timestamp")


def _offset(part: PartitionBatch, i: int | None, rows: int) -> int | None:
    """The offset of the ``i``-th row parsed from a partition's ``data``: for a file, the row
    number; for the output of a transform program, the offset of the ``i``-th record it read if
    it wrote one row per record, else unknown."""
    if i is None or not part.offsets:
        return i
    return part.offsets[i] if len(part.offsets) == rows else None


def _column(values: Sequence[Sequence[Any]], name: str) -> pa.Array:
    """A lineage column from each partition's values: arrays the native Kafka drain made are
    joined as they are; lists (confluent-kafka's path) become one array."""
    if name == "__timestamp":
        if all(isinstance(v, NumpyInts) for v in values):
            return pa.array(np.concatenate([np.asarray(v) for v in values]))
        return pa.array(list(chain.from_iterable(values)), pa.int64())
    if all(isinstance(v, ArrowRecords) for v in values):
        joined = pa.concat_arrays([c for v in values for c in cast(ArrowRecords, v).chunks])
    else:
        kind = pa.binary() if name == "__key" else pa.string()
        joined = pa.array(list(chain.from_iterable(values)), kind)
    return joined.cast(pa.string(), safe=False)


def _range(n: int) -> pa.Array:
    return row_numbers(n)
