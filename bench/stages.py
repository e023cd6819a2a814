"""Where the time of a JSON load goes: each stage alone on the same data, one after another.

    .venv/bin/python bench/stages.py [--messages N]

extract — Sluice's Kafka source reading every partition to the end (batches of 100k/partition;
          the native drain unless SLUICE_NATIVE_KAFKA=0)
parse   — the JSON format turning those batches into Arrow text columns (as a pipeline does)
load    — DuckDB inserting them with the casts a pipeline uses, one transaction per batch

A pipeline overlaps them (the next batch is extracted while one loads), so its CPU per row is
about their sum and its time less.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import duckdb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import fill, readings

from sluice.broker import LocalBroker
from sluice.engine.batch import Batch
from sluice.formats.json import JsonFormat
from sluice.sources.kafka import KafkaSource
from sluice.sql import ast, parse
from sluice.vocab import ROW_COLUMN

FIELDS = ("device_id", "ts", "temp", "vibration", "rpm", "status", "seq")
INSERT = (
    "INSERT INTO readings SELECT b.device_id, CAST(NULLIF(b.ts, '') AS TIMESTAMP), "
    "CAST(NULLIF(b.temp, '') AS DOUBLE), CAST(NULLIF(b.vibration, '') AS DOUBLE), "
    "CAST(NULLIF(b.rpm, '') AS INTEGER), b.status, CAST(NULLIF(b.seq, '') AS BIGINT) FROM b"
)


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def report(stage: str, n: int, wall: float, cpu_s: float) -> None:
    print(
        f"{stage:<8} {n / wall:>12,.0f} rows/s  {wall:6.2f} s wall  {cpu_s:6.2f} s CPU  "
        f"{cpu_s / n * 1e6:5.2f} CPU-s per 1M rows"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=1_000_000)
    n = parser.parse_args().messages
    with LocalBroker() as broker, tempfile.TemporaryDirectory() as tmp:
        fill(broker.bootstrap, "json", readings(n, "json"))
        source = KafkaSource(f"{broker.bootstrap}/json", {}, pipeline="stages")
        cursors: dict[str, int] = {}
        batches = []
        t0, c0, done = time.perf_counter(), cpu(), 0
        while done < n:
            parts = source.extract(cursors, 100_000, 5.0)
            for p in parts:
                cursors[p.partition] = p.end
                done += p.count
            batches.append(parts)
        report("extract", n, time.perf_counter() - t0, cpu() - c0)
        source.close()

        mapping = ", ".join(f"{f} <- {f}" for f in FIELDS)
        stmt = parse(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA 'h/t' INTO TABLE t FORMAT JSON ({mapping})"
        )
        assert isinstance(stmt, ast.CreatePipeline) and isinstance(stmt.format, ast.MappedSpec)
        fmt = JsonFormat(stmt.format)
        t0, c0 = time.perf_counter(), cpu()
        tables = [Batch.parse(fmt, parts).rows.drop_columns([ROW_COLUMN]) for parts in batches]
        report("parse", n, time.perf_counter() - t0, cpu() - c0)

        con = duckdb.connect(f"{tmp}/stages.duckdb")
        con.execute(
            "CREATE TABLE readings (device_id VARCHAR, ts TIMESTAMP, temp DOUBLE, "
            "vibration DOUBLE, rpm INTEGER, status VARCHAR, seq BIGINT)"
        )
        t0, c0 = time.perf_counter(), cpu()
        for table in tables:
            con.register("b", table)
            con.execute("BEGIN")
            con.execute(INSERT)
            con.execute("COMMIT")
        report("load", n, time.perf_counter() - t0, cpu() - c0)
        con.close()


if __name__ == "__main__":
    main()
