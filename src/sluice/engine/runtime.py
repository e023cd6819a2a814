"""A pipeline compiled for running: its source, format and load plan, and one batch's work."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from sluice.engine import links, procedures
from sluice.engine.batch import Batch, SkipPolicy
from sluice.engine.rejects import diagnose, without
from sluice.errors import (
    NotSupportedError,
    RejectedRecordError,
    SourceError,
    StoreError,
    TransientError,
)
from sluice.formats import REGISTRY_PREFIX, Format, build_format
from sluice.formats.typed import Coercion
from sluice.options import json_object
from sluice.plan import LoadPlan, build_plan, procedure_plan
from sluice.result import Result
from sluice.sources import Source, build_source
from sluice.sql import ast
from sluice.stores.base import BatchOutcome, Store
from sluice.transforms.program import OPTIONS as TRANSFORM_OPTIONS
from sluice.transforms.program import ProgramTransform, frame
from sluice.transforms.python import PythonTransform
from sluice.vocab import (
    MESSAGE_SOURCES,
    META_COLUMNS,
    ROW_COLUMN,
    PartitionBatch,
    Rejected,
    TableInfo,
    is_text,
)

# Defaults where a pipeline does not say. SingleStore waits 2500 ms between batches when
# caught up; Sluice waits 100 ms so rows show up within a fraction of a second.
DEFAULT_BATCH_INTERVAL_MS = 100
DEFAULT_MAX_OFFSETS_PER_BATCH_PARTITION = 100_000
DEFAULT_MAX_RETRIES_PER_BATCH_PARTITION = 4  # as SingleStore
FOREGROUND_WAIT_SECONDS = 10.0  # how long a FOREGROUND / TEST batch waits to reach the end

# Clause → what it says, for the clauses kept in the definition with no effect here: warned
# of when set, or (the second group) when written at all, since Sluice never does what they
# turn on or off (it keeps one cursor per partition, and trims old batch records itself).
_NO_EFFECT = {
    "resource_pool": "RESOURCE POOL",
    "retry_options": "RETRY_OPTIONS",
    "aggregator": "AGGREGATOR",
    "out_of_order": "ENABLE/DISABLE OUT_OF_ORDER OPTIMIZATION",
}
_NO_EFFECT_EITHER_WAY = {"offsets_metadata_gc": "ENABLE/DISABLE OFFSETS METADATA GC"}


def check_supported(defn: ast.CreatePipeline) -> list[str]:
    """Raise for clauses not built yet; return warnings for clauses with no effect here."""
    if defn.into_procedure and (defn.duplicates or defn.on_duplicate_key_update):
        raise NotSupportedError(
            "REPLACE, IGNORE and ON DUPLICATE KEY UPDATE apply to INTO TABLE; a procedure "
            "decides itself what a duplicate does"
        )
    fmt = defn.format
    messages = defn.source.kind in MESSAGE_SOURCES
    if messages and isinstance(fmt, ast.CsvSpec) and fmt.ignore_lines:
        raise NotSupportedError(f"IGNORE n LINES applies to file sources, not {defn.source.kind}")
    if (
        messages
        and isinstance(fmt, ast.MappedSpec)
        and fmt.kind == "AVRO"
        and not (fmt.schema_registry or fmt.schema)
    ):
        raise NotSupportedError(
            f"FORMAT AVRO over {defn.source.kind} needs SCHEMA REGISTRY 'url' (messages in "
            "Confluent's wire format) or SCHEMA '<json>' (messages that are bare Avro bodies)"
        )
    if isinstance(fmt, ast.MappedSpec) and fmt.kind == "PARQUET":
        if messages:
            raise NotSupportedError(
                f"FORMAT PARQUET reads files (LOAD DATA FS, S3, AZURE or GCS), not "
                f"{defn.source.kind}"
            )
        if defn.transform is not None and not defn.transform.python:
            raise NotSupportedError(
                "WITH TRANSFORM programs read bytes; FORMAT PARQUET files are read by row "
                "groups (use WITH TRANSFORM PYTHON, which gets the rows)"
            )
    written = [c for a, c in _NO_EFFECT.items() if getattr(defn, a) not in (None, False)]
    written += [c for a, c in _NO_EFFECT_EITHER_WAY.items() if getattr(defn, a) is not None]
    return [
        f"{clause} is accepted for compatibility and has no effect in Sluice" for clause in written
    ]


def split_settings(
    defn: ast.CreatePipeline,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The pipeline's CONFIG and CREDENTIALS as (the source's CONFIG, the source's CREDENTIALS,
    the transform's keys, the schema registry's keys without their prefix): they share the
    two clauses, as in SingleStore."""
    config = json_object(defn.source.config, "CONFIG", SourceError)
    credentials = json_object(defn.source.credentials, "CREDENTIALS", SourceError)
    transform = {k: config.pop(k) for k in TRANSFORM_OPTIONS.keys if k in config}
    registry = {
        k[len(REGISTRY_PREFIX) :]: given.pop(k)
        for given in (config, credentials)
        for k in [k for k in given if k.startswith(REGISTRY_PREFIX)]
    }
    return config, credentials, transform, registry


# The lineage columns a source collects per record only when asked.
_COLLECTED = {"__timestamp": "timestamp", "__key": "key", "__headers": "headers"}

# A read-ahead: its partitions, maybe parsed, and the seconds its stages took so far.
Ahead = tuple[list[PartitionBatch], "Batch | None", dict[str, float]]
Shown = list[tuple[str, str | None, str]]  # TEST PIPELINE … STAGES: (stage, source, row)
#: The stages of a batch, as PIPELINES_BATCHES_SUMMARY and the metrics name them.
STAGES = ("extract", "transform", "parse", "load")


@dataclass
class BatchReport:
    batch_id: int
    rows: int
    rows_loaded: int
    partitions: int
    seconds: float
    rejected: dict[str, int] = dataclasses.field(default_factory=dict)  # left out, by kind
    nbytes: int = 0  # extracted
    stages: dict[str, float] = dataclasses.field(default_factory=dict)  # seconds, by stage
    # every partition read to the end its source knew of when the batch was read
    caught_up: bool = False


class PipelineRuntime:
    """Everything needed to run batches of one pipeline definition. One thread at a time."""

    def __init__(self, defn: ast.CreatePipeline, store: Store) -> None:
        defn = links.resolve(defn, store)  # LOAD DATA LINK: the source the link names
        self.defn = defn
        self.name = defn.name
        self._store_name = store.name  # the SQL dialect of the plan's expressions
        self._procedure = procedures.load(store, defn.table) if defn.into_procedure else None
        if self._procedure is not None:
            table = TableInfo(defn.table, self._procedure.columns)
            self._table_sql = defn.table
        else:
            table = store.table_info(defn.table)
            self._table_sql = store.table_sql(defn.table)
        self._table = table
        targets = defn.columns or tuple(name for name, _ in table.columns)
        config, credentials, transform_config, registry = split_settings(defn)
        self.format: Format = build_format(defn.format, targets, settings=registry)
        self.plan: LoadPlan = self._build_plan(self.format.targets)
        self.source: Source = build_source(
            defn.source,
            config=config,
            credentials=credentials,
            pipeline=defn.name,
            record_end=self.format.record_end,
            read_file=self.format.read_file if self.format.reads_files else None,
        )
        self.source.metadata = frozenset(_COLLECTED[m] for m in self.plan.meta if m in _COLLECTED)
        self._plans: dict[tuple[tuple[str, ...], frozenset[str]], LoadPlan] = {}
        self.program: ProgramTransform | None = None
        self.python: PythonTransform | None = None
        self.coercion: Coercion | None = None
        t = defn.transform
        try:
            if t is not None and t.python:
                self.python = PythonTransform(t.uri, t.args, pipeline=defn.name)
                types = {n: table.column_type(n) for n in self.format.targets}
                self.coercion = Coercion({n: ty for n, ty in types.items() if ty is not None})
            elif t is not None:
                self.program = ProgramTransform(
                    t.uri, t.executable, t.args, transform_config, pipeline=defn.name
                )
        except BaseException:
            self.source.close()
            raise
        self.policy = SkipPolicy.of(defn.skip_errors)
        self._reader: ThreadPoolExecutor | None = None
        self._ahead: tuple[dict[str, int], Future[Ahead], threading.Event] | None = None
        # Whether the read-ahead also parses (and runs the Python transform). Yes for a server
        # store: its loads run in the server while this thread waits, so parsing ahead overlaps
        # them (measured: +15-50 % into PostgreSQL). Yes with a Python transform, whose model
        # or numpy calls release the GIL (measured: model scoring 0.48-0.58x -> 0.60-0.64x the
        # plain load's rate). Otherwise no: the read-ahead then takes what
        # arrives until its batch is needed, which is what keeps freshness (see _read_ahead).
        self._parse_ahead = store.remote or self.python is not None

    @property
    def batch_interval(self) -> float:
        ms = self.defn.batch_interval
        return (DEFAULT_BATCH_INTERVAL_MS if ms is None else ms) / 1000

    @property
    def max_offsets(self) -> int:
        n = self.defn.max_offsets_per_batch_partition
        return DEFAULT_MAX_OFFSETS_PER_BATCH_PARTITION if n is None else n

    @property
    def max_retries(self) -> int:
        n = self.defn.max_retries_per_batch_partition
        return DEFAULT_MAX_RETRIES_PER_BATCH_PARTITION if n is None else n

    @property
    def stop_on_error(self) -> bool:
        return self.defn.stop_on_error is not False

    def cancel(self) -> None:
        """Kill what runs outside this process for the batch in progress (its programs); the
        batch fails and loads nothing. From any thread (STOP PIPELINE)."""
        if self.program is not None:
            self.program.cancel()

    def close(self) -> None:
        self.cancel()
        if self._ahead is not None:
            _, future, needed = self._ahead
            needed.set()
            future.exception()  # let the read in flight finish; its result is not used
            self._ahead = None
        if self._reader is not None:
            self._reader.shutdown()
        if self.program is not None:
            self.program.close()
        if self.coercion is not None:
            self.coercion.close()
        self.source.close()

    def extract(
        self,
        cursors: Mapping[str, int],
        wait: float,
        *,
        stop_at_end: bool = False,
        needed: threading.Event | None = None,
    ) -> list[PartitionBatch]:
        return self.source.extract(
            cursors,
            self.max_offsets,
            wait,
            stop_at_end=stop_at_end,
            max_partitions=self.defn.max_partitions_per_batch,
            needed=needed,
        )

    def run_batch(
        self, store: Store, wait: float, *, stop_at_end: bool = False, skip_all: bool = False
    ) -> BatchReport | None:
        """Extract, parse and load one batch in one store transaction. None: nothing new.

        Records the pipeline may skip (SKIP … ERRORS, or all with ``skip_all``: STOP_ON_ERROR
        OFF after such a failure) go to PIPELINES_ERRORS in the same transaction; any other
        bad record fails the batch with a ``RejectedRecordError`` that says where it is. A
        failure that is not the fault of particular records is raised as it is."""
        cursors = store.cursors(self.name)
        batch = self._next_batch(cursors, wait, stop_at_end)
        if batch is None:
            return None
        started, t0 = datetime.now(), time.perf_counter()
        parts = list(batch.parts)
        policy = SkipPolicy.of("ALL") if skip_all else self.policy
        rejected = list(batch.rejected)
        if rejected and not policy.parser:
            raise self._failure(batch, rejected[0])
        rows = self.rows(batch)
        load_started = time.perf_counter()
        try:
            outcome = self._load(store, batch, rows, rejected, started)
        except StoreError as exc:
            if isinstance(exc, TransientError):
                raise
            try:
                found = diagnose(store, self.plan_for(rows), rows)
            except StoreError as failure:
                if isinstance(failure, TransientError):
                    raise
                found = []  # the statement itself fails (a dropped table): say why it did
            if not found:  # not the fault of particular rows: no skipping can fix it
                raise
            for f in found:
                if not policy.allows(f.kind, f.duplicate_key):
                    raise self._failure(batch, batch.rejection(f.row, f.kind, f.reason)) from exc
            rejected += [batch.rejection(f.row, f.kind, f.reason) for f in found]
            rows = without(rows, {f.row for f in found})
            outcome = self._load(store, batch, rows, rejected, started)
        done = time.perf_counter()
        kinds: dict[str, int] = {}
        for r in rejected:
            kinds[r.kind] = kinds.get(r.kind, 0) + 1
        return BatchReport(
            outcome.batch_id,
            rows.num_rows,
            outcome.rows_loaded,
            len(parts),
            done - t0,
            kinds,
            batch.nbytes,
            {**batch.stages, "load": done - load_started},
            all(p.latest is not None and p.end >= p.latest for p in batch.parts),
        )

    def _next_batch(self, cursors: dict[str, int], wait: float, stop_at_end: bool) -> Batch | None:
        """The next batch, parsed: the one read ahead while the previous batch was parsed and
        loaded if that read started from the cursors as they are now (the previous batch
        committed); else read now. Once its records are in hand, the read of the batch after it
        starts, so that it overlaps this one's parse and load. A read-ahead never loads
        anything itself, so discarding it is safe."""
        ahead, self._ahead = self._ahead, None
        got: Ahead | None = None
        if ahead is not None:
            projected, future, needed = ahead
            needed.set()
            got = future.result()
            if projected != cursors:
                got = None
        parts, batch, stages = got or self._read(cursors, wait, stop_at_end, parse=False)
        if not parts:
            return None
        self._read_ahead(cursors, parts, wait, stop_at_end)
        return batch or self.prepare(parts, stages)

    def _read(
        self,
        cursors: Mapping[str, int],
        wait: float,
        stop_at_end: bool,
        *,
        parse: bool,
        needed: threading.Event | None = None,
    ) -> Ahead:
        """Extract, and run the transform program (a read-ahead overlaps both with the load
        of the batch before); with ``parse``, the stages after it too. A read-ahead's extract
        time includes what it waited for its batch to be ``needed``: it was taking what arrived."""
        t0 = time.perf_counter()
        parts = self.extract(cursors, wait, stop_at_end=stop_at_end, needed=needed)
        t1 = time.perf_counter()
        stages = {"extract": t1 - t0}
        if parts and self.program is not None:
            parts = self.program.run(parts)
            stages["transform"] = time.perf_counter() - t1
        return parts, self.prepare(parts, stages) if parts and parse else None, stages

    def prepare(
        self, parts: Sequence[PartitionBatch], stages: dict[str, float] | None = None
    ) -> Batch:
        """The stages between the transform program and the load, the same for running, TEST
        PIPELINE and REPLAY ERRORS: parse, then (WITH TRANSFORM PYTHON) type the columns and
        call the function. What a stage rejects is in ``Batch.rejected``; what each stage took,
        with the times in ``stages`` so far, in ``Batch.stages``."""
        t0 = time.perf_counter()
        batch = Batch.parse(self.format, parts)
        batch.stages = {**(stages or {}), "parse": time.perf_counter() - t0}
        return self._typed(batch)

    def _typed(self, batch: Batch) -> Batch:
        """WITH TRANSFORM PYTHON: the parsed rows typed, and through the function."""
        if self.python is None or self.coercion is None:
            return batch
        t0 = time.perf_counter()
        typed, refused = self.coercion.apply(batch.rows)
        rejected = [batch.rejection(row, "Parse", reason) for row, reason in refused]
        out, refused = self.python(typed)
        rejected += [batch.rejection(row, "Transform", reason) for row, reason in refused]
        stages = dict(batch.stages)
        stages["transform"] = stages.get("transform", 0.0) + time.perf_counter() - t0
        return dataclasses.replace(
            batch, rows=out, rejected=[*batch.rejected, *rejected], stages=stages
        )

    def rows(self, batch: Batch) -> pa.Table:
        """The rows a batch loads: its rows, with the lineage columns its SET/WHERE read."""
        return batch.with_lineage(batch.rows, self.plan.meta, self.source.topic)

    def plan_for(self, rows: pa.Table) -> LoadPlan:
        """The load plan of a batch's rows, by their columns: text is cast to the table's
        types; a column that holds values already (a Python transform's, a typed format's) is
        cast only where its type differs. Compiled once per shape of batch."""
        names = tuple(n for n in rows.column_names if n != ROW_COLUMN and n not in META_COLUMNS)
        typed = frozenset(f.name for f in rows.schema if f.name in names and not is_text(f.type))
        if names == self.format.targets and not typed:
            return self.plan
        plan = self._plans.get((names, typed))
        if plan is None:
            plan = self._plans[(names, typed)] = self._build_plan(names, typed)
        return plan

    def _build_plan(self, targets: Sequence[str], typed: Collection[str] = ()) -> LoadPlan:
        plan = build_plan(
            self.defn, self._table, targets, table_sql=self._table_sql, typed=typed,
            store=self._store_name,
        )  # fmt: skip
        return plan if self._procedure is None else procedure_plan(plan, self._procedure)

    def _read_ahead(
        self, cursors: dict[str, int], parts: list[PartitionBatch], wait: float, stop_at_end: bool
    ) -> None:
        """Start extracting (and maybe parsing) the batch after ``parts`` on a thread of its
        own, so that it overlaps the parse and load of this batch (the source, the parser and
        the store all release the GIL in C/C++)."""
        projected = {**cursors, **{p.partition: p.end for p in parts}}
        if self._reader is None:
            self._reader = ThreadPoolExecutor(1, thread_name_prefix=f"extract-{self.name}")
        # Until this batch is loaded the read goes on taking what arrives, unless it parses too
        # (that must start early to overlap the load).
        needed = threading.Event()
        if self._parse_ahead:
            needed.set()
        future = self._reader.submit(
            self._read, projected, wait, stop_at_end, parse=self._parse_ahead, needed=needed
        )
        self._ahead = (projected, future, needed)

    def _load(
        self,
        store: Store,
        batch: Batch,
        rows: pa.Table,
        rejected: list[Rejected],
        started: datetime,
    ) -> BatchOutcome:
        return store.load_batch(
            self.name,
            self.source.kind,
            self.plan_for(rows),
            rows,
            batch.progress(),
            started=started,
            nbytes=batch.nbytes,
            rejected=[*rejected, *batch.notes()],
            stages=batch.stages,
        )

    def _failure(self, batch: Batch, rejected: Rejected) -> RejectedRecordError:
        return RejectedRecordError(
            f"pipeline {self.name}: {batch.where(rejected)}{rejected.reason}. No row of this "
            "batch was loaded; fix the record, or the pipeline (CREATE OR REPLACE PIPELINE keeps "
            "the cursors), or skip such records with SKIP PARSER ERRORS / SKIP ALL ERRORS.",
            pipeline=self.name,
            rejected=rejected,
        )

    def test(self, store: Store, limit: int | None, *, stages: bool = False) -> Result:
        """TEST PIPELINE: the rows the next batch would load; nothing is written. With
        ``stages``, the first ``limit`` rows (10 by default) after every stage instead, each as
        (STAGE, SOURCE: the partition and offset it came from, ROW: its values as JSON)."""
        cursors = store.cursors(self.name)
        parts = self.extract(cursors, FOREGROUND_WAIT_SECONDS, stop_at_end=True)
        shown: Shown = []
        n = 10 if limit is None else limit
        if stages:
            shown += _records("extract", parts, n)
        if parts and self.program is not None:
            parts = self.program.run(parts)
            if stages:
                shown += _records("transform", parts, n)
        parsed = Batch.parse(self.format, parts)
        batch = self._typed(parsed)
        if batch.rejected and not self.policy.parser:
            raise self._failure(batch, batch.rejected[0])
        rows = self.rows(batch)
        loaded = store.preview(self.plan_for(rows), rows, n if stages else limit)
        if not stages:
            return loaded
        shown += _rows("parse", parsed, parsed.rows, n)
        if self.python is not None:
            shown += _rows("python", batch, batch.rows, n)
        shown += [
            ("load", None, json.dumps(dict(zip(loaded.columns, r, strict=True)), default=str))
            for r in loaded.fetchall()
        ]
        return Result(["STAGE", "SOURCE", "ROW"], shown)

    def extract_to_file(self, store: Store, stmt: ast.ExtractPipeline) -> Result:
        """EXTRACT PIPELINE … INTO OUTFILE: the next batch's raw records (or a partition's, or
        a range of its offsets) written as a transform program reads them on standard input
        (Kafka messages each after an 8-byte little-endian length; files as they are), so
        ``program < file`` runs the transform on them. Nothing is loaded; no cursor moves."""
        if self.format.reads_files:
            raise NotSupportedError(
                "EXTRACT PIPELINE writes raw records; the files of a FORMAT PARQUET pipeline are "
                "read by the format itself: read the files"
            )
        if os.path.exists(stmt.outfile):
            raise SourceError(f"{stmt.outfile} exists; EXTRACT … INTO OUTFILE does not overwrite")
        cursors = store.cursors(self.name)
        limit = self.max_offsets
        if stmt.partition is not None and stmt.start is not None and stmt.end is not None:
            if stmt.end <= stmt.start:
                raise SourceError(f"OFFSETS {stmt.start} TO {stmt.end}: an empty range")
            cursors = {**cursors, stmt.partition: stmt.start}
            limit = stmt.end - stmt.start
        parts = self.source.extract(cursors, limit, FOREGROUND_WAIT_SECONDS, stop_at_end=True)
        if stmt.partition is not None:
            parts = [p for p in parts if p.partition == stmt.partition]
        rows = []
        with open(stmt.outfile, "xb") as out:
            for part in parts:
                data = part.data if part.data is not None else frame(part.records)
                out.write(data)
                rows.append((part.partition, part.start or 0, part.end, part.count, len(data)))
        return Result(["PARTITION", "START", "END", "RECORDS", "BYTES"], rows)

    def profile(self, store: Store) -> Result:
        """PROFILE PIPELINE: the next batch through every stage, its load rolled back: each
        stage's rows, megabytes and seconds."""
        shown: list[tuple[str, int, float, float]] = []
        t = time.perf_counter()

        def stage(name: str, rows: int, nbytes: float) -> None:
            nonlocal t
            now = time.perf_counter()
            shown.append((name, rows, round(nbytes / 1e6, 3), round(now - t, 6)))
            t = now

        parts = self.extract(store.cursors(self.name), FOREGROUND_WAIT_SECONDS, stop_at_end=True)
        stage("extract", sum(p.count for p in parts), sum(p.nbytes for p in parts))
        if parts and self.program is not None:
            parts = self.program.run(parts)
            stage("transform", sum(p.count for p in parts), sum(p.nbytes for p in parts))
        parsed = Batch.parse(self.format, parts)
        stage("parse", parsed.rows.num_rows, parsed.rows.nbytes)
        batch = self._typed(parsed)
        if self.python is not None:
            stage("python", batch.rows.num_rows, batch.rows.nbytes)
        rows = self.rows(batch)
        reason = store.trial_load(self.plan_for(rows), rows) if rows.num_rows else None
        stage("load (rolled back)", rows.num_rows, rows.nbytes)
        if reason is not None:
            raise StoreError(f"the batch would fail to load: {reason}")
        return Result(["STAGE", "ROWS", "MB", "SECONDS"], shown)


def _records(stage: str, parts: Sequence[PartitionBatch], n: int) -> Shown:
    """The first ``n`` records of a stage before parsing: messages, or lines of files."""
    out: Shown = []
    for part in parts:
        if part.table is not None:
            rows = part.table.slice(0, n).to_pylist()
            out += [
                (stage, f"{part.partition}:{i}", json.dumps(r, default=str))
                for i, r in enumerate(rows)
            ]
        elif part.data is not None:
            lines = part.data.split(b"\n", n)[:n]
            out += [(stage, f"{part.partition}:{i}", _text(line)) for i, line in enumerate(lines)]
        else:
            offsets = part.offsets or range(len(part.records))
            out += [
                (stage, f"{part.partition}:{o}", _text(r))
                for o, r in zip(offsets, part.records[:n], strict=False)
            ]
        if len(out) >= n:
            break
    return out[:n]


def _rows(stage: str, batch: Batch, rows: pa.Table, n: int) -> Shown:
    out: Shown = []
    for row in rows.slice(0, n).to_pylist():
        partition, offset, _ = batch.locate(int(row.pop(ROW_COLUMN)))
        source = f"{partition}:{offset}" if partition is not None else None
        out.append((stage, source, json.dumps(row, default=str)))
    return out


def _text(raw: bytes, limit: int = 500) -> str:
    text = raw.decode("utf-8", errors="replace")
    return text if len(text) <= limit else text[: limit - 3] + "..."
