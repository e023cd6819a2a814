"""Lag in messages and in seconds, and EARLIEST_OFFSET, in PIPELINES_OFFSETS: read from the
source whether the pipeline runs or not; per-stage times in PIPELINES_BATCHES_SUMMARY."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import cast

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


def expected(
    cursors: dict[str, int | None], ends: dict[str, int], newest_s: dict[str, float]
) -> list[tuple[object, ...]]:
    """The rows of OFFSETS for these cursors: message k of partition p was stamped 2k + p s
    (see the test), the newest of each partition at ``newest_s``."""
    rows: list[tuple[object, ...]] = []
    for p, cursor in sorted(cursors.items()):
        at = cursor or 0
        rows.append((p, 0, ends[p], cursor, ends[p] - at, newest_s[p] - (2 * at + int(p))))
    return rows


def test_lag_in_seconds_from_message_timestamps_stopped_and_after_loading(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    # 10 messages a partition, one second apart by their timestamps: partition p gets the even
    # or the odd ones, so message k of partition p is stamped 2k + p seconds.
    values = [json.dumps({"id": i}).encode() for i in range(20)]
    produce(broker.bootstrap, name, values, partitions=2,
            timestamps=[BASE_MS + 1000 * i for i in range(20)])  # fmt: skip
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "MAX_OFFSETS_PER_BATCH_PARTITION 4 INTO TABLE t FORMAT JSON (id <- id)"
    )
    ends = {"0": 10, "1": 10}
    newest = {"0": 18.0, "1": 19.0}
    # Never started: nothing loaded, the lag is the whole topic (18 s from first to last).
    never = expected({"0": None, "1": None}, ends, newest)
    assert never == [("0", 0, 10, None, 10, 18.0), ("1", 0, 10, None, 10, 18.0)]
    wait_for(
        lambda: offsets(db) == never, timeout=30, message=lambda: f"{never}, not {offsets(db)}"
    )

    # One batch: at most 4 of each partition (a batch takes what its partitions hold when it
    # starts, so one of them may still be unloaded). Stopped, the lag stays current: the
    # monitor reads it all the same, from the next unloaded message of each partition.
    db.execute("START PIPELINE p FOREGROUND LIMIT 1 BATCHES")
    cursors = {cast(str, r[0]): cast("int | None", r[3]) for r in offsets(db)}
    assert any(cursors.values()) and all(c in (None, 4) for c in cursors.values()), cursors
    after = expected(cursors, ends, newest)
    wait_for(
        lambda: offsets(db) == after, timeout=30, message=lambda: f"{after}, not {offsets(db)}"
    )

    produce(broker.bootstrap, name, [b'{"id": 20}'], partitions=1,
            timestamps=[BASE_MS + 60_000])  # fmt: skip
    ends["0"], newest["0"] = 11, 60.0
    grown = expected(cursors, ends, newest)
    wait_for(
        lambda: offsets(db) == grown, timeout=30, message=lambda: f"{grown}, not {offsets(db)}"
    )

    db.execute("START PIPELINE p FOREGROUND")
    done = [("0", 0, 11, 11, 0, 0.0), ("1", 0, 10, 10, 0, 0.0)]
    assert offsets(db) == done  # caught up: no lag, whatever the monitor read last
    stages = db.execute(
        "SELECT min(EXTRACTOR_WAIT_TIME), min(PARSE_TIME), min(LOAD_TIME), "
        "count(TRANSFORM_WAIT_TIME), count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY"
    ).fetchone()
    assert stages is not None
    assert all(s >= 0 for s in stages[:3]) and stages[3] == 0 and stages[4] >= 2


def test_a_running_pipeline_that_keeps_up_shows_no_lag(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    """The monitor takes the lag of a pipeline whose runner reads every partition to its
    end from the runner, not from the broker."""
    name = topic(2)
    db.execute("CREATE TABLE t (id INTEGER)")
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
        "INTO TABLE t FORMAT JSON (id <- id)"
    )
    db.execute("START PIPELINE p")
    try:
        for first in (0, 10):  # two rounds of 10 messages, 5 a partition
            values = [json.dumps({"id": i}).encode() for i in range(first, first + 10)]
            produce(broker.bootstrap, name, values, partitions=2)
            end = (first + 10) // 2
            keeping_up(db, [("0", 0, end, end, 0, 0.0), ("1", 0, end, end, 0, 0.0)])
    finally:
        db.execute("STOP PIPELINE p")


def keeping_up(db: sluice.Connection, want: list[tuple[object, ...]]) -> None:
    wait_for(lambda: offsets(db) == want, timeout=30, message=lambda: f"{want}, not {offsets(db)}")
