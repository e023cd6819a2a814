"""WITH TRANSFORM ('uri', 'program', 'arguments'): an external program between extract and parse.

As SingleStore defines it: the program runs once per partition of a batch, reads the extracted
records on standard input and writes records in the pipeline's format on standard output. Kafka
records reach it framed, each an 8-byte little-endian length and the payload; a file's bytes
reach it as they are. A non-zero exit, or a run longer than ``transform_timeout_ms``, fails the
batch (nothing of it loads) with the program's standard error, which is also kept in
``PIPELINES_ERRORS.STD_ERROR``. The partitions' programs run at once, and ``cancel()`` (STOP
PIPELINE) kills the ones running; if Sluice's process dies, the kernel kills them too.

``uri`` is ``file://[localhost]/path`` to the program, to a directory or a ``.tar.gz``/``.tgz``
holding ``program``, or the name of an executable on ``PATH``. A program file that is not
executable runs with this Python if it ends in ``.py`` and with ``sh`` if in ``.sh``.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import tempfile
import threading
from array import array
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from itertools import accumulate
from typing import Any
from urllib.parse import unquote, urlparse

import pyarrow as pa
import pyarrow.compute as pc

from sluice.errors import TransformError
from sluice.options import Option, OptionSpec
from sluice.vocab import ArrowRecords, PartitionBatch, empty_for_null, numpy_ints, value_span

OPTIONS = OptionSpec(
    "TRANSFORM CONFIG",
    (
        Option(
            "transform_timeout_ms",
            60_000,
            "how long one run of the program may take before it is killed and the batch fails",
            minimum=1,
        ),
    ),
)
_STDERR_KEPT = 64 * 1024  # the end of a program's standard error that an error keeps
_ARCHIVES = (".tar.gz", ".tgz")
_SETPRIV = shutil.which("setpriv") if sys.platform.startswith("linux") else None


def frame(records: Sequence[bytes]) -> bytes:
    """Kafka records as a transform reads them: each an 8-byte little-endian length, then the
    payload. Built by Arrow kernels over the whole batch, not a Python loop; records the native
    drain holds in Arrow stay there."""
    if not records:
        return b""
    if isinstance(records, ArrowRecords):
        return b"".join(_framed(chunk) for chunk in records.chunks)
    offsets = array("q", accumulate(map(len, records), initial=0))
    return _framed(
        pa.Array.from_buffers(
            pa.large_binary(),
            len(records),
            [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(records))],
        )
    )


def _framed(values: pa.Array) -> bytes:
    values = empty_for_null(values.cast(pa.large_binary()))
    lengths = numpy_ints(pc.binary_length(values)).astype("<u8")
    prefix = pa.FixedSizeBinaryArray.from_buffers(
        pa.binary(8), len(values), [None, pa.py_buffer(lengths)]
    ).cast(pa.large_binary())
    joined = pc.binary_join_element_wise(prefix, values, _NOTHING)
    start, end = value_span(joined)
    return bytes(joined.buffers()[2][start:end])


_NOTHING = pa.scalar(b"", pa.large_binary())


class ProgramTransform:
    """The program of one pipeline. ``run`` may be called from one thread at a time;
    ``cancel`` from any."""

    def __init__(
        self,
        uri: str,
        program: str,
        arguments: str,
        config: Mapping[str, Any],
        *,
        pipeline: str = "",
    ) -> None:
        self.pipeline = pipeline
        options = OPTIONS.parse(config, error=TransformError, pipeline=pipeline)
        self.timeout = options["transform_timeout_ms"] / 1000
        self._unpacked: tempfile.TemporaryDirectory[str] | None = None
        try:
            self.argv = [*self._command(uri, program), *shlex.split(arguments)]
        except BaseException:
            self._remove_unpacked()  # an archive without the program named
            raise
        # If this process dies (even by SIGKILL), the kernel kills its programs too: util-linux
        # setpriv sets that up and execs the program, so no Python runs in the forked child.
        self._launch = [_SETPRIV, "--pdeathsig", "KILL", "--"] if _SETPRIV else []
        self._running: set[subprocess.Popen[bytes]] = set()
        self._lock = threading.Lock()
        self._cancelled = False
        self._pool: ThreadPoolExecutor | None = None

    # -- finding the program ------------------------------------------------------------------

    def _command(self, uri: str, program: str) -> list[str]:
        parsed = urlparse(uri)
        if parsed.scheme == "":
            found = shutil.which(uri) if uri else None
            if found is None:
                raise self._error(f"transform program {uri!r} is not on PATH; give its file:// URI")
            return [found]
        if parsed.scheme != "file":
            raise self._error(
                f"transform URI {uri!r}: only file:// URIs and executable names are supported"
            )
        path = unquote(parsed.path)
        if not os.path.exists(path):
            raise self._error(f"transform {uri!r}: {path} does not exist")
        if path.endswith(_ARCHIVES):
            path = self._unpack(path)
        if os.path.isdir(path):
            if not program:
                raise self._error(f"transform {uri!r} is a directory: name the program in it")
            path = os.path.join(path, program)
            if not os.path.isfile(path):
                raise self._error(f"transform {uri!r} holds no program {program!r}")
        return _runner(path)

    def _unpack(self, archive: str) -> str:
        self._unpacked = tempfile.TemporaryDirectory(prefix="sluice-transform-")
        try:
            with tarfile.open(archive) as tar:
                tar.extractall(self._unpacked.name, filter="data")
        except (OSError, tarfile.TarError) as exc:
            raise self._error(f"transform archive {archive} cannot be unpacked: {exc}") from exc
        return self._unpacked.name

    def _error(self, message: str, stderr: str | None = None) -> TransformError:
        return TransformError(message, pipeline=self.pipeline, stderr=stderr)

    # -- running it ---------------------------------------------------------------------------

    def run(self, parts: Sequence[PartitionBatch]) -> list[PartitionBatch]:
        """Each partition through the program, all at once; its output replaces the records as
        the data the format parses. Raises ``TransformError`` if any run fails."""
        if len(parts) == 1:
            return [self._run_one(parts[0])]
        if self._pool is None:
            self._pool = ThreadPoolExecutor(thread_name_prefix=f"transform-{self.pipeline}")
        return list(self._pool.map(self._run_one, parts))

    def _run_one(self, part: PartitionBatch) -> PartitionBatch:
        stdin = part.data if part.data is not None else frame(part.records)
        out, err = self._execute(stdin, part.partition)
        # One output record per input record keeps each row's offset (its lineage).
        offsets = part.offsets if part.data is None else ()
        return dataclasses.replace(
            part, records=(), data=out, offsets=offsets, continues=part.continues, stderr=err
        )

    def _execute(self, stdin: bytes, partition: str) -> tuple[bytes, str]:
        with self._lock:
            if self._cancelled:
                raise self._error("the pipeline is stopping")
            try:
                proc = subprocess.Popen(
                    [*self._launch, *self.argv],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    start_new_session=True,  # killed as a group: its children go with it
                )
            except OSError as exc:
                raise self._error(f"transform {self.argv[0]} cannot run: {exc}") from exc
            self._running.add(proc)
        try:
            try:
                out, err = proc.communicate(stdin, timeout=self.timeout)
            except subprocess.TimeoutExpired:
                _kill(proc)
                out, err = proc.communicate()
                raise self._error(
                    f"transform {self.argv[0]} did not finish partition {partition} within "
                    f"{self.timeout:g} s (CONFIG transform_timeout_ms) and was killed",
                    _tail(err),
                ) from None
        finally:
            with self._lock:
                self._running.discard(proc)
        if proc.returncode != 0:
            how = (
                f"was killed by signal {-proc.returncode}"
                if proc.returncode < 0
                else f"exited with code {proc.returncode}"
            )
            stderr = _tail(err)
            said = f": {stderr.strip().splitlines()[-1]}" if stderr.strip() else ""
            raise self._error(
                f"transform {self.argv[0]} {how} on partition {partition}{said}", stderr
            )
        return out, _tail(err)

    def cancel(self) -> None:
        """Kill the programs running now; runs asked for after this fail at once."""
        with self._lock:
            self._cancelled = True
            running = list(self._running)
        for proc in running:
            _kill(proc)

    def close(self) -> None:
        self.cancel()
        if self._pool is not None:
            self._pool.shutdown()
        self._remove_unpacked()

    def _remove_unpacked(self) -> None:
        if self._unpacked is not None:
            self._unpacked.cleanup()
            self._unpacked = None


def _runner(path: str) -> list[str]:
    if os.access(path, os.X_OK):
        return [path]
    if path.endswith(".py"):
        return [sys.executable, path]
    if path.endswith(".sh"):
        return ["/bin/sh", path]
    raise TransformError(f"transform {path} is not executable (chmod +x it, or end it in .py/.sh)")


def _kill(proc: subprocess.Popen[bytes]) -> None:
    with suppress(ProcessLookupError, PermissionError):  # it has ended already
        os.killpg(proc.pid, signal.SIGKILL)


def _tail(err: bytes | None) -> str:
    return (err or b"")[-_STDERR_KEPT:].decode("utf-8", errors="replace")
