"""The broker goes away under a running pipeline and comes back: no loss, no duplicate, no
manual action. The development broker keeps nothing, so the test puts the topic's content back
exactly as it was (same partitions, same order, so the same offsets)."""

from __future__ import annotations

import json
from collections.abc import Callable

import psycopg
import pytest

import sluice
from sluice.localpg import LocalPostgres
from sluice.testing import LocalBroker, create_topic, produce, wait_for
from tests.e2e.helpers import states


def rows(n: int, start: int = 0) -> list[bytes]:
    return [json.dumps({"id": i}).encode() for i in range(start, start + n)]


def test_pipeline_recovers_from_a_broker_outage_by_itself(database: str) -> None:
    broker = LocalBroker().start()
    try:
        create_topic(broker.bootstrap, "events", 2)
        produce(broker.bootstrap, "events", rows(1_000), partitions=2)
        db = sluice.connect(database)
        db.execute("CREATE TABLE t (id INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/events' "
            "INTO TABLE t FORMAT JSON (id <- id)"
        )
        db.execute("START PIPELINE p")

        def count() -> int:
            return int((db.execute("SELECT count(*) FROM t").fetchone() or (0,))[0])

        wait_for(lambda: count() == 1_000, message="rows before the outage")

        broker.stop()
        wait_for(
            lambda: (
                db.execute(
                    "SELECT count(*) FROM information_schema.PIPELINES_ERRORS "
                    "WHERE ERROR_TYPE = 'Warning' AND ERROR_KIND = 'Extract'"
                ).fetchone()
                != (0,)
            ),
            timeout=60,
            message="the outage to be reported as a warning",
        )
        assert states(db) == [("p", "Running")]

        broker.start()  # same port; empty, as a restarted development broker is
        create_topic(broker.bootstrap, "events", 2)
        produce(broker.bootstrap, "events", rows(1_000), partitions=2)  # the same content
        produce(broker.bootstrap, "events", rows(500, start=1_000), partitions=2)  # and more
        wait_for(lambda: count() == 1_500, timeout=60, message="rows after the outage")
        assert db.execute("SELECT count(DISTINCT id), min(id), max(id) FROM t").fetchone() == (
            1_500,
            0,
            1_499,
        )
        assert states(db) == [("p", "Running")]
        errors = db.execute(
            "SELECT DISTINCT ERROR_TYPE FROM information_schema.PIPELINES_ERRORS"
        ).fetchall()
        assert errors == [("Warning",)]
        db.execute("STOP PIPELINE p")
        db.close()
    finally:
        broker.stop()


def test_pipeline_recovers_from_a_postgresql_restart_by_itself(
    broker: LocalBroker, topic: Callable[..., str], caplog: pytest.LogCaptureFixture
) -> None:
    """A server of its own (the shared test server may be one we cannot restart)."""
    name = topic(2)
    with LocalPostgres() as server:
        with psycopg.connect(server.dsn(), autocommit=True) as admin:
            admin.execute("CREATE DATABASE restarts")
        db = sluice.connect(server.dsn("restarts"))
        try:
            db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY)")
            db.execute(
                f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
                "INTO TABLE t FORMAT JSON (id <- id)"
            )
            db.execute("START PIPELINE p")
            produce(broker.bootstrap, name, rows(1_000), partitions=2)
            wait_for(lambda: loaded(db) == 1_000, message="rows before the restart")

            server.stop()  # fast shutdown: every session is cut, the pipeline's too
            produce(broker.bootstrap, name, rows(1_000, start=1_000), partitions=2)
            wait_for(
                lambda: any("connect" in r.getMessage() for r in caplog.records),
                message="the pipeline to meet the stopped server",
            )
            server.start()
            wait_for(lambda: loaded(db) == 2_000, timeout=60, message="rows after the restart")
            assert db.execute("SELECT count(DISTINCT id) FROM t").fetchone() == (2_000,)
            assert states(db) == [("p", "Running")]
        finally:
            db.close()


def loaded(db: sluice.Connection) -> int:
    """Rows in t; -1 while the session's connection is being replaced after the restart."""
    try:
        return int(db.execute("SELECT count(*) FROM t").fetchall()[0][0])
    except sluice.SluiceError:
        return -1
