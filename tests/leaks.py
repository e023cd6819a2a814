"""What a test leaves behind: threads, sockets, open files, child processes and temporary
files that outlive it. Checked after every test by the ``no_leaks`` fixture (tests/conftest.py)."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

# Processes started once for the whole session (the broker, PostgreSQL): not a test's leak.
LONG_LIVED: set[int] = set()  # their process ids
LONG_LIVED_FILES: set[str] = set()  # their names in the temporary directory
#: fsspec runs every filesystem's I/O on one event loop for the life of the process, on a thread
#: of its own, whose default executor threads (``asyncio_N``) resolve host names; gcsfs closes
#: files on one thread for the life of the process. Not a test's leak.
FSSPEC_LOOP = "fsspecIO"
PROCESS_WIDE = {FSSPEC_LOOP, "gcsfs-deferred-close"}
SETTLE_SECONDS = 10.0  # how long what a test closed may take to be gone (threads to end)


def _fds() -> dict[int, str]:
    """This process's sockets and open regular files (not pipes, devices, event fds)."""
    out = {}
    for entry in os.scandir("/proc/self/fd"):
        try:
            target = os.readlink(entry.path)
        except OSError:  # closed between the listing and the read (the listing's own fd)
            continue
        if target.startswith("socket:") or (
            target.startswith("/") and not target.startswith(("/dev/", "/proc/"))
        ):
            out[int(entry.name)] = target
    return out


def _children() -> dict[int, str]:
    """This process's child processes that still run (zombies excluded), with their command."""
    me, out = os.getpid(), {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            stat = Path(entry.path, "stat").read_text()
            cmdline = Path(entry.path, "cmdline").read_bytes()
        except OSError:
            continue
        fields = stat.rpartition(")")[2].split()
        if int(fields[1]) == me and fields[0] != "Z":
            out[int(entry.name)] = cmdline.replace(b"\0", b" ").decode(errors="replace")[:200]
    return out


def _temporary() -> set[str]:
    """Sluice's own entries in the temporary directory (its names start with ``sluice``)."""
    names = {n for n in os.listdir(tempfile.gettempdir()) if n.startswith("sluice")}
    return names - LONG_LIVED_FILES


@dataclass
class Snapshot:
    threads: set[int] = field(default_factory=set)
    fds: dict[int, str] = field(default_factory=dict)
    children: set[int] = field(default_factory=set)
    temporary: set[str] = field(default_factory=set)

    @classmethod
    def take(cls) -> Snapshot:
        return cls(
            {t.ident for t in threading.enumerate() if t.ident is not None},
            _fds(),
            set(_children()),
            _temporary(),
        )

    def left_since(self) -> list[str]:
        """What exists now that did not when this snapshot was taken."""
        gc.collect()  # an object only a cycle keeps alive is closed now (and may warn)
        alive = threading.enumerate()
        fsspec = any(t.name == FSSPEC_LOOP for t in alive)
        threads = [
            f"thread {t.name!r}"
            for t in alive
            if t.ident not in self.threads
            and t.is_alive()
            and t.name not in PROCESS_WIDE
            and not (fsspec and t.name.startswith("asyncio_"))
        ]
        now = _fds()
        fds = [f"fd {fd} -> {target}" for fd, target in now.items() if self.fds.get(fd) != target]
        children = [
            f"process {pid}: {cmd}"
            for pid, cmd in _children().items()
            if pid not in self.children and pid not in LONG_LIVED
        ]
        temporary = [f"temporary {name}" for name in sorted(_temporary() - self.temporary)]
        return threads + fds + children + temporary


def check(before: Snapshot, settle: float = SETTLE_SECONDS) -> list[str]:
    """What the test left, after giving what it closed ``settle`` seconds to finish closing."""
    deadline = time.monotonic() + settle
    while True:
        left = before.left_since()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)
