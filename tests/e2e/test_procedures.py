"""INTO PROCEDURE: a batch written to several tables by a procedure, in the batch's
transaction, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

import sluice
from sluice.testing import LocalBroker, produce
from tests.e2e.helpers import kafka

PROCEDURE = """
CREATE PROCEDURE keep_readings (batch QUERY(drill INTEGER, temp DOUBLE PRECISION)) AS
BEGIN
  INSERT INTO readings SELECT drill, temp FROM batch;
  INSERT INTO latest SELECT drill, max(temp) FROM batch GROUP BY drill
    ON CONFLICT (drill) DO UPDATE SET temp = excluded.temp;
  INSERT INTO alerts
    SELECT drill, temp, CASE WHEN temp > 95 THEN 'critical' ELSE 'high' END FROM batch
    WHERE temp > 90;
END
"""


def make_tables(db: sluice.Connection) -> None:
    db.execute("CREATE TABLE readings (drill INTEGER, temp DOUBLE PRECISION)")
    db.execute("CREATE TABLE latest (drill INTEGER PRIMARY KEY, temp DOUBLE PRECISION)")
    db.execute("CREATE TABLE alerts (drill INTEGER, temp DOUBLE PRECISION, level VARCHAR NOT NULL)")


def test_a_procedure_writes_several_tables_exactly_once(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    docs = [json.dumps({"drill": i % 10, "temp": 60 + i % 40}).encode() for i in range(1000)]
    produce(broker.bootstrap, name, docs, partitions=2)
    make_tables(db)
    db.execute(PROCEDURE)
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_OFFSETS_PER_BATCH_PARTITION 100 INTO PROCEDURE keep_readings "
        "FORMAT JSON (drill <- drill, temp <- temp)"
    )
    batches = db.execute("START PIPELINE p FOREGROUND").fetchall()
    assert len(batches) >= 5 and sum(b[2] for b in batches) == 1000
    assert db.execute("SELECT count(*), sum(temp) FROM readings").fetchone() == (
        1000,
        sum(60.0 + i % 40 for i in range(1000)),
    )
    hot = [60 + i % 40 for i in range(1000) if 60 + i % 40 > 90]
    assert db.execute("SELECT count(*), sum(temp) FROM alerts").fetchone() == (len(hot), sum(hot))
    levels = db.execute("SELECT level, count(*) FROM alerts GROUP BY 1 ORDER BY 1").fetchall()
    assert levels == [("critical", sum(t > 95 for t in hot)), ("high", sum(t <= 95 for t in hot))]
    assert db.execute("SELECT count(*), max(temp) FROM latest").fetchone() == (10, 99.0)
    assert db.execute("START PIPELINE p FOREGROUND").fetchall() == []  # nothing twice

    text = db.execute("SHOW CREATE PROCEDURE keep_readings").fetchall()[0][1]
    assert text.startswith("CREATE PROCEDURE keep_readings (batch QUERY(drill INTEGER")
    with pytest.raises(sluice.SluiceError, match=r"what pipeline.* p load into"):
        db.execute("DROP PROCEDURE keep_readings")
    db.execute("DROP PIPELINE p")
    db.execute("DROP PROCEDURE keep_readings")
    db.execute("DROP PROCEDURE IF EXISTS keep_readings")
    with pytest.raises(sluice.SluiceError, match="procedure keep_readings does not exist"):
        db.execute("SHOW CREATE PROCEDURE keep_readings")


def test_a_failing_statement_rolls_the_whole_batch_back(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    """The third statement refuses one batch's rows (level NOT NULL): none of that batch's rows
    reach any table, and the cursors stay where they were."""
    name = topic(1)
    produce(broker.bootstrap, name, [b'{"drill": 1, "temp": 91}', b'{"drill": 2, "temp": 50}'])
    make_tables(db)
    db.execute(PROCEDURE.replace("'high'", "NULL"))
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "INTO PROCEDURE keep_readings FORMAT JSON (drill <- drill, temp <- temp)"
    )
    with pytest.raises(sluice.SluiceError, match=r"(?i)null"):
        db.execute("START PIPELINE p FOREGROUND")
    for table in ("readings", "latest", "alerts"):
        assert db.execute(f"SELECT count(*) FROM {table}").fetchone() == (0,)
    cursors = db.execute("SELECT CURSOR_OFFSET FROM information_schema.PIPELINES_OFFSETS")
    assert cursors.fetchall() in ([], [(0,)])


def test_bad_procedures_are_named(db: sluice.Connection, broker: LocalBroker) -> None:
    db.execute("CREATE TABLE readings (drill INTEGER, temp DOUBLE PRECISION)")
    with pytest.raises(sluice.SluiceError, match=r"(?i)latest"):  # no such table
        db.execute(PROCEDURE)
    with pytest.raises(sluice.SluiceError, match="procedure nope does not exist; create it"):
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/x' INTO PROCEDURE nope "
            "FORMAT JSON (drill <- drill)"
        )
    with pytest.raises(sluice.ParseError, match="expected END"):
        db.execute(
            "CREATE PROCEDURE q (batch QUERY(a INTEGER)) AS BEGIN INSERT INTO readings "
            "SELECT a, 1 FROM batch;"
        )
    db.execute(
        "CREATE PROCEDURE q (batch QUERY(a INTEGER)) AS BEGIN "
        "INSERT INTO readings SELECT a, 1 FROM batch; END"
    )
    with pytest.raises(sluice.SluiceError, match="already exists; use CREATE OR REPLACE"):
        db.execute("CREATE PROCEDURE q (batch QUERY(a INTEGER)) AS BEGIN SELECT 1; END")
    db.execute("CREATE OR REPLACE PROCEDURE q (batch QUERY(a INTEGER)) AS BEGIN SELECT 1; END")
    assert "SELECT 1" in db.execute("SHOW CREATE PROCEDURE q").fetchall()[0][1]
