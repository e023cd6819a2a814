"""``sluice demo``: oil-rig drill sensors → Kafka → a table, watched live.

Starts the bundled broker, creates a 4-partition topic ``sensors``, produces simulated drill
readings at a steady rate, loads them with a JSON pipeline, and shows rows loaded, rows/s, lag
and the hottest drills until Ctrl-C or ``--duration``. At the end it checks that every produced
reading was loaded exactly once.
"""

from __future__ import annotations

import math
import os
import random
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Producer

import sluice
from sluice.broker import LocalBroker, create_topic, free_port
from sluice.shell import format_result

RIGS = ("NORTH-1", "NORTH-2", "DELTA-7", "GULF-3", "BRENT-5")
DRILLS_PER_RIG = 8
TOPIC = "sensors"

SETUP_SQL = """
CREATE TABLE readings (
    rig VARCHAR, drill INTEGER, temperature DOUBLE, vibration DOUBLE, rpm INTEGER,
    ts TIMESTAMP);
CREATE PIPELINE sensors AS
LOAD DATA KAFKA '{bootstrap}/sensors'
INTO TABLE readings
FORMAT JSON (rig <- rig, drill <- drill, temperature <- temp_c, vibration <- vib_mm_s,
             rpm <- rpm, ts <- ts);
START PIPELINE sensors;
"""

HOTTEST_SQL = """
SELECT rig, drill, round(avg(temperature), 1) AS avg_temp_c,
       round(max(temperature), 1) AS max_temp_c, round(avg(vibration), 2) AS vib_mm_s,
       count(*) AS readings
FROM readings
WHERE ts > (SELECT max(ts) FROM readings) - INTERVAL 10 SECOND
GROUP BY rig, drill ORDER BY avg_temp_c DESC LIMIT 5
"""


class DrillSimulator:
    """Readings from every drill of every rig; a few drills slowly overheat."""

    def __init__(self, seed: int = 7) -> None:
        rnd = random.Random(seed)
        self.rnd = rnd
        self.drills = [(rig, d) for rig in RIGS for d in range(1, DRILLS_PER_RIG + 1)]
        self.base = {k: rnd.uniform(62, 78) for k in self.drills}
        self.failing = set(rnd.sample(self.drills, 3))
        self.t0 = time.monotonic()

    def readings(self, n: int) -> list[bytes]:
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
        elapsed = time.monotonic() - self.t0
        out = []
        rnd = self.rnd
        for i in range(n):
            rig, drill = key = self.drills[i % len(self.drills)]
            heat = min(elapsed * 1.5, 35.0) if key in self.failing else 0.0
            temp = self.base[key] + heat + 3 * math.sin(elapsed / 7 + drill) + rnd.gauss(0, 0.8)
            vib = 2.0 + heat * 0.12 + rnd.gauss(0, 0.3)
            rpm = 110 + drill * 5 + int(rnd.gauss(0, 4))
            out.append(
                (
                    f'{{"rig":"{rig}","drill":{drill},"temp_c":{temp:.2f},'
                    f'"vib_mm_s":{vib:.3f},"rpm":{rpm},"ts":"{now}"}}'
                ).encode()
            )
        return out


class SteadyProducer(threading.Thread):
    """Produces ``rate`` messages per second in 20 ms ticks until stopped."""

    def __init__(self, bootstrap: str, rate: int) -> None:
        super().__init__(name="demo-producer", daemon=True)
        self.producer: Producer | None = Producer(
            {"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3}
        )
        self.rate = rate
        self.sent = 0
        self.stopped = threading.Event()
        self.sim = DrillSimulator()

    def run(self) -> None:
        assert self.producer is not None
        tick = 0.02
        start = time.monotonic()
        while not self.stopped.is_set():
            due = int((time.monotonic() - start) * self.rate) - self.sent
            for i, value in enumerate(self.sim.readings(max(due, 0))):
                self._produce(value, partition=(self.sent + i) % 4)
            self.sent += max(due, 0)
            self.producer.poll(0)
            self.stopped.wait(tick)
        self.producer.flush(30)
        self.producer = None  # disconnect now, not after the broker has gone

    def _produce(self, value: bytes, partition: int) -> None:
        assert self.producer is not None
        while True:
            try:
                self.producer.produce(TOPIC, value, partition=partition)
                return
            except BufferError:
                self.producer.poll(0.05)


def run_demo(duration: float | None = None, rate: int = 20_000, db_path: str | None = None) -> int:
    tty = sys.stdout.isatty()
    with LocalBroker() as broker, tempfile.TemporaryDirectory(prefix="sluice-demo-") as tmp:
        print(f"Broker (Tansu, in memory) on {broker.bootstrap}")
        create_topic(broker.bootstrap, TOPIC, partitions=4)
        path = db_path or os.path.join(tmp, "demo.duckdb")
        if db_path and os.path.exists(db_path):
            os.remove(db_path)
        producer = SteadyProducer(broker.bootstrap, rate)
        producer.start()
        db = sluice.connect(path)
        server = _serve(db)
        try:
            db.execute(SETUP_SQL.format(bootstrap=broker.bootstrap))
            print(f"Database {path}: table readings, pipeline sensors (Running)")
            if server is not None:
                print(CONNECT.format(port=server.port))
            loaded, elapsed = _watch(db, producer, duration, tty)
            producer.stopped.set()
            producer.join()
            _drain(db, producer.sent)
            total = db.execute("SELECT count(*) FROM readings").fetchone()
            count = int(total[0]) if total else 0
            db.execute("STOP PIPELINE sensors")
        finally:
            producer.stopped.set()
            if server is not None:
                server.stop()
            db.close()
    verdict = "exactly once" if count == producer.sent else "MISMATCH"
    print(
        f"\nProduced {producer.sent:,} readings, loaded {count:,}: {verdict}. "
        f"Average while running: {loaded / elapsed:,.0f} rows/s over {elapsed:.1f} s."
    )
    return 0 if count == producer.sent else 1


CONNECT = (
    "\nQuery it while it runs, from another terminal:\n"
    '  mariadb -h 127.0.0.1 -P {port} -u root -e "SELECT count(*) FROM readings"\n'
    "  mysql -h 127.0.0.1 -P {port} -u root          (any MySQL client or driver works)\n"
    "  .venv/bin/python -c \"import pymysql; cur = pymysql.connect(host='127.0.0.1', "
    "port={port}, user='root').cursor(); cur.execute('SELECT count(*) FROM readings'); "
    'print(cur.fetchone())"\n'
)


def _serve(db: sluice.Connection) -> Any:
    """The MySQL endpoint on 3307 (or a free port if that is taken); None without mysql-mimic."""
    try:
        from sluice.server import BackgroundServer
    except ImportError:
        print("(install sluice[server] to query the demo over the MySQL protocol)")
        return None
    try:
        return BackgroundServer(db, port=3307).start()
    except OSError:
        return BackgroundServer(db, port=free_port()).start()


def _watch(
    db: sluice.Connection, producer: SteadyProducer, duration: float | None, tty: bool
) -> tuple[int, float]:
    start = time.monotonic()
    last_rows, last_t = 0, start
    rows = 0
    try:
        while duration is None or time.monotonic() - start < duration:
            time.sleep(1.0)
            now = time.monotonic()
            rows = _scalar(db, "SELECT count(*) FROM readings")
            lag = _scalar(
                db,
                "SELECT coalesce(sum(LAG_MESSAGES), 0) FROM information_schema.PIPELINES_OFFSETS "
                "WHERE PIPELINE_NAME = 'sensors'",
            )
            batches = _scalar(
                db,
                "SELECT count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY "
                "WHERE PIPELINE_NAME = 'sensors'",
            )
            per_sec = (rows - last_rows) / (now - last_t)
            last_rows, last_t = rows, now
            head = (
                f"[{now - start:5.0f} s] produced {producer.sent:>10,}  loaded {rows:>10,}  "
                f"{per_sec:>9,.0f} rows/s  lag {lag:>7,} msgs  batches {batches:,}"
            )
            if tty:
                hottest = format_result(db.execute(HOTTEST_SQL))
                sys.stdout.write("\x1b[H\x1b[2J" + head + "\n\nHottest drills (last 10 s):\n")
                sys.stdout.write(hottest + "\n\nCtrl-C to stop.\n")
                sys.stdout.flush()
            else:
                print(head, flush=True)
    except KeyboardInterrupt:
        pass
    if not tty:
        print("\nHottest drills (last 10 s):")
        print(format_result(db.execute(HOTTEST_SQL)))
    return rows, max(time.monotonic() - start, 1e-9)


def _drain(db: sluice.Connection, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _scalar(db, "SELECT count(*) FROM readings") < expected:
        time.sleep(0.1)


def _scalar(db: sluice.Connection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
