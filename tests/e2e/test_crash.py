"""A loader process killed with SIGKILL mid-stream loses nothing and duplicates nothing."""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Callable

import sluice
from sluice.testing import LocalBroker, produce, wait_for
from tests.e2e.loaders import start_loader

MESSAGES = 120_000
LOADER = """
import sys, time, sluice
db = sluice.connect(sys.argv[1])
db.execute("START PIPELINE IF NOT RUNNING p")
print("ready", flush=True)
time.sleep(600)
"""


def snapshot(db_path: str) -> tuple[int, int, int, int]:
    """(rows, distinct ids, sum of cursors, rows the batch records account for).

    Opening the file resumes the pipeline, so this is a restart too; it stops the pipeline
    to read a still picture, then leaves it Running for the next loader process."""
    with sluice.connect(db_path) as db:
        db.execute("STOP PIPELINE IF RUNNING p")
        rows, distinct = db.execute("SELECT count(*), count(DISTINCT id) FROM t").fetchone() or ()
        cursors = db.execute(
            "SELECT coalesce(sum(CURSOR_OFFSET), 0) FROM information_schema.PIPELINES_OFFSETS"
        ).fetchone()
        batches = db.execute(
            "SELECT coalesce(sum(ROWS_STREAMED), 0) "
            "FROM information_schema.PIPELINES_BATCHES_SUMMARY"
        ).fetchone()
        db.execute("START PIPELINE p")
    assert cursors is not None and batches is not None
    return int(rows), int(distinct), int(cursors[0]), int(batches[0])


def test_sigkill_mid_stream_then_restart_is_exactly_once(
    db_path: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    values = [json.dumps({"id": i, "v": i % 97}).encode() for i in range(MESSAGES)]
    produce(broker.bootstrap, name, values, partitions=4)
    with sluice.connect(db_path) as db:
        db.execute("CREATE TABLE t (id BIGINT, v INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            "MAX_OFFSETS_PER_BATCH_PARTITION 250 INTO TABLE t FORMAT JSON (id <- id, v <- v)"
        )
        db.execute("START PIPELINE p")
    # The pipeline is left Running: each loader process resumes it when it opens the file.

    rnd = random.Random(1234)
    mid_stream = []
    for _ in range(4):
        with start_loader(db_path, mark=False, script=LOADER) as proc:
            time.sleep(rnd.uniform(0.2, 1.0))  # let it get somewhere: a random kill point
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        rows, distinct, cursors, batches = snapshot(db_path)
        assert rows == distinct == cursors == batches, (rows, distinct, cursors, batches)
        if 0 < rows < MESSAGES:
            mid_stream.append(rows)
    assert mid_stream, "no kill landed mid-stream; the test proved nothing"

    with sluice.connect(db_path) as db:  # opening the file resumes the Running pipeline
        wait_for(
            lambda: db.execute("SELECT count(*) FROM t").fetchone() == (MESSAGES,),
            timeout=120,
            message="the resumed pipeline to load the rest",
        )
        db.execute("STOP PIPELINE p")
        assert db.execute("SELECT sum(id), sum(v) FROM t").fetchone() == (
            sum(range(MESSAGES)),
            sum(i % 97 for i in range(MESSAGES)),
        )
    rows, distinct, cursors, batches = snapshot(db_path)
    assert (rows, distinct, cursors, batches) == (MESSAGES,) * 4
