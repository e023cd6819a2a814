"""The development broker never outlives the process that started it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys

from sluice.testing import wait_for

STARTER = (
    "from sluice.broker import LocalBroker; import time; "
    "b = LocalBroker().start(); print(b.port, flush=True); time.sleep(120)"
)


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_parent_takes_its_broker_with_it() -> None:
    parent = subprocess.Popen([sys.executable, "-c", STARTER], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    port = int(parent.stdout.readline())
    assert not refuses(port)
    os.kill(parent.pid, signal.SIGKILL)
    parent.wait()
    parent.stdout.close()
    wait_for(lambda: refuses(port), timeout=10, message="the orphaned broker to stop")
