"""A write conflict with another transaction is transient: the pipeline waits it out. DuckDB
refuses the second writer (the pipeline retries); PostgreSQL makes it wait for the lock."""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import states


def test_a_write_conflict_is_retried_not_fatal(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="sluice.engine")
    name = topic(1)
    db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v INTEGER)")
    db.execute("INSERT INTO t VALUES (1, 0)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' REPLACE "
        "INTO TABLE t FORMAT JSON (id <- id, v <- v)"
    )
    db.execute("START PIPELINE p")
    db.execute("BEGIN")
    db.execute("UPDATE t SET v = -1 WHERE id = 1")  # holds row 1 in an open transaction
    produce(broker.bootstrap, name, [b'{"id": 1, "v": 42}'])
    if db.store == "postgresql":
        wait_for(
            lambda: (
                db.execute("SELECT count(*) FROM pg_locks WHERE NOT granted").fetchall() == [(1,)]
            ),
            message="the pipeline to wait for the row lock",
        )
    else:  # the open transaction cannot see what commits after it began: watch the log
        wait_for(
            lambda: any("retrying" in r.getMessage() for r in caplog.records),
            message="the pipeline to meet the conflict",
        )
    db.execute("COMMIT")
    wait_for(lambda: db.execute("SELECT v FROM t").fetchall() == [(42,)], message="the retry")
    assert states(db) == [("p", "Running")]
    if db.store == "postgresql":
        return  # it waited: nothing to warn about
    warning = db.execute(
        "SELECT ERROR_KIND, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS "
        "WHERE ERROR_TYPE = 'Warning'"
    ).fetchall()
    assert len(warning) == 1 and "onflict" in warning[0][1]
