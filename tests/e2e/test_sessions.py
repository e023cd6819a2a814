"""A long pipeline statement in one session holds up no other session: SHOW PIPELINES and the
monitoring views answer while another session's START PIPELINE … FOREGROUND or ALTER PIPELINE …
SET OFFSETS LATEST waits on its source (a broker that has stopped answering)."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from typing import Any

import pytest

import sluice
from sluice.testing import LocalBroker, create_topic, produce, wait_for
from tests.e2e.helpers import states

ROWS = 100


def waits_in_the_source(thread: threading.Thread) -> bool:
    """Whether ``thread`` is inside the Kafka source right now (reading its stack)."""
    frame = sys._current_frames().get(thread.ident or 0)
    while frame is not None:
        if frame.f_code.co_filename.endswith(os.path.join("sources", "kafka.py")):
            return True
        frame = frame.f_back
    return False


@pytest.mark.parametrize(
    "statement", ["START PIPELINE p FOREGROUND", "ALTER PIPELINE p SET OFFSETS LATEST"]
)
def test_show_and_the_views_answer_while_another_session_waits_on_its_source(
    statement: str, database: str
) -> None:
    broker = LocalBroker().start()
    db = other = None
    try:
        create_topic(broker.bootstrap, "events", 2)
        produce(broker.bootstrap, "events", [json.dumps({"id": i}).encode() for i in range(ROWS)],
                partitions=2)  # fmt: skip
        db = sluice.connect(database)
        other = db.cursor()
        db.execute("CREATE TABLE t (id INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/events' "
            "INTO TABLE t FORMAT JSON (id <- id)"
        )
        outcome: dict[str, Any] = {}

        def run(session: sluice.Connection) -> None:
            try:
                outcome["result"] = session.execute(statement).fetchall()
            except Exception as exc:
                outcome["error"] = exc

        assert broker.pid is not None
        os.kill(broker.pid, signal.SIGSTOP)  # the broker stops answering; it keeps its data
        worker = threading.Thread(target=run, args=(other,))
        try:
            worker.start()
            wait_for(lambda: waits_in_the_source(worker), message="the statement to wait")
            assert states(db) == [("p", "Stopped")]
            offsets = db.execute(
                "SELECT count(*) FROM information_schema.PIPELINES_OFFSETS"
            ).fetchall()
            assert offsets == [(0,)]
            # Answered while the other session still waits: nothing it holds held them up.
            assert worker.is_alive() and waits_in_the_source(worker)
        finally:
            os.kill(broker.pid, signal.SIGCONT)
            worker.join(60)
        assert "error" not in outcome, outcome
        cursors = db.execute(
            "SELECT sum(CURSOR_OFFSET) FROM information_schema.PIPELINES_OFFSETS"
        ).fetchall()
        assert cursors == [(ROWS,)]  # the statement did its work once the broker answered
        loaded = db.execute("SELECT count(*) FROM t").fetchall()
        assert loaded == [(ROWS if "FOREGROUND" in statement else 0,)]
    finally:
        if other is not None:
            other.close()
        if db is not None:
            db.close()
        broker.stop()
