"""The check every test passes at its end (tests/leaks.py) sees what a test leaves behind."""

from __future__ import annotations

import socket
import subprocess
import tempfile
import threading
from pathlib import Path

import sluice
from tests import leaks


def test_the_leak_check_sees_threads_sockets_files_processes_and_temporary_files(
    tmp_path: Path,
) -> None:
    before = leaks.Snapshot.take()
    release = threading.Event()
    thread = threading.Thread(target=release.wait, name="lingering")
    thread.start()
    sock = socket.socket()
    db = sluice.connect(str(tmp_path / "x.duckdb"))
    child = subprocess.Popen(["sleep", "60"])
    folder = tempfile.mkdtemp(prefix="sluice-leak-")
    try:
        left = " ".join(leaks.check(before, settle=0))
        assert "thread 'lingering'" in left
        assert "socket:" in left
        assert "x.duckdb" in left
        assert f"process {child.pid}: sleep 60" in left
        assert "temporary sluice-leak-" in left
    finally:
        release.set()
        thread.join()
        sock.close()
        db.close()
        child.kill()
        child.wait()
        Path(folder).rmdir()
    assert leaks.check(before) == []
