"""The background batch loop of one Running pipeline."""

from __future__ import annotations

import logging
import random
import threading
import time
import traceback
from collections.abc import Callable

from sluice.engine.metrics import PipelineMetrics
from sluice.engine.runtime import PipelineRuntime
from sluice.errors import (
    Failure,
    RejectedRecordError,
    SluiceError,
    SourceError,
    TransformError,
    classify,
)
from sluice.sql import ast, parse
from sluice.stores.base import Store
from sluice.vocab import Rejected

log = logging.getLogger("sluice.engine")

MAX_BACKOFF_SECONDS = 5.0
STANDBY_SECONDS = 1.0  # how often a runner asks again for a pipeline another process holds


class PipelineRunner:
    """Runs batches on a thread of its own until stopped, a terminal error, or the pipeline
    leaves the Running state (stopped or dropped by another process).

    Before every batch the runner reads the pipeline's stored record: when the definition
    changed (CREATE OR REPLACE, ALTER PIPELINE) it recompiles between two batches. On a store
    several processes share, it loads only while its connection holds the pipeline's claim,
    and stands by while another process holds it.
    """

    def __init__(
        self,
        name: str,
        store: Store,
        on_error: Callable[[str, BaseException, Store], None],
        metrics: PipelineMetrics,
    ) -> None:
        self.name = name
        self._store = store
        self._on_error = on_error
        self._metrics = metrics
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{name}", daemon=True)
        self.batches = 0
        self.rows = 0
        self.failed = False  # stopped by a terminal error; the thread may still be closing
        # its last batch read every partition to its end, or it found nothing new: its lag is
        # nil, and the lag monitor need not read the source behind it
        self.caught_up = False
        self._runtime: PipelineRuntime | None = None  # the one in use, for stop() to cancel

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to stop after its current batch, and wait for it. Transform programs
        running for the batch are killed: the batch then loads nothing."""
        self._stop.set()
        runtime = self._runtime
        if runtime is not None:
            runtime.cancel()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        store = self._store
        runtime: PipelineRuntime | None = None
        current = ""
        # Failed attempts at the next batch, by kind of failure, since a batch last loaded (a
        # poll that finds nothing proves nothing: a re-read after a failure may come back empty).
        attempts: dict[Failure, int] = {}
        warned = False  # a transient condition is reported once, not on every retry
        skip_all = False  # STOP_ON_ERROR OFF: leave out the records that failed the batch
        standby = False
        try:
            while not self._stop.is_set():
                try:
                    record = store.record(self.name)
                    if record is None or record.state != "Running":
                        log.info("pipeline %s is no longer Running; its runner ends", self.name)
                        return
                    if not store.claim(self.name):
                        if not standby:
                            log.info(
                                "pipeline %s: another process loads it; standing by", self.name
                            )
                            standby = True
                        self._stop.wait(STANDBY_SECONDS * random.uniform(0.5, 1.0))
                        continue
                    standby = False
                    text = record.definition
                    if runtime is None or text != current:
                        if runtime is not None:
                            runtime.close()
                            runtime = None
                        stmt = parse(text)
                        assert isinstance(stmt, ast.CreatePipeline)
                        runtime, current = PipelineRuntime(stmt, store), text
                        self._runtime = runtime
                        if self._stop.is_set():  # stop() came while it was built
                            runtime.cancel()
                    t0 = time.monotonic()
                    report = runtime.run_batch(store, runtime.batch_interval, skip_all=skip_all)
                    warned = False  # what was transient has cleared
                    attempts.pop(Failure.TRANSIENT, None)
                    self.caught_up = report is None or report.caught_up
                    if report is None:
                        self._stop.wait(max(0.0, runtime.batch_interval - (time.monotonic() - t0)))
                    else:
                        attempts, skip_all = {}, False
                        self.batches += 1
                        self.rows += report.rows
                        self._metrics.batch(self.name, report)
                except Exception as exc:
                    self.caught_up = False
                    if self._stop.is_set():  # stopped under the batch (a killed program)
                        return
                    self._metrics.failed(self.name)
                    kind = classify(exc)
                    attempts[kind] = attempts.get(kind, 0) + 1
                    retry = self._next_step(exc, attempts[kind], runtime, skip_all)
                    if retry is None:
                        self.failed = True
                        self._on_error(self.name, exc, store)
                        return
                    if kind is Failure.TRANSIENT and not warned:
                        warned = record_failure(store, self.name, exc, error_type="Warning")
                    skip_all = skip_all or kind is Failure.RECORD
                    self._stop.wait(retry)
        finally:
            if runtime is not None:
                runtime.close()
            store.close()

    def _next_step(
        self, exc: Exception, attempts: int, runtime: PipelineRuntime | None, skipping: bool
    ) -> float | None:
        """What a failed attempt leads to, by the kind of failure (``sluice.errors.classify``):
        seconds to wait before the next attempt, or None to stop in state Error."""
        kind = classify(exc)
        if kind is Failure.TRANSIENT:  # for as long as it lasts: the pipeline stays Running
            delay = backoff(attempts)
            log.warning("pipeline %s: %s (retrying in %.1f s)", self.name, exc, delay)
            return delay
        skippable = runtime is not None and not runtime.stop_on_error and not skipping
        if kind is Failure.RECORD and skippable:  # the next attempt leaves them out
            log.warning("pipeline %s: skipping what fails the batch: %s", self.name, exc)
            return 0.0
        if kind in (Failure.BUG, Failure.RETRIED):
            retries = runtime.max_retries if runtime is not None else 0
            if attempts <= retries:
                log.warning(
                    "pipeline %s: batch failed, retry %d of %d: %s", self.name, attempts, retries,
                    exc if kind is Failure.RETRIED else repr(exc),
                )  # fmt: skip
                return backoff(attempts)
            if kind is Failure.RETRIED:
                log.error("pipeline %s stopped: %s", self.name, exc)
            else:
                log.error("pipeline %s stopped by an unexpected error", self.name, exc_info=exc)
        else:
            log.error("pipeline %s stopped: %s", self.name, exc)
        return None


def backoff(attempt: int) -> float:
    """0.1 s, doubling with each attempt up to a cap, less up to half of it at random (so that
    pipelines failing together do not retry together)."""
    ceiling = min(0.1 * 2 ** (attempt - 1), MAX_BACKOFF_SECONDS)
    return float(ceiling * random.uniform(0.5, 1.0))


def record_failure(
    store: Store, name: str, exc: BaseException, *, error_type: str = "Error"
) -> bool:
    """Note ``exc`` in PIPELINES_ERRORS, with its record when it is about one, and with its
    traceback when it is a bug."""
    where = exc.rejected if isinstance(exc, RejectedRecordError) else None
    if not isinstance(where, Rejected):
        kind = "Extract" if isinstance(exc, SourceError) else "Load"
        if isinstance(exc, TransformError):
            kind = "Transform"
        elif classify(exc) is Failure.BUG:
            kind = "Internal"
        where = Rejected(kind, str(exc), exc.partition if isinstance(exc, SluiceError) else None)
    message = describe(exc)
    batch_id = exc.batch_id if isinstance(exc, SluiceError) else None
    try:
        store.record_error(
            name,
            kind=where.kind,
            message=message,
            batch_id=batch_id,
            partition=where.partition,
            offset=where.offset,
            raw=where.raw,
            error_type=error_type,
            std_error=exc.stderr if isinstance(exc, TransformError) else None,
        )
        return True
    except Exception as failure:  # the store itself may be what is failing
        log.warning("pipeline %s: could not record the error: %s", name, failure)
        return False


def describe(exc: BaseException, *, trace: bool = True) -> str:
    """The message a user sees for ``exc``: its text; for a bug, what it is and (``trace``)
    the traceback."""
    if classify(exc) is not Failure.BUG:
        return str(exc)
    head = f"unexpected error (a bug in Sluice; please report it): {exc!r}"
    if not trace:
        return head + " (its traceback is in information_schema.PIPELINES_ERRORS)"
    return head + "\n" + "".join(traceback.format_exception(exc)).rstrip()
