"""Benchmark scenarios. Each runs in a process of its own (so its peak RSS and CPU time are its
own), started by ``bench/run.py`` as ``python bench/scenarios.py NAME '<json args>'``; the last
line it prints is its result as JSON."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaError, TopicPartition

import sluice

# The tuned consumer of the physical limit (measured here: the deep queue took consumption
# from ~160k to ~900k msgs/s). Independent of the settings Sluice itself uses.
CEILING_CONSUMER = {
    "enable.partition.eof": True,
    "enable.auto.commit": False,
    "queued.min.messages": 1_000_000,
    "queued.max.messages.kbytes": 1_000_000,
    "fetch.max.bytes": 50 * 1024 * 1024,
    "max.partition.fetch.bytes": 10 * 1024 * 1024,
}

TABLE = """CREATE TABLE readings (
    device_id VARCHAR, ts TIMESTAMP, temp DOUBLE PRECISION, vibration DOUBLE PRECISION, rpm INTEGER,
    status VARCHAR, seq BIGINT{key}, risk DOUBLE PRECISION)"""
TRANSFORMS = Path(__file__).resolve().parent / "transforms.py"
JSON_MAPPING = (
    "FORMAT JSON (device_id <- device_id, ts <- ts, temp <- temp, vibration <- vibration, "
    "rpm <- rpm, status <- status, seq <- seq)"
)
FIELDS = ("device_id", "ts", "temp", "vibration", "rpm", "status", "seq")
AVRO_MAPPING = (
    "FORMAT AVRO SCHEMA REGISTRY '{registry}' (" + ", ".join(f"{f} <- {f}" for f in FIELDS) + ")"
)
PARQUET_MAPPING = "FORMAT PARQUET (" + ", ".join(f"{f} <- {f}" for f in FIELDS) + ")"
CSV_MAPPING = "FIELDS TERMINATED BY ',' (device_id, ts, temp, vibration, rpm, status, seq)"
DASHBOARD = """SELECT device_id, count(*) AS n, avg(temp) AS avg_temp, max(vibration) AS max_vib
FROM readings GROUP BY device_id ORDER BY avg_temp DESC LIMIT 10"""


def own_usage() -> dict[str, float]:
    """This process's peak RSS (VmHWM: since exec, so nothing inherited from the parent) and
    CPU seconds over all its threads."""
    hwm_kb = 0
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                hwm_kb = int(line.split()[1])
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"peak_rss_mb": hwm_kb / 1024, "cpu_seconds": usage.ru_utime + usage.ru_stime}


def cpu() -> float:
    """CPU seconds of this process so far, over all its threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {"p50": 0.0, "p99": 0.0, "max": 0.0}
    ordered = sorted(values)
    at = lambda q: ordered[min(len(ordered) - 1, int(q * len(ordered)))]  # noqa: E731
    return {"p50": at(0.50), "p99": at(0.99), "max": ordered[-1], "mean": statistics.fmean(values)}


def ceiling(bootstrap: str, topic: str, partitions: int, **_: Any) -> dict[str, Any]:
    """The physical limit: a tuned consumer touching every payload, nothing else."""
    consumer = Consumer({**CEILING_CONSUMER, "bootstrap.servers": bootstrap, "group.id": "ceil"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    rows = nbytes = 0
    eof: set[int] = set()
    t0, c0 = time.perf_counter(), cpu()
    while len(eof) < partitions:
        for m in consumer.consume(10_000, 1.0):
            if m.error() is not None:
                if m.error().code() == KafkaError._PARTITION_EOF:
                    eof.add(m.partition())
                continue
            nbytes += len(m.value())
            rows += 1
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    consumer.close()
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "bytes": nbytes}


def kcat_ceiling(bootstrap: str, topic: str, partitions: int, **_: Any) -> dict[str, Any]:
    """The C reference: librdkafka (the same library, confluent-kafka's) consuming from C and
    touching every payload, as kcat does, with the same consumer settings as ``ceiling``."""
    from sluice.native.kafkadrain import Drain

    drain = Drain({**CEILING_CONSUMER, "bootstrap.servers": bootstrap, "group.id": "kcat"})
    drain.assign(topic, dict.fromkeys(range(partitions), -2))
    t0, c0 = time.perf_counter(), cpu()
    rows, nbytes = drain.count(partitions)
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    drain.close()
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "bytes": nbytes}


def drain_ceiling(bootstrap: str, topic: str, partitions: int, **_: Any) -> dict[str, Any]:
    """Sluice's native drain filling Arrow buffers (100k messages a fill) until every partition
    reached its end: the extraction limit of the native path, before any parsing."""
    from sluice.native.kafkadrain import Drain

    drain = Drain({**CEILING_CONSUMER, "bootstrap.servers": bootstrap, "group.id": "drain"})
    drain.assign(topic, dict.fromkeys(range(partitions), -2))
    rows = nbytes = 0
    ends: set[int] = set()
    t0, c0 = time.perf_counter(), cpu()
    while len(ends) < partitions:
        fill = drain.fill(1.0, 100_000, cap=32 << 20)
        rows += fill.rows
        offsets = fill.values.buffers()[1]
        nbytes += (
            int.from_bytes(offsets[4 * fill.rows : 4 * fill.rows + 4], "little") if offsets else 0
        )
        ends |= set(fill.eof)
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    drain.close()
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "bytes": nbytes}


def naive(
    bootstrap: str, topic: str, partitions: int, db: str, limit: int, commit_every: int = 1000,
    **_: Any,
) -> dict[str, Any]:  # fmt: skip
    """What most people write: poll one message, one INSERT per row, commit every
    ``commit_every`` rows. Into DuckDB, or PostgreSQL when ``db`` is a postgresql:// URL
    (psycopg, the same code)."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "naive"})
    consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in range(partitions)])
    con: Any
    if db.startswith("postgresql://"):
        import psycopg

        con = psycopg.connect(db, autocommit=True)
        insert = "INSERT INTO readings VALUES (%s, %s, %s, %s, %s, %s, %s, NULL)"
    else:
        con = duckdb.connect(db)
        insert = "INSERT INTO readings VALUES (?, ?, ?, ?, ?, ?, ?, NULL)"
    con.execute(TABLE.format(key=""))
    rows = nbytes = 0
    t0, c0 = time.perf_counter(), cpu()
    con.execute("BEGIN")
    while rows < limit:
        m = consumer.poll(1.0)
        if m is None or m.error() is not None:
            continue
        value = m.value()
        doc = json.loads(value)
        con.execute(
            insert,
            [doc["device_id"], doc["ts"], doc["temp"], doc["vibration"], doc["rpm"],
             doc["status"], doc["seq"]],
        )  # fmt: skip
        rows += 1
        nbytes += len(value)
        if rows % commit_every == 0:
            con.execute("COMMIT")
            con.execute("BEGIN")
    con.execute("COMMIT")
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    consumer.close()
    con.close()
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "bytes": nbytes}


def _pipeline(
    db_path: str, bootstrap: str, topic: str, clause: str, key: str = "", config: str = "{}"
) -> Any:
    db = sluice.connect(db_path)
    db.execute(TABLE.format(key=key))
    source = f"KAFKA '{bootstrap}/{topic}' CONFIG '{config}'"
    db.execute(f"CREATE PIPELINE p AS LOAD DATA {source} {clause}")
    return db


def _count(db: Any, table: str = "readings") -> int:
    row = db.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


def sluice_load(
    bootstrap: str, topic: str, db: str, expect: int, fmt: str = "json", replace: bool = False,
    kafka_config: str = "{}", transform: str = "", registry: str = "", **_: Any,
) -> dict[str, Any]:  # fmt: skip
    """Sluice, exactly-once, from the first offset to the end of the topic; ``transform``:
    ``program``, ``python`` or ``score`` puts that transform in the path. ``fmt`` ``avro``:
    messages framed for the schema registry at ``registry``."""
    mapping = {"json": JSON_MAPPING, "csv": CSV_MAPPING}.get(fmt) or AVRO_MAPPING.format(
        registry=registry
    )
    clause = ("REPLACE " if replace else "") + f"INTO TABLE readings {mapping}"
    if transform:
        clause = _transform_clause(transform, db) + " " + clause
    key = " PRIMARY KEY" if replace else ""
    conn = _pipeline(db, bootstrap, topic, clause, key, kafka_config)
    t0, c0 = time.perf_counter(), cpu()
    batches = conn.execute("START PIPELINE p FOREGROUND").fetchall()
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    rows = _count(conn)
    conn.close()
    assert rows == expect, f"loaded {rows}, expected {expect}"
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "batches": len(batches)}


def _transform_clause(kind: str, db: str) -> str:
    if kind == "program":
        return f"WITH TRANSFORM ('file://{TRANSFORMS}', '', '')"
    if kind == "python":
        return f"WITH TRANSFORM PYTHON '{TRANSFORMS}:fahrenheit'"
    model = _train_model(db + ".onnx")  # before the clock starts
    args = json.dumps({"model": model, "inputs": list(MODEL_INPUTS), "output": "risk"})
    return f"WITH TRANSFORM PYTHON 'sluice.transforms.models:Score' '{args}'"


MODEL_INPUTS = ("temp", "vibration", "rpm", "seq")


def _train_model(path: str) -> str:
    """A gradient-boosted classifier (100 trees, depth 3) over the readings' four numeric
    fields, as ONNX: the shape of the demo's drill model."""
    import numpy as np
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    rng = np.random.default_rng(1)
    x = np.column_stack(
        [rng.uniform(60, 100, 5000), rng.uniform(0, 5, 5000), rng.uniform(100, 160, 5000),
         rng.uniform(0, 1e6, 5000)]
    )  # fmt: skip
    y = (0.1 * (x[:, 0] - 85) + (x[:, 1] - 3) + rng.normal(0, 0.5, 5000) > 0).astype(int)
    model = GradientBoostingClassifier(n_estimators=100, max_depth=3).fit(x, y)
    onnx = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False})
    Path(path).write_bytes(onnx.SerializeToString())
    return path


def query_while_ingesting(
    bootstrap: str, topic: str, db: str, expect: int, every: float = 0.1, **_: Any
) -> dict[str, Any]:
    """The JSON load running in the background, and a dashboard query every 100 ms."""
    conn = _pipeline(db, bootstrap, topic, f"INTO TABLE readings {JSON_MAPPING}")
    latencies: list[float] = []
    t0, c0 = time.perf_counter(), cpu()
    conn.execute("START PIPELINE p")
    rows = 0
    while rows < expect:
        tick = time.perf_counter()
        q0 = time.perf_counter()
        conn.execute(DASHBOARD).fetchall()
        latencies.append((time.perf_counter() - q0) * 1000)
        rows = _count(conn)
        time.sleep(max(0.0, every - (time.perf_counter() - tick)))
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    conn.execute("STOP PIPELINE p")
    conn.close()
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu,
            "query_ms": percentiles(latencies), "queries": len(latencies)}  # fmt: skip


def freshness(
    bootstrap: str, topic: str, db: str, rate: int, duration: float, **_: Any
) -> dict[str, Any]:
    """Produce at a steady rate with the send time in each message (another process); report
    how long each record took to become visible to a query (visible time - send time), once
    the pipeline runs (its start-up is not freshness)."""
    conn = sluice.connect(db)
    conn.execute("CREATE TABLE fresh (seq BIGINT, sent_ms BIGINT)")
    conn.execute(
        f"CREATE PIPELINE f AS LOAD DATA KAFKA '{bootstrap}/{topic}' INTO TABLE fresh "
        "FORMAT JSON (seq <- seq, sent_ms <- sent_ms)"
    )
    conn.execute("START PIPELINE f")
    producer = _spawn_producer(bootstrap, topic, rate, duration)
    watcher = duckdb.connect(db)  # the same database, as a reader of the table would see it
    # Steady state only: the clock starts once the warm-up messages (one per partition) are
    # visible, so the pipeline's start and the producer's connection are not measured.
    assert producer.stdout is not None and producer.stdin is not None
    producer.stdout.readline()
    warm = 4  # the producer's warm-up messages, one per partition
    deadline = time.monotonic() + 60
    while (watcher.execute("SELECT count(*) FROM fresh").fetchone() or (0,))[0] < warm:
        if time.monotonic() > deadline:
            raise RuntimeError("the warm-up messages did not show up within 60 s")
        time.sleep(0.01)
    producer.stdin.write("go\n")
    producer.stdin.flush()
    latencies: list[float] = []
    seen = warm
    done: Callable[[], bool] = lambda: producer.poll() is not None  # noqa: E731
    expected = -1
    t_end = time.monotonic() + duration + 60
    while time.monotonic() < t_end:
        now_ms = time.time() * 1000
        (total,) = watcher.execute("SELECT count(*) FROM fresh").fetchone() or (0,)
        if total > seen:
            sent = watcher.execute(
                "SELECT sent_ms FROM fresh WHERE rowid >= ? AND rowid < ?", [seen, total]
            ).fetchall()
            latencies.extend(now_ms - s for (s,) in sent)
            seen = total
        if expected < 0 and done():
            expected = int(producer.stdout.read().strip() or 0)
        if expected >= 0 and seen - warm >= expected:
            break
        time.sleep(0.01)
    watcher.close()
    conn.execute("STOP PIPELINE f")
    conn.close()
    return {"rows": seen - warm, "sent": expected, "rate": rate, "duration": duration,
            "latency_ms": percentiles(latencies)}  # fmt: skip


CLIENTS = """
import json, sys, threading, time
kind, port, clients, every = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
PATHS = ["/api/dashboard", "/api/pipelines", "/api/pipelines/p/offsets",
         "/api/pipelines/p/batches?limit=20", "/metrics"]
stop, latencies, errors = threading.Event(), [], []
def connect():
    if kind == "http":  # the API the dashboard and monitoring poll, in turn
        import httpx
        http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30)
        def ask(n):
            r = http.get(PATHS[n % len(PATHS)])
            if r.status_code != 200:
                raise RuntimeError(f"{r.status_code} {r.text[:200]}")
        return ask, http.close
    if kind == "sqlalchemy":  # a BI tool's pool, analytic aggregates in MySQL's dialect
        import sqlalchemy as sa
        def ask(n):
            with ENGINE.connect() as c:  # checked out and returned (ROLLBACK) each time
                total, grouped = c.execute(sa.text(CONSISTENT)).one()
                if total != grouped:
                    raise RuntimeError(f"inconsistent: {total} rows, {grouped} by device")
                c.execute(sa.text(AGGREGATE)).all()
        return ask, lambda: None
    import pymysql
    conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
    cur = conn.cursor()
    def ask(n):
        cur.execute("SELECT count(*), sum(seq) FROM readings")
        cur.fetchall()
    return ask, conn.close
CONSISTENT = ("SELECT COUNT(*), (SELECT IFNULL(SUM(`n`), 0) FROM (SELECT COUNT(*) AS `n` "
              "FROM `readings` GROUP BY `device_id`) AS `g`) FROM `readings`")
AGGREGATE = ("SELECT `device_id`, COUNT(*) AS `n`, IFNULL(AVG(`temp`), 0), MAX(`vibration`) "
             "FROM `readings2` GROUP BY `device_id` ORDER BY `n` DESC LIMIT 0, 10")
if kind == "sqlalchemy":
    import sqlalchemy as sa
    ENGINE = sa.create_engine(f"mysql+pymysql://root@127.0.0.1:{port}/main",
                              pool_size=clients, max_overflow=0)
def client(k):
    try:
        ask, close = connect()
        n = k
        while not stop.is_set():
            t0 = time.perf_counter()
            ask(n)
            latencies.append((time.perf_counter() - t0) * 1000)
            n += 1
            time.sleep(every)
        close()
    except Exception as exc:  # a client that fails stops: counted, and fails the scenario
        errors.append(repr(exc))
threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
for t in threads:
    t.start()
print("started", flush=True)
sys.stdin.readline()
stop.set()
for t in threads:
    t.join()
print(json.dumps({"latencies": latencies, "errors": errors[:3], "failed": len(errors)}),
      flush=True)
"""


def served_load(
    bootstrap: str, topic: str, db: str, expect: int, clients: int, every: float = 0.05,
    http: bool = False, bi: bool = False, **_: Any,
) -> dict[str, Any]:  # fmt: skip
    """The JSON load behind the MySQL endpoint, with ``clients`` connections (another process)
    each querying the table being loaded every ``every`` seconds; with ``http``, ``clients``
    HTTP clients polling the API (the dashboard's data, pipelines, offsets, batches, /metrics)
    instead. With ``bi``, the risk-analytics case: two pipelines load the topic into two
    tables, and the clients are SQLAlchemy's pool running aggregates in MySQL's dialect, each
    result checked for consistency (``clients`` 0: the two loads alone)."""
    import subprocess

    from sluice.broker import free_port
    from sluice.server import BackgroundServer, Endpoints

    conn = _pipeline(db, bootstrap, topic, f"INTO TABLE readings {JSON_MAPPING}")
    if bi:  # the second pipeline, from the same topic
        conn.execute(TABLE.format(key="").replace("readings", "readings2"))
        conn.execute(
            f"CREATE PIPELINE p2 AS LOAD DATA KAFKA '{bootstrap}/{topic}' "
            f"INTO TABLE readings2 {JSON_MAPPING}"
        )
    ports = Endpoints(mysql_port=free_port(), http_port=free_port() if http else None)
    server = BackgroundServer(conn, ports).start()
    kind, port = ("http", ports.http_port) if http else ("mysql", ports.mysql_port)
    kind = "sqlalchemy" if bi else kind
    load = subprocess.Popen(
        [sys.executable, "-c", CLIENTS, kind, str(port), str(clients), str(every)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert load.stdin is not None and load.stdout is not None
    try:
        assert load.stdout.readline().strip() == "started"
        t0, c0 = time.perf_counter(), cpu()
        if bi:
            conn.execute("START PIPELINE p2")
        conn.execute("START PIPELINE p FOREGROUND").fetchall()
        while bi and _count(conn, "readings2") < expect:
            time.sleep(0.01)
        seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
        out, _ = load.communicate("stop\n", timeout=60)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        server.stop()
    rows = _count(conn)
    if bi:
        conn.execute("STOP PIPELINE p2")
        second = _count(conn, "readings2")
        assert second == expect, f"loaded {second} into readings2, expected {expect}"
        rows += second
    conn.close()
    assert rows == expect * (2 if bi else 1), f"loaded {rows}, expected {expect}"
    found = json.loads(out.strip().splitlines()[-1])
    assert not found["errors"], found["errors"]
    latencies = found["latencies"]
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "clients": clients,
            "queries": len(latencies), "query_ms": percentiles(latencies),
            "failed": found.get("failed", 0)}  # fmt: skip


PRODUCER = """
import json, sys, time
from confluent_kafka import Producer
bootstrap, topic, rate, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 3})
for part in range(4):  # one message per partition, before the clock starts: seq -1
    p.produce(topic, b'{"seq": -1, "sent_ms": 0}', partition=part)
p.flush(30)
print("ready", flush=True)
sys.stdin.readline()  # the reader saw them: the pipeline is running and caught up
sent, start = 0, time.monotonic()
while time.monotonic() - start < duration:
    due = int((time.monotonic() - start) * rate) - sent
    for _ in range(due):
        now = int(time.time() * 1000)
        p.produce(topic, b'{"seq": %d, "sent_ms": %d, "pad": "%s"}' % (sent, now, b"x" * 90),
                  partition=sent % 4)
        sent += 1
    p.poll(0)
    time.sleep(0.001)
p.flush(30)
print(sent)
"""


def _spawn_producer(bootstrap: str, topic: str, rate: int, duration: float) -> Any:
    import subprocess

    return subprocess.Popen(
        [sys.executable, "-c", PRODUCER, bootstrap, topic, str(rate), str(duration)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )


def parquet_ceiling(directory: str, **_: Any) -> dict[str, Any]:
    """The read limit of Parquet files: pyarrow reading the mapped columns of every row group,
    nothing else."""
    import pyarrow.parquet as pq

    rows = nbytes = 0
    t0, c0 = time.perf_counter(), cpu()
    for path in sorted(Path(directory).glob("*.parquet")):
        parquet = pq.ParquetFile(path)
        for i in range(parquet.num_row_groups):
            group = parquet.read_row_group(i, columns=list(FIELDS))
            rows += group.num_rows
            nbytes += group.nbytes
    return {
        "rows": rows,
        "seconds": time.perf_counter() - t0,
        "load_cpu": cpu() - c0,
        "bytes": nbytes,
    }


def parquet_duckdb(directory: str, db: str, **_: Any) -> dict[str, Any]:
    """DuckDB's own Parquet reader inserting the files in one statement (no exactly-once
    bookkeeping): the load limit of Parquet files into DuckDB."""
    con = duckdb.connect(db)
    con.execute(TABLE.format(key=""))
    t0, c0 = time.perf_counter(), cpu()
    columns = ", ".join(FIELDS)
    con.execute(
        f"INSERT INTO readings ({columns}) SELECT {columns} "
        f"FROM read_parquet('{directory}/*.parquet')"
    )
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    rows = con.execute("SELECT count(*) FROM readings").fetchone()
    con.close()
    return {"rows": rows[0] if rows else 0, "seconds": seconds, "load_cpu": load_cpu}


def sluice_files(directory: str, db: str, expect: int, **_: Any) -> dict[str, Any]:
    """Sluice loading the Parquet files of ``directory``, exactly once (a file's row groups
    commit with its cursor)."""
    conn = sluice.connect(db)
    conn.execute(TABLE.format(key=""))
    conn.execute(
        f"CREATE PIPELINE p AS LOAD DATA FS '{directory}/*.parquet' INTO TABLE readings "
        f"{PARQUET_MAPPING}"
    )
    t0, c0 = time.perf_counter(), cpu()
    batches = conn.execute("START PIPELINE p FOREGROUND").fetchall()
    seconds, load_cpu = time.perf_counter() - t0, cpu() - c0
    rows = _count(conn)
    conn.close()
    assert rows == expect, f"loaded {rows}, expected {expect}"
    return {"rows": rows, "seconds": seconds, "load_cpu": load_cpu, "batches": len(batches)}


SCENARIOS: dict[str, Callable[..., dict[str, Any]]] = {
    "parquet_ceiling": parquet_ceiling,
    "parquet_duckdb": parquet_duckdb,
    "files": sluice_files,
    "ceiling": ceiling,
    "kcat_ceiling": kcat_ceiling,
    "drain_ceiling": drain_ceiling,
    "naive": naive,
    "sluice": sluice_load,
    "query": query_while_ingesting,
    "freshness": freshness,
    "served": served_load,
}

if __name__ == "__main__":
    name, args = sys.argv[1], json.loads(sys.argv[2])
    result = SCENARIOS[name](**args)
    result.update(own_usage())
    print(json.dumps(result), flush=True)
