"""Exactly-once under fire: a loader process killed with SIGKILL again and again while a
producer writes, some messages sent twice with the same key. At the end every message is in
the table exactly once and the cursors equal the end of every partition."""

from __future__ import annotations

import os
import random
import selectors
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import duckdb
import pytest
from confluent_kafka import Producer

import sluice
from sluice.testing import LocalBroker, wait_for

MESSAGES = 30_000
KILLS = 12
RESENT_EVERY = 13  # every 13th id is sent a second time, with the same key
CHUNK = 200

# The loader: opening the file resumes the Running pipeline. With MARK set it prints "commit"
# once a batch has written everything and is about to COMMIT, and pauses there, so the test
# can kill it inside the commit of a batch.
LOADER = """
import os, sys, time
import sluice
import sluice.stores.duckdb as store
if os.environ.get("MARK"):
    record = store.DuckDBStore._record_batch
    def marked(self, *args, **kwargs):
        record(self, *args, **kwargs)
        print("commit", flush=True)
        time.sleep(0.05)
    store.DuckDBStore._record_batch = marked
db = sluice.connect(sys.argv[1])
print("ready", flush=True)
time.sleep(600)
"""


def payload(fmt: str, i: int, copy: int) -> bytes:
    if fmt == "json":
        return f'{{"id": {i}, "copy": {copy}, "v": {i % 1000}}}'.encode()
    return f"{i},{copy},{i % 1000}".encode()


class BackgroundProducer(threading.Thread):
    """Sends every id once (and some twice) over a few seconds, recording partition ends."""

    def __init__(self, bootstrap: str, topic: str, fmt: str) -> None:
        super().__init__(daemon=True)
        self.producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3})
        self.topic, self.fmt = topic, fmt
        self.ends: dict[int, int] = {}
        self.sent: list[tuple[int, int]] = []
        self.errors: list[str] = []

    def delivered(self, err: object, msg: object) -> None:
        if err is not None:
            self.errors.append(str(err))
            return
        p, o = msg.partition(), msg.offset()  # type: ignore[attr-defined]
        self.ends[p] = max(self.ends.get(p, 0), o + 1)

    def run(self) -> None:
        rnd = random.Random(7)
        for start in range(0, MESSAGES, CHUNK):  # spread over the whole time of the kills
            for i in range(start, start + CHUNK):
                self.send(i, 0)
                if i % RESENT_EVERY == 0:
                    self.send(i, 1)  # re-sent: same key, so same partition, after the first
            self.producer.poll(0)
            time.sleep(rnd.uniform(0.05, 0.15))
        assert self.producer.flush(60) == 0
        self.producer = None  # type: ignore[assignment]

    def send(self, i: int, copy: int) -> None:
        self.producer.produce(
            self.topic, payload(self.fmt, i, copy), str(i).encode(), on_delivery=self.delivered
        )
        self.sent.append((i, copy))


def start_loader(db_path: str, mark: bool) -> subprocess.Popen[str]:
    env = {**os.environ, "MARK": "1"} if mark else dict(os.environ)
    proc = subprocess.Popen(
        [sys.executable, "-c", LOADER, db_path], stdout=subprocess.PIPE, text=True, env=env
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return proc


def kill_at_a_commit(proc: subprocess.Popen[str], commits: int) -> None:
    """Kill after the loader has announced ``commits`` commits (or after 3 s of silence)."""
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        seen = 0
        while seen < commits and sel.select(timeout=3):
            if proc.stdout.readline().strip() == "commit":
                seen += 1
    os.kill(proc.pid, signal.SIGKILL)


def consistent(db_path: str, replace: bool) -> tuple[int, int]:
    """Read the file as it was left (read-only, nothing resumes): (rows, sum of cursors)."""
    con = duckdb.connect(db_path, read_only=True)
    try:
        rows, distinct = con.execute(
            "SELECT count(*), count(DISTINCT (id, copy)) FROM t"
        ).fetchone() or (0, 0)
        cursors = con.execute('SELECT coalesce(sum("offset"), 0) FROM sluice.cursors').fetchone()
        loaded = con.execute("SELECT coalesce(sum(rows_streamed), 0) FROM sluice.batches")
        streamed = (loaded.fetchone() or (0,))[0]
    finally:
        con.close()
    assert cursors is not None
    assert rows == distinct, "a message was loaded twice"
    if not replace:  # one message, one row: what committed is exactly what the cursors say
        assert rows == cursors[0] == streamed, (rows, cursors[0], streamed)
    return int(rows), int(cursors[0])


@pytest.mark.parametrize("replace", [False, True], ids=["insert", "replace"])
@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_sigkill_torture_is_exactly_once(
    fmt: str, replace: bool, db_path: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(4)
    key = " PRIMARY KEY" if replace else ""
    mapping = (
        "FORMAT JSON (id <- id, copy <- copy, v <- v)"
        if fmt == "json"
        else "FIELDS TERMINATED BY ',' (id, copy, v)"
    )
    with sluice.connect(db_path) as db:
        db.execute(f"CREATE TABLE t (id BIGINT{key}, copy INTEGER, v INTEGER)")
        db.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            f"MAX_OFFSETS_PER_BATCH_PARTITION 400 {'REPLACE' if replace else ''} "
            f"INTO TABLE t {mapping}"
        )
        db.execute("START PIPELINE p")  # left Running: every loader resumes it

    producer = BackgroundProducer(broker.bootstrap, name, fmt)
    producer.start()
    rnd = random.Random(f"{fmt}-{replace}")
    progress = []
    for k in range(KILLS):
        at_commit = k % 2 == 1
        proc = start_loader(db_path, mark=at_commit)
        if at_commit:
            kill_at_a_commit(proc, commits=rnd.randint(1, 4))
        else:
            time.sleep(rnd.uniform(0.2, 1.0))
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()
        progress.append(consistent(db_path, replace)[0])
    producer.join(120)
    assert not producer.errors
    mid_stream = [rows for rows in progress if 0 < rows < len(producer.sent)]
    assert len(mid_stream) >= KILLS // 3, f"kills did not land mid-stream: {progress}"

    with sluice.connect(db_path) as db:  # the last restart runs to the end
        want = sum(producer.ends.values())
        wait_for(
            lambda: (
                db.execute(
                    "SELECT sum(CURSOR_OFFSET) FROM information_schema.PIPELINES_OFFSETS"
                ).fetchone()
                == (want,)
            ),
            timeout=120,
            message="the cursors to reach the end of every partition",
        )
        db.execute("STOP PIPELINE p")
        cursors = dict(
            db.execute(
                "SELECT CAST(SOURCE_PARTITION_ID AS INTEGER), CURSOR_OFFSET "
                "FROM information_schema.PIPELINES_OFFSETS"
            ).fetchall()
        )
        assert cursors == producer.ends
        rows = db.execute("SELECT id, copy FROM t").fetchall()
        db.execute("CHECKPOINT")
    if replace:  # one row per id, holding the last copy sent
        want_rows = {(i, 1 if i % RESENT_EVERY == 0 else 0) for i in range(MESSAGES)}
    else:  # one row per message sent
        want_rows = set(producer.sent)
    assert len(rows) == len(want_rows)
    assert set(rows) == want_rows

    # The file is whole: it opens again, every column reads back, and the counts agree.
    con = duckdb.connect(db_path, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM t").fetchone() == (len(want_rows),)
        assert con.execute("SELECT count(*) FROM pragma_storage_info('t')").fetchone() != (0,)
        scanned = con.execute("SELECT count(*), sum(hash(id, copy, v)) FROM t").fetchone()
        assert scanned is not None and scanned[0] == len(want_rows)
    finally:
        con.close()
