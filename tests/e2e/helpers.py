from __future__ import annotations

import sluice
from sluice.testing import LocalBroker


def kafka(broker: LocalBroker, topic: str) -> str:
    """The quoted KAFKA address of ``topic`` on ``broker``, as a pipeline statement writes it."""
    return f"'{broker.bootstrap}/{topic}'"


def states(db: sluice.Connection) -> list[tuple[str, str]]:
    """``SHOW PIPELINES`` without its Process column: (pipeline, state)."""
    return [(name, state) for name, state, _ in db.execute("SHOW PIPELINES").fetchall()]
