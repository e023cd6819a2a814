"""FS source: every file matching a glob is one partition, loaded once, whole."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping

from sluice.errors import SourceError
from sluice.sources.base import PartitionBatch, Source

UNLOADED, LOADED = 0, 1
DEFAULT_FILES_PER_BATCH = 64


class FileSource(Source):
    kind = "FS"

    def __init__(self, pattern: str, config: Mapping[str, object], *, pipeline: str = "") -> None:
        unknown = set(config) - {"files_per_batch"}
        if unknown:
            raise SourceError(
                f"unknown FS CONFIG key(s) {sorted(unknown)}; valid keys: ['files_per_batch']",
                pipeline=pipeline,
            )
        self.pattern = os.path.expanduser(pattern)
        self.pipeline = pipeline
        self.files_per_batch = int(str(config.get("files_per_batch", DEFAULT_FILES_PER_BATCH)))

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
    ) -> list[PartitionBatch]:
        pending = [f for f in self._files() if cursors.get(f, UNLOADED) == UNLOADED]
        if not pending:
            return []  # the engine waits BATCH_INTERVAL before looking again
        batches = []
        for path in pending[: self.files_per_batch]:
            try:
                with open(path, "rb") as fh:
                    data = fh.read()
            except FileNotFoundError:
                continue  # removed since the listing: it is not there to load
            except OSError as exc:
                raise SourceError(f"cannot read {path}: {exc}", pipeline=self.pipeline) from exc
            start = cursors.get(path)
            batches.append(PartitionBatch(path, start, LOADED, data=data, size=len(data)))
        return batches

    def earliest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), UNLOADED)

    def latest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), LOADED)
