"""The background batch loop of one Running pipeline."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from sluice.engine.runtime import PipelineRuntime
from sluice.errors import TransientError
from sluice.sql import ast, parse
from sluice.stores.base import Store

log = logging.getLogger("sluice.engine")

MAX_BACKOFF_SECONDS = 5.0


class PipelineRunner:
    """Runs batches on a thread of its own until stopped or a terminal error.

    ``definition`` reads the stored definition before every batch; when it changes
    (CREATE OR REPLACE, ALTER PIPELINE) the runner recompiles between two batches.
    """

    def __init__(
        self,
        name: str,
        store: Store,
        definition: Callable[[Store], str],
        on_error: Callable[[str, BaseException, Store], None],
    ) -> None:
        self.name = name
        self._store = store
        self._definition = definition
        self._on_error = on_error
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"pipeline-{name}", daemon=True)
        self.batches = 0
        self.rows = 0

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Ask the loop to stop after its current batch, and wait for it."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)

    @property
    def alive(self) -> bool:
        return self._thread.is_alive()

    def _run(self) -> None:
        store = self._store
        runtime: PipelineRuntime | None = None
        current = ""
        backoff = 0.1
        try:
            while not self._stop.is_set():
                try:
                    text = self._definition(store)
                    if runtime is None or text != current:
                        if runtime is not None:
                            runtime.close()
                            runtime = None
                        stmt = parse(text)
                        assert isinstance(stmt, ast.CreatePipeline)
                        runtime, current = PipelineRuntime(stmt, store), text
                    t0 = time.monotonic()
                    report = runtime.run_batch(store, runtime.batch_interval)
                    backoff = 0.1
                    if report is None:
                        self._stop.wait(max(0.0, runtime.batch_interval - (time.monotonic() - t0)))
                    else:
                        self.batches += 1
                        self.rows += report.rows
                except TransientError as exc:
                    log.warning("pipeline %s: %s (retrying in %.1f s)", self.name, exc, backoff)
                    self._stop.wait(backoff)
                    backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
                except Exception as exc:
                    log.error("pipeline %s stopped: %s", self.name, exc)
                    self._on_error(self.name, exc, store)
                    return
        finally:
            if runtime is not None:
                runtime.close()
            store.close()
