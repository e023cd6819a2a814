"""Lag in messages and in seconds, and EARLIEST_OFFSET, in PIPELINES_OFFSETS: read from the
source whether the pipeline runs or not; per-stage times in PIPELINES_BATCHES_SUMMARY."""

from __future__ import annotations

import json
from collections.abc import Callable

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.helpers import kafka

BASE_MS = 1_700_000_000_000
OFFSETS = (
    "SELECT SOURCE_PARTITION_ID, EARLIEST_OFFSET, LATEST_OFFSET, CURSOR_OFFSET, LAG_MESSAGES, "
    "LAG_SECONDS FROM information_schema.PIPELINES_OFFSETS WHERE PIPELINE_NAME = 'p' "
    "ORDER BY 1"
)


def offsets(db: sluice.Connection) -> list[tuple[object, ...]]:
    return db.execute(OFFSETS).fetchall()


def test_lag_in_seconds_from_message_timestamps_stopped_and_after_loading(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    # 10 messages a partition, one second apart by their timestamps (partition k gets every
    # other one: 2 s apart within it).
    values = [json.dumps({"id": i}).encode() for i in range(20)]
    produce(broker.bootstrap, name, values, partitions=2,
            timestamps=[BASE_MS + 1000 * i for i in range(20)])  # fmt: skip
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_OFFSETS_PER_BATCH_PARTITION 4 INTO TABLE t FORMAT JSON (id <- id)"
    )
    # Never started: nothing loaded, the lag is the whole topic (18 s from first to last).
    never = [("0", 0, 10, None, 10, 18.0), ("1", 0, 10, None, 10, 18.0)]
    wait_for(lambda: offsets(db) == never, timeout=30, message=f"{never}, not {offsets(db)}")

    db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES")  # 4 of each partition
    # The next unloaded message of each partition is its 5th (offset 4): 2 s x 5 before the
    # newest. Stopped, the lag stays current: the monitor reads it all the same.
    after = [("0", 0, 10, 4, 6, 10.0), ("1", 0, 10, 4, 6, 10.0)]
    wait_for(lambda: offsets(db) == after, timeout=30, message=f"{after}, not {offsets(db)}")

    produce(broker.bootstrap, name, [b'{"id": 20}'], partitions=1,
            timestamps=[BASE_MS + 60_000])  # fmt: skip
    grown = [("0", 0, 11, 4, 7, 52.0), ("1", 0, 10, 4, 6, 10.0)]
    wait_for(lambda: offsets(db) == grown, timeout=30, message=f"{grown}, not {offsets(db)}")

    db.execute("START PIPELINE p FOREGROUND")
    done = [("0", 0, 11, 11, 0, 0.0), ("1", 0, 10, 10, 0, 0.0)]
    assert offsets(db) == done  # caught up: no lag, whatever the monitor read last
    stages = db.execute(
        "SELECT min(EXTRACTOR_WAIT_TIME), min(PARSE_TIME), min(LOAD_TIME), "
        "count(TRANSFORM_WAIT_TIME), count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY"
    ).fetchone()
    assert stages is not None
    assert all(s >= 0 for s in stages[:3]) and stages[3] == 0 and stages[4] >= 2
