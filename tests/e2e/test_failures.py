"""What a running pipeline does with each kind of failure (``sluice.errors.classify``), on both
stores. Record-level failures are in test_errors.py, transient ones in test_outage.py."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

import sluice
from sluice.formats.json import JsonFormat
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import kafka, states


def rows(start: int, n: int) -> list[bytes]:
    return [json.dumps({"id": i}).encode() for i in range(start, start + n)]


def errors(db: sluice.Connection) -> list[tuple[str, str, str]]:
    return [
        (str(kind), str(err), str(message))
        for kind, err, message in db.execute(
            "SELECT ERROR_TYPE, ERROR_KIND, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS "
            "ORDER BY ERROR_ID"
        ).fetchall()
    ]


@pytest.mark.parametrize("stop_on_error", ["ON", "OFF"])
def test_a_table_dropped_under_a_running_pipeline_stops_it_in_error_at_once(
    stop_on_error: str,
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Skipping cannot bring a table back, and neither can retrying: Error, once, with the
    reason, and the cursors where the last loaded batch left them."""
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        f"STOP_ON_ERROR {stop_on_error} INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    produce(broker.bootstrap, name, rows(0, 10))
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (10,), message="rows")
    db.execute("DROP TABLE t")
    produce(broker.bootstrap, name, rows(10, 10))
    wait_for(lambda: states(db) == [("p", "Error")], message="the pipeline to stop in Error")
    ((kind, where, message),) = errors(db)
    assert (kind, where) == ("Error", "Load")
    assert "t" in message and "does not exist" in message.lower(), message
    (reason,) = db.execute("SELECT ERROR_MESSAGE FROM information_schema.PIPELINES").fetchone()
    assert reason == message
    assert db.execute(
        "SELECT CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS"
    ).fetchall() == [(10,)]
    retried = [r for r in caplog.records if "retry" in r.getMessage() or "skip" in r.getMessage()]
    assert not retried, [r.getMessage() for r in retried]


@pytest.mark.parametrize("stop_on_error", ["ON", "OFF"])
def test_a_bug_is_retried_then_stops_the_pipeline_with_its_traceback(
    stop_on_error: str,
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An error no one planned for (here: the parser raising KeyError) is retried
    MAX_RETRIES_PER_BATCH_PARTITION times, then stops the pipeline; nothing is loaded."""
    attempts: list[int] = []

    def broken(self: JsonFormat, records: object) -> None:
        attempts.append(1)
        raise KeyError("boom")

    monkeypatch.setattr(JsonFormat, "parse_records", broken)
    monkeypatch.setattr(JsonFormat, "parse_array", broken)  # the native drain's records
    name = topic(1)
    produce(broker.bootstrap, name, rows(0, 5))
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        f"MAX_RETRIES_PER_BATCH_PARTITION 2 STOP_ON_ERROR {stop_on_error} "
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    wait_for(lambda: states(db) == [("p", "Error")], message="the pipeline to stop in Error")
    assert len(attempts) == 3  # the first attempt and two retries
    ((kind, where, message),) = errors(db)
    assert (kind, where) == ("Error", "Internal")
    assert "KeyError('boom')" in message and "Traceback (most recent call last)" in message
    assert "in broken" in message  # the traceback reaches the line that raised
    (reason,) = db.execute("SELECT ERROR_MESSAGE FROM information_schema.PIPELINES").fetchone()
    assert "KeyError('boom')" in reason and "Traceback" not in reason
    assert db.execute("SELECT count(*) FROM t").fetchone() == (0,)
    assert db.execute("SELECT count(*) FROM information_schema.PIPELINES_OFFSETS").fetchone() == (
        0,
    )


def test_transient_failures_keep_the_pipeline_running_with_a_warning(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A topic that does not exist yet: the pipeline waits for it in state Running, with one
    Warning however long it waits, and loads it once it appears."""
    caplog.set_level(logging.WARNING, "sluice")
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    from sluice.broker import delete_topics

    delete_topics(broker.bootstrap, [name])
    db.execute("START PIPELINE p")
    wait_for(
        lambda: sum("retrying" in r.getMessage() for r in caplog.records) >= 3,
        message="a few retries",
    )
    assert states(db) == [("p", "Running")]
    assert [(k, w) for k, w, _ in errors(db)] == [("Warning", "Extract")]
    from sluice.broker import create_topic

    create_topic(broker.bootstrap, name, 1)
    produce(broker.bootstrap, name, rows(0, 5))
    wait_for(lambda: db.execute("SELECT count(*) FROM t").fetchone() == (5,), timeout=60,
             message="the rows once the topic exists")  # fmt: skip
    assert states(db) == [("p", "Running")]
