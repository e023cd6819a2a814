"""FS source: every file matching a glob is one partition, loaded once.

A file's cursor is 0 while it is not loaded and 1 once it is. A batch reads at most
``max_bytes_per_batch`` bytes in all: a larger file is loaded over several batches, each cut
where a record ends (as the format says), its cursor meanwhile ``-n`` for its first ``n`` bytes
loaded. Each piece commits with its cursor, so a crash resumes the file where it stopped.

A compressed file (``.gz``, ``.zst``, ``.bz2``, ``.lz4``) is decompressed as a stream (Arrow's
codecs), its cursor counting decompressed bytes. A format that reads its files itself (Parquet,
by row groups) is handed the open file instead, and its cursor counts its pieces.

A file modified in the last ``SETTLE_SECONDS`` (1 s) is left for a later batch: a file still being
written (``cp`` into the directory, a writer flushing) would otherwise load cut short and be
marked loaded. Writing elsewhere and renaming into the directory (as ``mv`` does) is atomic and
never waits.
"""

from __future__ import annotations

import glob
import io
import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import BinaryIO

import pyarrow as pa

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


#: File name endings → the Arrow codec that decompresses them.
COMPRESSED = {".gz": "gzip", ".zst": "zstd", ".bz2": "bz2", ".lz4": "lz4"}
#: Reads a piece of an open file from a cursor within a budget of bytes: (its columns, the
#: cursor after it). See ``Format.read_file``.
PieceReader = Callable[[BinaryIO, int, int], tuple[pa.Table, int]]


def _after_last_newline(data: bytes) -> int:
    return data.rfind(b"\n") + 1


def codec_of(path: str) -> str | None:
    return next((c for end, c in COMPRESSED.items() if path.lower().endswith(end)), None)


def decompressing(raw: BinaryIO, path: str) -> BinaryIO:
    """``raw`` (the bytes of ``path``), decompressed as it is read if the name says so."""
    codec = codec_of(path)
    if codec is None:
        return raw
    stream: BinaryIO = pa.CompressedInputStream(pa.PythonFile(raw, mode="r"), codec)
    return stream


def read_piece(
    fh: BinaryIO, done: int, budget: int, record_end: Callable[[bytes], int]
) -> tuple[bytes, int]:
    """(bytes from ``done``, the cursor after them) of a stream: all that is left if it fits
    ``budget``, else up to where the last record within ``budget`` ends (further only if one
    record is larger than ``budget``)."""
    _skip(fh, done)
    data = fh.read(budget + 1)  # one byte more says whether anything follows the budget
    if len(data) <= budget:
        return data, LOADED
    window = budget
    while True:
        cut = record_end(data[:window])
        if cut > 0:
            return data[:cut], -(done + cut)
        more = fh.read(budget)  # one record larger than the budget: read on to its end
        if not more:
            return data, LOADED
        data += more
        window = len(data)


def _skip(fh: BinaryIO, n: int) -> None:
    """Move ``fh`` (at its start) ``n`` bytes on: a seek, or for a decompressing stream,
    which cannot seek, reading past what is loaded."""
    if fh.seekable():
        fh.seek(n)
        return
    left = n
    while left > 0:
        chunk = fh.read(min(left, 1 << 20))
        if not chunk:
            break
        left -= len(chunk)


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
        read_file: PieceReader | None = None,
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
        self._read_file = read_file
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
        needed: threading.Event | None = None,  # returns once it has something anyway
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
                batch = self._read(path, start, done, budget)
            except FileNotFoundError:
                continue  # removed since the listing: it is not there to load
            except (OSError, pa.ArrowException) as exc:
                raise SourceError(f"cannot read {path}: {exc}", pipeline=self.pipeline) from exc
            batches.append(batch)
            budget -= batch.nbytes
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

    def _filename(self, path: str) -> str:
        """The name a partition's compression is read from."""
        return path

    def _open(self, path: str) -> tuple[BinaryIO, int]:
        """A file's bytes, seekable, and its size."""
        raw = open(path, "rb")  # noqa: SIM115 - closed by the caller's with
        return raw, os.fstat(raw.fileno()).st_size

    def _read(self, path: str, start: int | None, done: int, budget: int) -> PartitionBatch:
        raw, size = self._open(path)
        with raw:
            if self._read_file is not None:
                fh: BinaryIO = raw
                if codec_of(self._filename(path)) is not None:  # the format seeks: decompress
                    with decompressing(raw, self._filename(path)) as stream:  # it whole first
                        fh = io.BytesIO(stream.read())
                table, end = self._read_file(fh, done, budget)
                return PartitionBatch(path, start, end, table=table, size=size)
            with decompressing(raw, self._filename(path)) as fh:
                data, end = read_piece(fh, done, budget, self._record_end)
        return PartitionBatch(path, start, end, data=data, size=size, continues=done > 0)

    def earliest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), UNLOADED)

    def latest(self) -> dict[str, int]:
        return dict.fromkeys(self._files(), LOADED)
