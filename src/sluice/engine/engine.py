"""Runs pipeline statements against a store: the catalog, the lifecycle, the runners."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
from collections.abc import Callable
from typing import Any

from sluice.engine.rejects import diagnose, without
from sluice.engine.runner import PipelineRunner, record_failure
from sluice.engine.runtime import (
    FOREGROUND_WAIT_SECONDS,
    PipelineRuntime,
    check_supported,
)
from sluice.errors import CatalogError, SluiceError
from sluice.result import Result
from sluice.sources import build_source
from sluice.sql import ast, parse, render
from sluice.stores.base import PipelineRecord, Store, process_label
from sluice.stores.loadsql import ROW_COLUMN

log = logging.getLogger("sluice.engine")

RUNNING, STOPPED, ERROR = "Running", "Stopped", "Error"


class Engine:
    """Runs the pipeline statements of every session of one database. Its ``store`` holds the
    catalog and is used by one statement at a time (a lock); every runner and every session
    works on a fork of it."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._runners: dict[str, PipelineRunner] = {}
        self._lock = threading.Lock()  # the runners map
        self._statement = threading.RLock()  # one pipeline statement at a time
        self._handlers: dict[type, Callable[[Any], Result]] = {
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
        }

    def execute(self, stmt: ast.Statement) -> Result:
        with self._statement:
            if isinstance(stmt, ast.Passthrough):
                return self.store.execute(stmt.sql)
            return self._handlers[type(stmt)](stmt)

    def resume(self) -> None:
        """Start the pipelines that were Running when the database was last closed."""
        for record in self.store.pipelines():
            if record.state == RUNNING:
                self._spawn(record.name)

    def close(self) -> None:
        """Stop every runner after its current batch. States are kept, so pipelines that
        were Running resume when the database is opened again."""
        with self._lock:
            runners = list(self._runners.values())
            self._runners.clear()
        for runner in runners:
            runner.stop()

    # -- catalog helpers ----------------------------------------------------------------------

    def _record(self, name: str) -> PipelineRecord:
        record = next((r for r in self.store.pipelines() if r.name.lower() == name.lower()), None)
        if record is None:
            raise CatalogError(f"pipeline {name} does not exist (SHOW PIPELINES lists them)")
        return record

    def _definition(self, name: str) -> ast.CreatePipeline:
        stmt = parse(self._record(name).definition)
        assert isinstance(stmt, ast.CreatePipeline)
        return stmt

    def _running(self, name: str) -> bool:
        runner = self._runners.get(name)
        return runner is not None and runner.alive and not runner.failed

    def _save(self, defn: ast.CreatePipeline, state: str, *, replace: bool) -> None:
        record = PipelineRecord(defn.name, render(defn), _config_json(defn), state)
        self.store.save_pipeline(record, replace=replace)

    # -- statements ---------------------------------------------------------------------------

    def _create(self, stmt: ast.CreatePipeline) -> Result:
        warnings = check_supported(stmt)
        existing = {r.name.lower(): r for r in self.store.pipelines()}.get(stmt.name.lower())
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
        runtime = PipelineRuntime(defn, self.store)  # validates table, columns, format, source
        try:
            runtime.source.check()
        finally:
            runtime.close()
        state = existing.state if existing is not None else STOPPED
        self._save(defn, state, replace=existing is not None)
        return Result(warnings=warnings)

    def _start(self, stmt: ast.StartPipeline) -> Result:
        if stmt.name is None:
            for record in self.store.pipelines():
                if not self._running(record.name):
                    self._launch(record.name)
            return Result()
        name = self._record(stmt.name).name
        if self._running(name):
            if stmt.if_not_running:
                return Result()
            raise CatalogError(f"pipeline {name} is already running")
        if stmt.foreground:
            return self._foreground(name, stmt.limit_batches)
        self._launch(name)
        return Result()

    def _launch(self, name: str) -> None:
        self.store.set_state(name, RUNNING)
        self._spawn(name)

    def _spawn(self, name: str) -> None:
        with self._lock:
            previous = self._runners.pop(name, None)
        if previous is not None:
            previous.stop()  # a failed runner may still be releasing its source
        runner = PipelineRunner(name, self.store.fork(), self._failed)
        with self._lock:
            self._runners[name] = runner
        runner.start()
        log.info("pipeline %s: Running", name)

    def _failed(self, name: str, exc: BaseException, store: Store) -> None:
        """Called on the runner's thread, with the runner's store."""
        record_failure(store, name, exc)  # first: whoever sees Error finds the reason
        store.set_state(name, ERROR, str(exc))
        # The runner stays registered until its thread ends, so that close() waits for it to
        # release its source (a consumer left open can outlive the database otherwise).
        log.info("pipeline %s: Error", name)

    def _foreground(self, name: str, limit: int | None) -> Result:
        runtime = PipelineRuntime(self._definition(name), self.store)
        rows: list[tuple[int, int, int, int, float]] = []
        try:
            while limit is None or len(rows) < limit:
                try:
                    report = runtime.run_batch(
                        self.store, FOREGROUND_WAIT_SECONDS, stop_at_end=True
                    )
                except SluiceError as exc:
                    record_failure(self.store, name, exc)
                    raise
                if report is None:
                    break
                rows.append(
                    (report.batch_id, report.rows, report.rows_loaded, report.rejected,
                     report.seconds)
                )  # fmt: skip
        finally:
            runtime.close()
        columns = ["BATCH_ID", "ROWS_STREAMED", "ROWS_LOADED", "ERRORS", "BATCH_TIME"]
        return Result(columns, rows, rowcount=sum(r[2] for r in rows))

    def _stop(self, stmt: ast.StopPipeline) -> Result:
        names = (
            [r.name for r in self.store.pipelines() if r.state == RUNNING]
            if stmt.name is None
            else [self._record(stmt.name).name]
        )
        for name in names:
            if not self._running(name) and stmt.name is not None and not stmt.if_running:
                raise CatalogError(f"pipeline {name} is not running")
            self._halt(name)
            self.store.set_state(name, STOPPED)
            log.info("pipeline %s: Stopped", name)
        return Result()

    def _halt(self, name: str) -> None:
        with self._lock:
            runner = self._runners.pop(name, None)
        if runner is not None:
            runner.stop()

    def _drop(self, stmt: ast.DropPipeline) -> Result:
        try:
            name = self._record(stmt.name).name
        except CatalogError:
            if stmt.if_exists:
                return Result()
            raise
        self._halt(name)
        self.store.drop_pipeline(name)
        return Result()

    def _show(self, stmt: ast.ShowPipelines) -> Result:
        """Each pipeline, its state, and the process loading it (``host:pid``): as the shared
        store's claims say, else this process for the pipelines it runs."""
        holders = self.store.holders()
        if not self.store.shared:  # one process: this one, for the pipelines it runs
            holders = {n: process_label() for n in list(self._runners) if self._running(n)}
        rows = [(r.name, r.state, holders.get(r.name)) for r in self.store.pipelines()]
        return Result(["Pipelines", "State", "Process"], rows)

    def _show_create(self, stmt: ast.ShowCreatePipeline) -> Result:
        record = self._record(stmt.name)
        defn = parse(record.definition)
        text = render(defn, hide_secrets=True)
        if stmt.extended:
            offsets = json.dumps(self.store.cursors(record.name), sort_keys=True)
            alter = ast.AlterPipeline(record.name, offsets=offsets)
            text += ";\n" + render(alter)
        return Result(["Pipeline", "Create Pipeline"], [(record.name, text)])

    def _test(self, stmt: ast.TestPipeline) -> Result:
        runtime = PipelineRuntime(self._definition(stmt.name), self.store)
        try:
            return runtime.test(self.store, stmt.limit)
        finally:
            runtime.close()

    def _replay(self, stmt: ast.ReplayErrors) -> Result:
        """Parse the stored raw records again through the current definition and load the
        ones that now succeed; they leave PIPELINES_ERRORS in the same transaction."""
        name = self._record(stmt.name).name
        runtime = PipelineRuntime(self._definition(name), self.store)
        try:
            stored = self.store.rejected_records(name, stmt.where)
            ids = [error_id for error_id, _ in stored]
            parsed = runtime.format.parse_records([r.raw or b"" for _, r in stored])
            index = parsed.record_index
            if index is None:  # rows do not map to records one to one: replay none of them
                rows, failing = parsed.table.slice(0, 0), {i: "not replayable" for i in ids}
            else:
                rows = parsed.table.append_column(ROW_COLUMN, index)
                failing = {ids[e.index]: e.reason for e in parsed.errors if e.index is not None}
                found = diagnose(self.store, runtime.plan, rows) if rows.num_rows else []
                failing.update({ids[f.row]: f.reason for f in found})
                rows = without(rows, {f.row for f in found})
            replayed = [i for i in ids if i not in failing]
            loaded = self.store.replay(name, runtime.plan, rows, replayed, sorted(failing.items()))
        finally:
            runtime.close()
        columns = ["ROWS_LOADED", "ERRORS_REPLAYED", "ERRORS_REMAINING"]
        return Result(columns, [(loaded, len(replayed), len(failing))], rowcount=loaded)

    def _clear_errors(self, stmt: ast.ClearErrors) -> Result:
        name = self._record(stmt.name).name if stmt.name is not None else None
        return Result(rowcount=self.store.clear_errors(name))

    def _alter(self, stmt: ast.AlterPipeline) -> Result:
        defn = self._definition(stmt.name)
        name = defn.name
        changes = {
            key: getattr(stmt, key)
            for key in (
                "batch_interval",
                "max_offsets_per_batch_partition",
                "max_retries_per_batch_partition",
                "transform",
                "stop_on_error",
            )
            if getattr(stmt, key) is not None
        }
        if changes:
            changed = dataclasses.replace(defn, **changes)
            check_supported(changed)
            self._save(changed, self._record(name).state, replace=True)
        if stmt.drop_file is not None:
            self.store.set_cursors(name, defn.source.kind, {stmt.drop_file: 0})
        if stmt.offsets is not None:
            self._set_offsets(defn, stmt.offsets)
        return Result()

    def _set_offsets(self, defn: ast.CreatePipeline, value: str) -> None:
        running = self._running(defn.name)
        if running:
            self._halt(defn.name)  # its in-flight batch must not race the new cursors
        try:
            if value in ("EARLIEST", "LATEST"):
                source = build_source(defn.source, pipeline=defn.name)
                try:
                    offsets = source.earliest() if value == "EARLIEST" else source.latest()
                finally:
                    source.close()
            else:
                offsets = _offsets_json(value)
            self.store.set_cursors(defn.name, defn.source.kind, offsets)
        finally:
            if running:
                self._spawn(defn.name)


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
