"""``sluice demo``: oil-rig drill sensors → Kafka → a pipeline that scores drill health with a
model → readings, the latest state of each drill and alerts, written by a procedure → a live view.

Trains the drill-health model (``sluice.drill``; once, then cached) and prints its accuracy,
starts the bundled broker, creates a 4-partition topic ``sensors``, produces simulated readings
at a steady rate (a few drills wear out as it runs), and loads them with a JSON pipeline whose
Python transform scores every reading and whose procedure writes three tables in the batch's
transaction. Shows the riskiest drills by predicted health and the alerts until Ctrl-C or
``--duration``; at the end it checks that every produced reading was loaded exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from confluent_kafka import Producer

import sluice
from sluice import drill
from sluice.broker import LocalBroker, create_topic, free_port
from sluice.shell import format_result

RIGS = ("NORTH-1", "NORTH-2", "DELTA-7", "GULF-3", "BRENT-5")
DRILLS_PER_RIG = 8
TOPIC = "sensors"
# A drill is alerted once the average predicted chance of failing of its readings in a batch
# passes this (one reading is noisy: its sensors are).
ALERT_RISK = 0.8
MODEL_VERSION = "1"  # bump when sluice.drill changes, so that a cached model is trained anew

SETUP_SQL = """
CREATE TABLE readings (
    rig VARCHAR, drill INTEGER, temp_c DOUBLE, vib_mm_s DOUBLE, rpm DOUBLE,
    torque_knm DOUBLE, pressure_bar DOUBLE, ts TIMESTAMP, risk DOUBLE);
CREATE TABLE drill_status (
    rig VARCHAR, drill INTEGER, ts TIMESTAMP, temp_c DOUBLE, vib_mm_s DOUBLE, risk DOUBLE,
    PRIMARY KEY (rig, drill));
CREATE TABLE alerts (rig VARCHAR, drill INTEGER, ts TIMESTAMP, risk DOUBLE);

CREATE PROCEDURE score_drills (batch QUERY(
    rig VARCHAR, drill INTEGER, temp_c DOUBLE, vib_mm_s DOUBLE, rpm DOUBLE, torque_knm DOUBLE,
    pressure_bar DOUBLE, ts TIMESTAMP, risk DOUBLE)) AS
BEGIN
  INSERT INTO readings SELECT * FROM batch;
  INSERT INTO drill_status
    SELECT rig, drill, max(ts), arg_max(temp_c, ts), arg_max(vib_mm_s, ts), arg_max(risk, ts)
    FROM batch GROUP BY rig, drill
    ON CONFLICT (rig, drill) DO UPDATE SET ts = excluded.ts, temp_c = excluded.temp_c,
      vib_mm_s = excluded.vib_mm_s, risk = excluded.risk;
  INSERT INTO alerts
    SELECT rig, drill, max(ts), avg(risk) FROM batch AS b
    WHERE NOT EXISTS (SELECT 1 FROM alerts AS a WHERE a.rig = b.rig AND a.drill = b.drill)
    GROUP BY rig, drill HAVING avg(risk) > {alert_risk};
END;

CREATE PIPELINE sensors AS
LOAD DATA KAFKA '{bootstrap}/sensors'
WITH TRANSFORM PYTHON 'sluice.transforms.models:Score' '{model}'
INTO PROCEDURE score_drills
FORMAT JSON (rig <- rig, drill <- drill, temp_c <- temp_c, vib_mm_s <- vib_mm_s, rpm <- rpm,
             torque_knm <- torque_knm, pressure_bar <- pressure_bar, ts <- ts);
START PIPELINE sensors;
"""

RISKIEST_SQL = """
SELECT rig, drill, round(100 * (1 - risk)) AS health_pct, round(100 * risk, 1) AS risk_pct,
       round(temp_c, 1) AS temp_c, round(vib_mm_s, 2) AS vib_mm_s
FROM drill_status ORDER BY risk DESC, rig, drill LIMIT 5
"""
ALERTS_SQL = "SELECT rig, drill, ts, round(100 * risk, 1) AS risk_pct FROM alerts ORDER BY ts"


def model_path() -> Path:
    """The demo's drill model (ONNX), trained on first use and cached. It is trained into a
    directory of its own and renamed into place, so an interrupted training leaves no model."""
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    directory = cache / "sluice" / f"drill-model-{MODEL_VERSION}"
    if not (directory / "accuracy.txt").exists():
        print(f"Training the drill-health model (once; cached in {directory})")
        directory.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix="training-", dir=directory.parent))
        try:
            trained = drill.train(staging)
            (staging / "accuracy.txt").write_text(f"{trained.accuracy} {trained.baseline}\n")
            shutil.rmtree(directory, ignore_errors=True)
            os.replace(staging, directory)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    accuracy, baseline = (float(v) for v in (directory / "accuracy.txt").read_text().split())
    print(
        f"Drill-health model {directory / 'drill.onnx'} ({drill.TREES} gradient-boosted trees on "
        f"{', '.join(drill.FEATURES)}): accuracy {accuracy:.3f} on held-out readings (guessing "
        f"the commoner outcome: {baseline:.3f})"
    )
    return directory / "drill.onnx"


class DrillSimulator:
    """Readings from every drill of every rig: the physics of ``sluice.drill``, with a few
    drills whose bits wear out as the demo runs (so their predicted health falls)."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.drills = [(rig, d) for rig in RIGS for d in range(1, DRILLS_PER_RIG + 1)]
        self.wear = self.rng.uniform(0.05, 0.35, len(self.drills))
        self.failing = self.rng.choice(len(self.drills), 3, replace=False)
        self.t0 = time.monotonic()

    def readings(self, n: int) -> list[bytes]:
        if n <= 0:
            return []
        now = datetime.now(UTC).replace(tzinfo=None).isoformat(timespec="milliseconds")
        wear = self.wear.copy()
        wear[self.failing] = np.minimum(wear[self.failing] + (time.monotonic() - self.t0) / 40, 1)
        which = np.arange(n) % len(self.drills)
        values = drill.readings(n, self.rng, wear[which])
        out = []
        for k, row in zip(which, values, strict=True):
            rig, number = self.drills[k]
            doc = dict(zip(drill.FEATURES, (round(float(v), 3) for v in row), strict=True))
            out.append(json.dumps({"rig": rig, "drill": number, **doc, "ts": now}).encode())
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
    model = json.dumps(
        {"model": str(model_path()), "inputs": list(drill.FEATURES), "output": "risk"}
    )
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
            db.execute(
                SETUP_SQL.format(bootstrap=broker.bootstrap, model=model, alert_risk=ALERT_RISK)
            )
            print(
                f"Database {path}: tables readings, drill_status, alerts; procedure "
                "score_drills; pipeline sensors scoring each reading (Running)"
            )
            if server is not None:
                print(CONNECT.format(url=server.url, port=server.endpoints.mysql_port))
            loaded, elapsed = _watch(db, producer, duration, tty)
            producer.stopped.set()
            producer.join()
            _drain(db, producer.sent)
            total = db.execute("SELECT count(*) FROM readings").fetchone()
            count = int(total[0]) if total else 0
            db.execute("STOP PIPELINE sensors")
            _summary(db, producer.sim)
        finally:
            producer.stopped.set()
            if server is not None:
                server.stop()
            db.close()
    verdict = "exactly once" if count == producer.sent else "MISMATCH"
    print(
        f"\nProduced {producer.sent:,} readings, loaded and scored {count:,}: {verdict}. "
        f"Average while running: {loaded / elapsed:,.0f} rows/s over {elapsed:.1f} s."
    )
    return 0 if count == producer.sent else 1


CONNECT = (
    "\nDashboard (the drills' health, the pipeline's rate, lag and errors, live): {url}\n"
    "\nQuery it while it runs, from another terminal:\n"
    '  mariadb -h 127.0.0.1 -P {port} -u root -e "SELECT count(*) FROM readings"\n'
    "  mysql -h 127.0.0.1 -P {port} -u root          (any MySQL client or driver works)\n"
    "  .venv/bin/python -c \"import pymysql; cur = pymysql.connect(host='127.0.0.1', "
    "port={port}, user='root').cursor(); cur.execute('SELECT count(*) FROM readings'); "
    'print(cur.fetchone())"\n'
)


def _serve(db: sluice.Connection) -> Any:
    """The MySQL endpoint on 3307 and the dashboard on 8080 (or free ports if those are
    taken); None without the server's libraries."""
    try:
        from sluice.server import BackgroundServer, Endpoints
    except ImportError:
        print("(install sluice[server] for the dashboard and the MySQL protocol)")
        return None
    try:
        return BackgroundServer(db, Endpoints(mysql_port=3307, http_port=8080)).start()
    except sluice.SluiceError:
        ports = Endpoints(mysql_port=free_port(), http_port=free_port())
        return BackgroundServer(db, ports).start()


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
                view = _view(db)
                sys.stdout.write("\x1b[H\x1b[2J" + head + "\n\n" + view + "\n\nCtrl-C to stop.\n")
                sys.stdout.flush()
            else:
                print(head, flush=True)
    except KeyboardInterrupt:
        pass
    if not tty:
        print("\n" + _view(db))
    return rows, max(time.monotonic() - start, 1e-9)


def _view(db: sluice.Connection) -> str:
    riskiest = format_result(db.execute(RISKIEST_SQL))
    alerts = format_result(db.execute(ALERTS_SQL))
    return (
        f"Riskiest drills by predicted health (model score):\n{riskiest}\n\n"
        f"Alerts (predicted chance of failing above {ALERT_RISK:.0%}):\n{alerts}"
    )


def _summary(db: sluice.Connection, sim: DrillSimulator) -> None:
    wearing = {sim.drills[k] for k in sim.failing}
    alerted = {(rig, int(d)) for rig, d in db.execute("SELECT rig, drill FROM alerts").fetchall()}
    names = ", ".join(f"{rig} #{d}" for rig, d in sorted(wearing))
    print(
        f"\nDrills whose bits were wearing out: {names}; alerted: {len(alerted & wearing)} of "
        f"them, and {len(alerted - wearing)} others."
    )


def _drain(db: sluice.Connection, expected: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and _scalar(db, "SELECT count(*) FROM readings") < expected:
        time.sleep(0.1)


def _scalar(db: sluice.Connection, sql: str) -> int:
    row = db.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
