"""Runs pipeline statements against a store: the catalog, the lifecycle, the runners."""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
from collections.abc import Callable
from typing import Any

import pyarrow as pa

from sluice.engine import links, procedures, users
from sluice.engine.metrics import PipelineMetrics
from sluice.engine.monitor import LagMonitor
from sluice.engine.rejects import diagnose, without
from sluice.engine.runner import PipelineRunner, describe, record_failure
from sluice.engine.runtime import (
    FOREGROUND_WAIT_SECONDS,
    PipelineRuntime,
    check_supported,
    split_settings,
)
from sluice.errors import CatalogError, NotSupportedError, SluiceError
from sluice.options import json_object
from sluice.result import Result
from sluice.sources import build_source
from sluice.sql import ast, parse, render
from sluice.stores.base import PipelineRecord, Store, process_label
from sluice.vocab import ROW_COLUMN, PartitionBatch, Rejected

log = logging.getLogger("sluice.engine")

RUNNING, STOPPED, ERROR = "Running", "Stopped", "Error"


class Engine:
    """Runs the pipeline statements of every session of one database.

    A statement runs on the store of the session that sent it, so sessions never wait for one
    another: ``SHOW PIPELINES`` answers while another session runs ``START PIPELINE …
    FOREGROUND``. Only the changes to which pipelines run here take a lock, and never while
    reading a source. ``store`` is the engine's own connection, forked for each runner."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._runners: dict[str, PipelineRunner] = {}
        self._foreground: set[str] = set()  # pipelines a session runs in the foreground
        self._lock = threading.RLock()  # the runners and the foreground runs, their changes
        self.metrics = PipelineMetrics(store.fork)
        self._monitor: LagMonitor | None = None
        self._handlers: dict[type, Callable[[Any, Store], Result]] = {
            ast.CreatePipeline: self._create,
            ast.StartPipeline: self._start,
            ast.StopPipeline: self._stop,
            ast.DropPipeline: self._drop,
            ast.ShowPipelines: self._show,
            ast.ShowCreatePipeline: self._show_create,
            ast.TestPipeline: self._test,
            ast.AlterPipeline: self._alter,
            ast.ReplayErrors: self._replay,
            ast.ClearErrors: self._clear_errors,
            ast.CreateProcedure: procedures.create,
            ast.DropProcedure: procedures.drop,
            ast.ShowCreateProcedure: procedures.show_create,
            ast.CreateLink: self._create_link,
            ast.DropLink: links.drop,
            ast.ShowLinks: links.show,
            ast.ExtractPipeline: self._extract,
            ast.ProfilePipeline: self._profile,
            ast.CreateUser: users.create,
            ast.DropUser: users.drop,
            ast.Grant: users.grant,
            ast.ShowUsers: users.show,
        }

    def execute(self, stmt: ast.Statement, store: Store) -> Result:
        """Run ``stmt`` on ``store``: the calling session's own connection for pipeline
        statements (not one inside the user's transaction)."""
        if isinstance(stmt, ast.Passthrough):
            return store.execute(stmt.sql)
        name = getattr(stmt, "name", None)
        if isinstance(name, str) and "." in name and not isinstance(stmt, _NOT_IN_DATABASE):
            stmt = dataclasses.replace(stmt, name=_in_this_database(name, store))  # type: ignore[arg-type]
        return self._handlers[type(stmt)](stmt, store)

    def resume(self) -> None:
        """Start the pipelines that were Running when the database was last closed, and the
        monitor of their lag."""
        for record in self.store.pipelines():
            if record.state == RUNNING:
                self._spawn(record.name)
        if self._monitor is None:
            self._monitor = LagMonitor(self.store.fork(), self._lock, self._caught_up)
            self._monitor.start()

    def _caught_up(self, name: str) -> bool:
        """Whether this process runs the pipeline and its last batch left no lag."""
        runner = self._runners.get(name)
        return runner is not None and not runner.failed and runner.caught_up

    def close(self) -> None:
        """Stop every runner after its current batch. States are kept, so pipelines that
        were Running resume when the database is opened again."""
        if self._monitor is not None:
            self._monitor.close()
            self._monitor = None
        with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
        for runner in runners:
            runner.stop()

    # -- catalog helpers ----------------------------------------------------------------------

    @staticmethod
    def _record(store: Store, name: str) -> PipelineRecord:
        record = next((r for r in store.pipelines() if r.name.lower() == name.lower()), None)
        if record is None:
            raise CatalogError(f"pipeline {name} does not exist (SHOW PIPELINES lists them)")
        return record

    def _definition(self, store: Store, name: str) -> ast.CreatePipeline:
        stmt = parse(self._record(store, name).definition)
        assert isinstance(stmt, ast.CreatePipeline)
        return stmt

    def _running(self, name: str) -> bool:
        runner = self._runners.get(name)
        return runner is not None and runner.alive and not runner.failed

    @staticmethod
    def _save(store: Store, defn: ast.CreatePipeline, state: str, *, replace: bool) -> None:
        record = PipelineRecord(defn.name, render(defn), _config_json(defn), state)
        store.save_pipeline(record, replace=replace)

    # -- statements ---------------------------------------------------------------------------

    def _create(self, stmt: ast.CreatePipeline, store: Store) -> Result:
        warnings = check_supported(links.resolve(stmt, store))
        existing = {r.name.lower(): r for r in store.pipelines()}.get(stmt.name.lower())
        if existing is not None and not stmt.or_replace:
            if stmt.if_not_exists:
                return Result(warnings=[*warnings, f"pipeline {stmt.name} already exists"])
            raise CatalogError(
                f"pipeline {stmt.name} already exists; use CREATE OR REPLACE PIPELINE to change "
                "it (its cursors are kept)"
            )
        defn = dataclasses.replace(stmt, or_replace=False, if_not_exists=False)
        if existing is not None:
            defn = dataclasses.replace(defn, name=existing.name)
        self._check(defn, store)
        state = existing.state if existing is not None else STOPPED
        self._save(store, defn, state, replace=existing is not None)
        return Result(warnings=warnings)

    @staticmethod
    def _check(defn: ast.CreatePipeline, store: Store) -> None:
        """Raise, naming the problem, if ``defn`` cannot run: its table, columns, format,
        transform and source are built, and the source reached."""
        runtime = PipelineRuntime(defn, store)
        try:
            runtime.source.check()
        finally:
            runtime.close()

    def _start(self, stmt: ast.StartPipeline, store: Store) -> Result:
        if stmt.name is None:
            with self._lock:
                for record in store.pipelines():
                    if not self._running(record.name) and record.name not in self._foreground:
                        self._launch(store, record.name)
            return Result()
        name = self._record(store, stmt.name).name
        with self._lock:
            if self._running(name) or name in self._foreground:
                if stmt.if_not_running:
                    return Result()
                where = "in the foreground of another session" if name in self._foreground else ""
                raise CatalogError(f"pipeline {name} is already running {where}".strip())
            if not stmt.foreground:
                self._launch(store, name)
                return Result()
            self._foreground.add(name)
        try:
            return self._run_foreground(store, name, stmt.limit_batches)
        finally:
            with self._lock:
                self._foreground.discard(name)

    def _launch(self, store: Store, name: str) -> None:
        store.set_state(name, RUNNING)
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        with self._lock:
            previous = self._runners.pop(name, None)
            if previous is not None:
                previous.stop()  # a failed runner may still be releasing its source
            runner = PipelineRunner(name, self.store.fork(), self._failed, self.metrics)
            self._runners[name] = runner
            runner.start()
        log.info("pipeline %s: Running", name)

    def _failed(self, name: str, exc: BaseException, store: Store) -> None:
        """Called on the runner's thread, with the runner's store."""
        record_failure(store, name, exc)  # first: whoever sees Error finds the reason
        try:
            store.set_state(name, ERROR, describe(exc, trace=False))
        except SluiceError as failure:  # the store itself may be what failed
            log.error("pipeline %s: could not record its Error state: %s", name, failure)
            return
        # The runner stays registered until its thread ends, so that close() waits for it to
        # release its source (a consumer left open can outlive the database otherwise).
        log.info("pipeline %s: Error", name)

    def _run_foreground(self, store: Store, name: str, limit: int | None) -> Result:
        runtime = PipelineRuntime(self._definition(store, name), store)
        rows: list[tuple[int, int, int, int, float]] = []
        try:
            while limit is None or len(rows) < limit:
                try:
                    report = runtime.run_batch(store, FOREGROUND_WAIT_SECONDS, stop_at_end=True)
                except SluiceError as exc:
                    self.metrics.failed(name)
                    record_failure(store, name, exc)
                    raise
                if report is None:
                    break
                self.metrics.batch(name, report)
                errors = sum(report.rejected.values())
                rows.append(
                    (report.batch_id, report.rows, report.rows_loaded, errors, report.seconds)
                )
        finally:
            runtime.close()
        columns = ["BATCH_ID", "ROWS_STREAMED", "ROWS_LOADED", "ERRORS", "BATCH_TIME"]
        return Result(columns, rows, rowcount=sum(r[2] for r in rows))

    def _stop(self, stmt: ast.StopPipeline, store: Store) -> Result:
        names = (
            [r.name for r in store.pipelines() if r.state == RUNNING]
            if stmt.name is None
            else [self._record(store, stmt.name).name]
        )
        with self._lock:
            for name in names:
                if not self._running(name) and stmt.name is not None and not stmt.if_running:
                    raise CatalogError(f"pipeline {name} is not running")
                self._halt(name)
                store.set_state(name, STOPPED)
                log.info("pipeline %s: Stopped", name)
        return Result()

    def _halt(self, name: str) -> None:
        with self._lock:
            runner = self._runners.pop(name, None)
        if runner is not None:
            runner.stop()

    def _drop(self, stmt: ast.DropPipeline, store: Store) -> Result:
        try:
            name = self._record(store, stmt.name).name
        except CatalogError:
            if stmt.if_exists:
                return Result()
            raise
        with self._lock:
            self._halt(name)
            store.drop_pipeline(name)
        return Result()

    def _show(self, stmt: ast.ShowPipelines, store: Store) -> Result:
        """Each pipeline, its state, and the process loading it (``host:pid``): as the shared
        store's claims say, else this process for the pipelines it runs."""
        holders = store.holders()
        if not store.shared:  # one process: this one, for the pipelines it runs
            with self._lock:
                mine = [n for n in self._runners if self._running(n)] + list(self._foreground)
            holders = dict.fromkeys(mine, process_label())
        like = _like(stmt.like) if stmt.like is not None else None
        rows = [
            (r.name, r.state, holders.get(r.name))
            for r in store.pipelines()
            if like is None or like.fullmatch(r.name)
        ]
        return Result(["Pipelines", "State", "Process"], rows)

    def _show_create(self, stmt: ast.ShowCreatePipeline, store: Store) -> Result:
        record = self._record(store, stmt.name)
        defn = parse(record.definition)
        text = render(defn, hide_secrets=True)
        if stmt.extended:
            offsets = json.dumps(store.cursors(record.name), sort_keys=True)
            alter = ast.AlterPipeline(record.name, offsets=offsets)
            text += ";\n" + render(alter)
        return Result(["Pipeline", "Create Pipeline"], [(record.name, text)])

    def _test(self, stmt: ast.TestPipeline, store: Store) -> Result:
        runtime = PipelineRuntime(self._definition(store, stmt.name), store)
        try:
            return runtime.test(store, stmt.limit, stages=stmt.stages)
        finally:
            runtime.close()

    def _replay(self, stmt: ast.ReplayErrors, store: Store) -> Result:
        """Load the stored raw records again through the current definition, by the stages a
        batch takes after its transform program (a stored record is what the program wrote);
        the ones that now load leave PIPELINES_ERRORS in the same transaction."""
        name = self._record(store, stmt.name).name
        runtime = PipelineRuntime(self._definition(store, name), store)
        try:
            stored = store.rejected_records(name, stmt.where)
            ids = [error_id for error_id, _ in stored]
            # One partition whose offsets are the records' positions in ``stored``, so that
            # whatever a stage rejects names the error it replays.
            part = PartitionBatch(
                "", None, 0, records=[r.raw or b"" for _, r in stored], offsets=range(len(ids))
            )
            batch = runtime.prepare([part])
            failing = {ids[e.offset]: e.reason for e in batch.rejected if e.offset is not None}
            if not batch.maps_records:  # rows do not map to records one to one: replay none
                rows, failing = batch.rows.slice(0, 0), {i: "not replayable" for i in ids}
            else:
                # the lineage of a stored record: its partition, and its offset where known
                rows = batch.with_lineage(batch.rows, runtime.plan.meta, runtime.source.topic)
                rows = _stored_lineage(rows, [r for _, r in stored])
                found = diagnose(store, runtime.plan_for(rows), rows) if rows.num_rows else []
                failing.update({ids[f.row]: f.reason for f in found})
                rows = without(rows, {f.row for f in found})
            replayed = [i for i in ids if i not in failing]
            plan = runtime.plan_for(rows)
            loaded = store.replay(name, plan, rows, replayed, sorted(failing.items()))
        finally:
            runtime.close()
        columns = ["ROWS_LOADED", "ERRORS_REPLAYED", "ERRORS_REMAINING"]
        return Result(columns, [(loaded, len(replayed), len(failing))], rowcount=loaded)

    def _clear_errors(self, stmt: ast.ClearErrors, store: Store) -> Result:
        name = self._record(store, stmt.name).name if stmt.name is not None else None
        return Result(rowcount=store.clear_errors(name))

    def _alter(self, stmt: ast.AlterPipeline, store: Store) -> Result:
        if stmt.refused:
            raise NotSupportedError(
                f"ALTER PIPELINE … {', '.join(stmt.refused)} is not supported (nothing was changed)"
            )
        defn = self._definition(store, stmt.name)
        name = defn.name
        changed = _altered(defn, stmt)
        if changed != defn:
            warnings = check_supported(links.resolve(changed, store))
            if (changed.source, changed.format) != (defn.source, defn.format):
                self._check(changed, store)  # a bad setting is named now, not by the next batch
            self._save(store, changed, self._record(store, name).state, replace=True)
        else:
            warnings = []
        if stmt.drop_file is not None:
            store.set_cursors(name, defn.source.kind, {stmt.drop_file: 0})
        if stmt.drop_partition is not None:
            self._drop_cursors(store, name, [stmt.drop_partition])
        if stmt.drop_orphan_files or stmt.drop_orphan_partitions:
            present = self._offsets(store, changed, "EARLIEST")
            orphans = [p for p in store.cursors(name) if p not in present]
            self._drop_cursors(store, name, orphans)
        if stmt.offsets is not None:
            self._set_offsets(store, changed, stmt.offsets)
        if stmt.reload_transform:
            with self._lock:
                if self._running(name):
                    self._halt(name)
                    self._spawn(name)  # a new runner runs the transform afresh
        return Result(warnings=warnings)

    def _drop_cursors(self, store: Store, name: str, partitions: list[str]) -> None:
        with self._lock:
            running = self._running(name)
            if running:
                self._halt(name)  # its in-flight batch must not race the change
            try:
                store.drop_cursors(name, partitions)
            finally:
                if running:
                    self._spawn(name)

    def _offsets(self, store: Store, defn: ast.CreatePipeline, which: str) -> dict[str, int]:
        """The source's EARLIEST or LATEST offsets, read holding no lock."""
        resolved = links.resolve(defn, store)
        config, credentials, _, _ = split_settings(resolved)
        source = build_source(
            resolved.source, config=config, credentials=credentials, pipeline=defn.name
        )
        try:
            return source.earliest() if which == "EARLIEST" else source.latest()
        finally:
            source.close()

    def _create_link(self, stmt: ast.CreateLink, store: Store) -> Result:
        """CREATE LINK; OR REPLACE also restarts the running pipelines that use the link, so
        their next batch connects with the new settings."""
        result = links.create(stmt, store)
        if stmt.or_replace:
            with self._lock:
                for record in store.pipelines():
                    if links.uses(record.definition, stmt.name) and self._running(record.name):
                        self._halt(record.name)
                        self._spawn(record.name)
        return result

    def _extract(self, stmt: ast.ExtractPipeline, store: Store) -> Result:
        name = self._record(store, stmt.name).name
        if self._running(name) or name in self._foreground:
            raise CatalogError(f"pipeline {name} is running; stop it to EXTRACT from it")
        runtime = PipelineRuntime(self._definition(store, name), store)
        try:
            return runtime.extract_to_file(store, stmt)
        finally:
            runtime.close()

    def _profile(self, stmt: ast.ProfilePipeline, store: Store) -> Result:
        runtime = PipelineRuntime(self._definition(store, stmt.name), store)
        try:
            return runtime.profile(store)
        finally:
            runtime.close()

    def _set_offsets(self, store: Store, defn: ast.CreatePipeline, value: str) -> None:
        if value in ("EARLIEST", "LATEST"):  # read from the source first, holding no lock
            offsets = self._offsets(store, defn, value)
        else:
            offsets = _offsets_json(value)
        with self._lock:
            running = self._running(defn.name)
            if running:
                self._halt(defn.name)  # its in-flight batch must not race the new cursors
            try:
                store.set_cursors(defn.name, defn.source.kind, offsets)
            finally:
                if running:
                    self._spawn(defn.name)


_ALTERED_SETTINGS = (
    "batch_interval",
    "max_partitions_per_batch",
    "max_offsets_per_batch_partition",
    "max_retries_per_batch_partition",
    "resource_pool",
    "transform",
    "stop_on_error",
    "out_of_order",
    "offsets_metadata_gc",
)


def _altered(defn: ast.CreatePipeline, stmt: ast.AlterPipeline) -> ast.CreatePipeline:
    """The definition with ALTER PIPELINE's settings applied (offsets and drops aside)."""
    changes: dict[str, Any] = {
        key: getattr(stmt, key) for key in _ALTERED_SETTINGS if getattr(stmt, key) is not None
    }
    src = defn.source
    config = _json_changed(src.config, stmt.config, stmt.config_keys, "CONFIG")
    credentials = _json_changed(
        src.credentials, stmt.credentials, stmt.credentials_keys, "CREDENTIALS"
    )
    link = src.link
    if stmt.link is not None:
        if src.kind != "LINK":
            raise CatalogError(
                f"pipeline {defn.name} reads LOAD DATA {src.kind}, not a link: SET LINK applies "
                "to a pipeline created with LOAD DATA LINK"
            )
        link = stmt.link
    changes["source"] = dataclasses.replace(src, config=config, credentials=credentials, link=link)
    if stmt.csv:
        if not isinstance(defn.format, ast.CsvSpec):
            raise CatalogError(
                f"pipeline {defn.name} reads FORMAT {defn.format.kind}: FIELDS and LINES "
                "apply to FORMAT CSV"
            )
        csv: dict[str, Any] = dict(stmt.csv)
        changes["format"] = dataclasses.replace(defn.format, **csv)
    return dataclasses.replace(defn, **changes)


def _json_changed(
    current: str | None, whole: str | None, keys: tuple[tuple[str, str], ...], what: str
) -> str | None:
    """SET CONFIG '<json>' replaces the clause; SET CONFIG ::key = 'value' changes one key (a
    value that reads as a JSON number or true/false is kept as one: '64' sets 64)."""
    if whole is not None:
        json_object(whole, f"SET {what}", CatalogError)  # checked now, not at the next batch
        current = whole
    if keys:
        merged = json_object(current, what, CatalogError)
        merged.update({k: _scalar(v) for k, v in keys})
        current = json.dumps(merged)
    return current


def _scalar(text: str) -> Any:
    try:
        value = json.loads(text)
    except ValueError:
        return text
    return value if isinstance(value, int | float | bool) else text


def _stored_lineage(rows: pa.Table, stored: list[Rejected]) -> pa.Table:
    """Replayed rows' ``__source``/``__offset`` columns (if the plan reads them) as the stored
    errors say; a replayed record's Kafka timestamp, key and headers are not kept (NULL)."""
    ids = rows.column(ROW_COLUMN).combine_chunks()
    for name, values in (
        ("__source", pa.array([r.partition for r in stored], pa.string())),
        ("__offset", pa.array([r.offset for r in stored], pa.int64())),
    ):
        if name in rows.column_names:
            rows = rows.set_column(rows.column_names.index(name), name, values.take(ids))
    for name in ("__timestamp", "__key", "__headers"):
        if name in rows.column_names:
            i = rows.column_names.index(name)
            rows = rows.set_column(i, name, pa.nulls(rows.num_rows, rows.schema.field(i).type))
    return rows


# Named by names that are not ``db.pipeline``.
_NOT_IN_DATABASE = (
    ast.CreateProcedure, ast.DropProcedure, ast.ShowCreateProcedure, ast.CreateUser, ast.DropUser,
)  # fmt: skip


def _in_this_database(qualified: str, store: Store) -> str:
    """``db.pipeline`` → ``pipeline``, if ``db`` is the database of ``store`` (as SingleStore
    names a pipeline in a database); else a ``CatalogError`` naming both."""
    database, _, name = qualified.rpartition(".")
    current = store.database()
    if database.lower() != current.lower():
        raise CatalogError(
            f"pipeline {qualified}: database {database} is not this one ({current}); name the "
            "pipeline without it, or connect to that database"
        )
    return name


def _like(pattern: str) -> re.Pattern[str]:
    """A SQL LIKE pattern (``%``, ``_``, ``\\`` escapes), case-insensitive as MySQL's default."""
    out, escaped = [], False
    for c in pattern:
        if escaped:
            out.append(re.escape(c))
            escaped = False
        elif c == "\\":
            escaped = True
        else:
            out.append({"%": ".*", "_": "."}.get(c) or re.escape(c))
    return re.compile("".join(out), re.IGNORECASE | re.DOTALL)


def _offsets_json(text: str) -> dict[str, int]:
    try:
        value = json.loads(text)
    except ValueError as exc:
        raise SluiceError(f"SET OFFSETS needs a JSON object like '{{\"0\": 42}}': {exc}") from exc
    if not isinstance(value, dict) or not all(isinstance(v, int) for v in value.values()):
        raise SluiceError(
            "SET OFFSETS needs a JSON object of partition → offset, like '{\"0\": 42}'"
        )
    return {str(k): int(v) for k, v in value.items()}


def _config_json(defn: ast.CreatePipeline) -> str:
    fmt = defn.format.kind if isinstance(defn.format, ast.MappedSpec) else "CSV"
    config = {
        "source_type": defn.source.kind,
        "connection_string": defn.source.uri,
        "config": json.loads(defn.source.config) if defn.source.config else {},
        "table": defn.table,
        "format": fmt,
        "batch_interval": defn.batch_interval,
        "max_offsets_per_batch_partition": defn.max_offsets_per_batch_partition,
        "duplicates": defn.duplicates or ("UPDATE" if defn.on_duplicate_key_update else None),
    }
    return json.dumps(config)
