"""Loader processes to kill, a producer to race them, and the check that what a killed
loader left is consistent: shared by the crash tests."""

from __future__ import annotations

import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable

import duckdb
import psycopg
from confluent_kafka import Producer

from sluice.testing import Spawned, wait_for

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
from sluice.stores.sqlstore import SQLStore
if os.environ.get("MARK"):
    record = SQLStore._record_batch
    def marked(self, *args, **kwargs):
        record(self, *args, **kwargs)
        print("commit", flush=True)
        time.sleep(0.05)
    SQLStore._record_batch = marked
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

    def __init__(
        self,
        bootstrap: str,
        topic: str,
        fmt: str,
        encode: Callable[[dict[str, int]], bytes] | None = None,
    ) -> None:
        super().__init__(daemon=True)
        self.encode = encode  # a record → its message (Avro: framed for the registry)
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
        value = (
            self.encode({"id": i, "copy": copy, "v": i % 1000})
            if self.encode is not None
            else payload(self.fmt, i, copy)
        )
        self.producer.produce(self.topic, value, str(i).encode(), on_delivery=self.delivered)
        self.sent.append((i, copy))


def start_loader(db_path: str, mark: bool, script: str = LOADER) -> Spawned:
    """A loader process running ``script``, once it has printed "ready". The caller kills it
    (and closes it: ``with`` or ``close()``)."""
    env = {**os.environ, "MARK": "1"} if mark else dict(os.environ)
    proc = Spawned([sys.executable, "-c", script, db_path], env=env)
    try:
        proc.wait_for_line("ready", timeout=60)
    except BaseException:
        proc.close()
        raise
    return proc


def kill_at_a_commit(proc: Spawned, commits: int) -> None:
    """Kill after the loader has announced ``commits`` commits (or after 3 s of silence)."""
    wait_for(
        lambda: proc.count("commit") >= commits or time.monotonic() - proc.last_output > 3,
        timeout=120,
        message=f"{commits} commits",
    )
    os.kill(proc.pid, signal.SIGKILL)


COUNTS = (
    "SELECT (SELECT count(*) FROM t), (SELECT count(DISTINCT (id, copy)) FROM t), "
    '(SELECT coalesce(sum("offset"), 0) FROM sluice.cursors), '
    "(SELECT coalesce(sum(rows_streamed), 0) FROM sluice.batches)"
)


def consistent(database: str, replace: bool, also: str | None = None) -> tuple[int, int]:
    """Read the database as it was left, without Sluice (so nothing resumes):
    (rows, sum of cursors). ``also``: a second table that must hold as many rows as ``t``."""
    counts = COUNTS + (f", (SELECT count(*) FROM {also})" if also else ", 0")
    if database.startswith("postgresql://"):
        with psycopg.connect(database) as con:
            found = con.execute(counts).fetchone()
    else:
        with duckdb.connect(database, read_only=True) as con:
            found = con.execute(counts).fetchone()
    assert found is not None
    rows, distinct, cursors, streamed, second = (int(n) for n in found)
    if also:
        assert second == rows, f"{also} holds {second} rows, t {rows}"
    assert rows == distinct, "a message was loaded twice"
    if not replace:  # one message, one row: what committed is exactly what the cursors say
        assert rows == cursors == streamed, (rows, cursors, streamed)
    return rows, cursors
