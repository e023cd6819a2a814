"""Two Sluice processes on one PostgreSQL database, the same pipeline Running in both: one loads
it (it holds the pipeline's claim), the other stands by. The one loading is killed with SIGKILL
again and again and replaced; the other takes over each time. Nothing is lost or duplicated."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable

import sluice
from sluice.stores.postgres import PostgresStore
from sluice.testing import LocalBroker, Spawned, wait_for
from tests.e2e.loaders import BackgroundProducer, consistent, start_loader

ROUNDS = 6


def holder(store: PostgresStore, loaders: dict[int, Spawned]) -> int | None:
    """The pid of the live loader holding pipeline p, if any."""
    held = store.holders().get("p")
    pid = int(held.rpartition(":")[2]) if held else None
    return pid if pid in loaders else None


def test_two_processes_one_killed_again_and_again(
    pg_url: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    with sluice.connect(pg_url) as db:
        db.execute("CREATE TABLE t (id BIGINT, copy INTEGER, v INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            "MAX_OFFSETS_PER_BATCH_PARTITION 400 INTO TABLE t FORMAT JSON "
            "(id <- id, copy <- copy, v <- v)"
        )
        db.execute("START PIPELINE p")  # left Running: every process that opens it runs it

    producer = BackgroundProducer(broker.bootstrap, name, "json")
    producer.start()
    watcher = PostgresStore(pg_url, _catalog=False)
    loaders = {proc.pid: proc for proc in (start_loader(pg_url, False) for _ in range(2))}
    held_by: list[int] = []
    progress: list[int] = []
    try:
        for _ in range(ROUNDS):
            pid = wait_for(lambda: holder(watcher, loaders), message="a process to hold p")
            held_by.append(pid)
            time.sleep(0.3)  # let it load a few batches, then kill it, likely mid-batch
            os.kill(pid, signal.SIGKILL)
            dead = loaders.pop(pid)
            dead.wait()
            dead.close()
            progress.append(consistent(pg_url, replace=False)[0])
            new = start_loader(pg_url, False)
            loaders[new.pid] = new
        producer.join(120)
        assert not producer.errors
        want = sum(producer.ends.values())
        wait_for(
            lambda: consistent(pg_url, replace=False)[1] == want,
            timeout=120,
            message="the cursors to reach the end of every partition",
        )
    finally:
        for proc in loaders.values():
            proc.close()
        producer.join(120)
        watcher.close()
    assert len(set(held_by)) == ROUNDS  # each round, a different process was loading
    assert any(0 < rows < len(producer.sent) for rows in progress), progress
    with sluice.connect(pg_url) as db:
        db.execute("STOP PIPELINE p")
        rows = db.execute("SELECT id, copy FROM t").fetchall()
    assert len(rows) == len(producer.sent)
    assert set(rows) == set(producer.sent)
