from __future__ import annotations

from sluice.testing import LocalBroker


def kafka(broker: LocalBroker, topic: str) -> str:
    """The quoted KAFKA address of ``topic`` on ``broker``, as a pipeline statement writes it."""
    return f"'{broker.bootstrap}/{topic}'"
