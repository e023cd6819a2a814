"""FS source: every file matching a glob is one partition, loaded once.

A file's cursor is 0 while it is not loaded and 1 once it is. A batch reads at most
``max_bytes_per_batch`` bytes in all: a larger file is loaded over several batches, each cut
where a record ends (as the format says), its cursor meanwhile ``-n`` for its first ``n`` bytes
loaded. Each piece commits with its cursor, so a crash resumes the file where it stopped.

A file modified in the last ``SETTLE_SECONDS`` (1 s) is left for a later batch: a file still being
written (``cp`` into the directory, a writer flushing) would otherwise load cut short and be
marked loaded. Writing elsewhere and renaming into the directory (as ``mv`` does) is atomic and
never waits.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable, Mapping

from sluice.errors import SourceError
from sluice.options import Option, OptionSpec
from sluice.sources.base import Source
from sluice.vocab import PartitionBatch

UNLOADED, LOADED = 0, 1
SETTLE_SECONDS = 1.0  # a file is loaded once it has not changed for this long
OPTIONS = OptionSpec(
    "FS CONFIG",
    (
        Option("files_per_batch", 64, "the most files one batch reads", minimum=1),
        Option(
            "max_bytes_per_batch",
            64 * 1024 * 1024,
            "the most bytes one batch reads; a larger file loads over several batches",
            minimum=1,
        ),
    ),
)


def _after_last_newline(data: bytes) -> int:
    return data.rfind(b"\n") + 1


class FileSource(Source):
    kind = "FS"

    def __init__(
        self,
        pattern: str,
        config: Mapping[str, object],
        credentials: Mapping[str, object] | None = None,
        *,
        pipeline: str = "",
        record_end: Callable[[bytes], int] | None = None,
        settle: float = SETTLE_SECONDS,
    ) -> None:
        if credentials:
            raise SourceError("LOAD DATA FS takes no CREDENTIALS", pipeline=pipeline)
        values = OPTIONS.parse(config, error=SourceError, pipeline=pipeline)
        self.pattern = os.path.expanduser(pattern)
        self.pipeline = pipeline
        self.files_per_batch = values["files_per_batch"]
        self.max_bytes = values["max_bytes_per_batch"]
        self._record_end = record_end or _after_last_newline
        self._settle = settle

    def check(self) -> None:
        directory = os.path.dirname(self.pattern) or "."
        if not glob.has_magic(directory) and not os.path.isdir(directory):
            raise SourceError(f"directory {directory!r} does not exist", pipeline=self.pipeline)

    def _files(self) -> list[str]:
        return sorted(p for p in glob.glob(self.pattern, recursive=True) if os.path.isfile(p))

    def extract(
        self,
        cursors: Mapping[str, int],
        max_per_partition: int,
        wait: float,
        *,
        stop_at_end: bool = False,
        max_partitions: int | None = None,
    ) -> list[PartitionBatch]:
        # A FOREGROUND run waits for every file still settling, so it loads what was just
        # written; a running pipeline takes what has settled, or waits for the first to.
        deadline = time.monotonic() + (1.5 * self._settle if stop_at_end else wait)
        while True:
            pending, settles_in = self._ready(cursors)
            if settles_in is None or (pending and not stop_at_end):
                break
            if time.monotonic() + settles_in > deadline:
                break
            time.sleep(settles_in)
        if not pending:
            return []  # the engine waits BATCH_INTERVAL before looking again
        limit = min(self.files_per_batch, max_partitions or self.files_per_batch)
        budget = self.max_bytes
        batches = []
        for path in pending[:limit]:
            if budget <= 0:
                break
            start = cursors.get(path)
            done = -start if start is not None and start < 0 else 0
            try:
                piece = self._read(path, done, budget)
            except FileNotFoundError:
                continue  # removed since the listing: it is not there to load
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc}", pipeline=self.pipeline) from exc
            data, size, end = piece
            batches.append(
                PartitionBatch(path, start, end, data=data, size=size, continues=done > 0)
            )
            budget -= len(data)
        return batches

    def _ready(self, cursors: Mapping[str, int]) -> tuple[list[str], float | None]:
        """The files left to load that have settled, and the seconds until the first of those
        still changing settles (None if none is)."""
        ready, settles_in = [], None
        now = time.time()
        for path in self._files():
            if cursors.get(path, UNLOADED) == LOADED:
                continue
            try:
                age = now - os.stat(path).st_mtime
            except FileNotFoundError:
                continue
            if 0 <= age < self._settle:
                left = self._settle - age
                settles_in = left if settles_in is None else min(settles_in, left)
            else:
                ready.append(path)
        return ready, settles_in

    def _read(self, path: str, done: int, budget: int) -> tuple[bytes, int, int]:
        """(bytes from ``done``, the file's size, the cursor after them): all that is left if
        it fits ``budget``, else up to where the last record within ``budget`` ends (further
        only if one record is larger than ``budget``)."""
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            fh.seek(done)
            data = fh.read(budget)
            while done + len(data) < size:
                cut = self._record_end(data)
                if cut > 0:
                    return data[:cut], size, -(done + cut)
                more = fh.read(budget)  # one record larger than the budget: read on to its end
                if not more:
                    break
                data += more
        return data, size, LOADED

    def earliest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), UNLOADED)

    def latest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), LOADED)
