"""MySQL's functions in a pipeline's SET and WHERE, as SingleStore's users write them, on both
stores (PostgreSQL has none of them: they are translated)."""

from __future__ import annotations

import json
from collections.abc import Callable

import sluice
from sluice.testing import LocalBroker, produce
from tests.e2e.helpers import kafka


def test_mysql_functions_in_set_and_where(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(1)
    readings = [
        {"id": 1, "device": "d1", "temp": 35.5, "at": 1764547200},
        {"id": 2, "device": "d2", "temp": None, "at": 1764550800},
        {"id": 3, "device": "skip", "temp": 10.0, "at": 1764554400},
    ]
    produce(broker.bootstrap, name, [json.dumps(r).encode() for r in readings], partitions=1)
    db.execute(
        "CREATE TABLE t (id INTEGER, label VARCHAR, temp DOUBLE PRECISION, level VARCHAR, "
        "day VARCHAR)"
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} INTO TABLE t "
        "FORMAT JSON (id <- id, @device <- device, @temp <- temp, @at <- at) "
        "SET label = CONCAT(@device, '/', id), temp = IFNULL(@temp, '-1'), "
        "level = IF(CAST(IFNULL(@temp, '0') AS DECIMAL(6, 2)) > 30, 'hot', 'ok'), "
        "day = DATE_FORMAT(FROM_UNIXTIME(CAST(@at AS SIGNED)), '%Y-%m-%d') "
        "WHERE @device <> 'skip'"
    )
    db.execute("START PIPELINE p FOREGROUND")
    assert db.execute("SELECT id, label, temp, level, day FROM t ORDER BY id").fetchall() == [
        (1, "d1/1", 35.5, "hot", "2025-12-01"),
        (2, "d2/2", -1.0, "ok", "2025-12-01"),
    ]
