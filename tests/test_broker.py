"""The development broker never outlives the process that started it."""

from __future__ import annotations

import signal
import socket
import sys

from sluice.testing import Spawned, wait_for

STARTER = (
    "from sluice.broker import LocalBroker; import time; "
    "b = LocalBroker().start(); print(b.port, flush=True); time.sleep(120)"
)


def refuses(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def test_a_killed_parent_takes_its_broker_with_it() -> None:
    with Spawned([sys.executable, "-c", STARTER]) as parent:
        port = int(parent.wait_for_line("", timeout=60))
        assert not refuses(port)
        parent.send(signal.SIGKILL)
        parent.wait()
    wait_for(lambda: refuses(port), timeout=10, message="the orphaned broker to stop")
