"""What a batch costs in PostgreSQL, piece by piece (no Kafka): encoding it for binary COPY,
and the INSERT … SELECT of the load plan with and without a key, ON CONFLICT and the in-batch
dedupe, 400k rows from a staging table.

    .venv/bin/python bench/pg_costs.py [--rows N]
"""

from __future__ import annotations

import argparse
import time

import psycopg
import pyarrow as pa

from sluice.localpg import LocalPostgres
from sluice.stores import pgcopy

CAST = (
    "b.device_id, CAST(NULLIF(b.ts, '') AS timestamp) AS ts, "
    "CAST(NULLIF(b.temp, '') AS double precision) AS temp, "
    "CAST(NULLIF(b.rpm, '') AS integer) AS rpm, CAST(NULLIF(b.seq, '') AS bigint) AS seq"
)
COLUMNS = "device_id, ts, temp, rpm, seq"
TABLE = "CREATE TABLE r (device_id varchar, ts timestamp, temp double precision, rpm integer, "
UPSERT = "ON CONFLICT (seq) DO UPDATE SET temp = EXCLUDED.temp"
STATEMENTS = {
    "plain insert, no key": (
        TABLE + "seq bigint)",
        f"INSERT INTO r SELECT {CAST} FROM b",
    ),
    "plain insert, primary key": (
        TABLE + "seq bigint PRIMARY KEY)",
        f"INSERT INTO r SELECT {CAST} FROM b",
    ),
    "ON CONFLICT DO UPDATE": (
        TABLE + "seq bigint PRIMARY KEY)",
        f"INSERT INTO r SELECT {CAST} FROM b {UPSERT}",
    ),
    "dedupe window + ON CONFLICT (REPLACE)": (
        TABLE + "seq bigint PRIMARY KEY)",
        f"INSERT INTO r ({COLUMNS}) SELECT {COLUMNS} FROM (SELECT *, row_number() OVER "
        f"(PARTITION BY seq ORDER BY __row DESC) AS k FROM (SELECT {CAST}, b.__row FROM b) AS x)"
        f" AS d WHERE k = 1 {UPSERT}",
    ),
}


def batch(n: int) -> pa.Table:
    return pa.table(
        {
            "device_id": [f"rig-{i % 50:02d}-drill-{i % 8}" for i in range(n)],
            "ts": [f"2026-11-22T07:00:{(i // 1000) % 60:02d}.{i % 1000:03d}" for i in range(n)],
            "temp": [f"{60 + i % 40}.25" for i in range(n)],
            "rpm": [str(100 + i % 60) for i in range(n)],
            "seq": [str(i) for i in range(n)],
            "__row": pa.array(range(n), pa.int64()),
        }
    )


def adbc(dsn: str, rows: pa.Table) -> None:
    """The same batch through ADBC's PostgreSQL driver (``adbc_ingest``: its own binary COPY
    from Arrow), into a staging table of the same columns, beside Sluice's encoder + COPY."""
    try:
        import adbc_driver_postgresql.dbapi as adbc_pg
    except ImportError:
        print("ADBC: adbc-driver-postgresql is not installed (pip install adbc-driver-postgresql)")
        return
    with adbc_pg.connect(dsn) as con, con.cursor() as cur:
        for label, mode in (
            ("ADBC ingest, new table", "create"),
            ("ADBC ingest, append", "append"),
        ):
            if mode == "create":
                cur.execute("DROP TABLE IF EXISTS b_adbc")
                con.commit()
            t0 = time.perf_counter()
            cur.adbc_ingest("b_adbc", rows, mode=mode)
            con.commit()
            print(f"{label:<40} {time.perf_counter() - t0:6.3f} s")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=400_000)
    n = parser.parse_args().rows
    rows = batch(n)
    pgcopy.encode(rows)  # warm up Arrow's kernels
    t0 = time.perf_counter()
    body = pgcopy.encode(rows)
    print(f"{'encode for binary COPY':<40} {time.perf_counter() - t0:6.3f} s  ({n:,} rows)")
    with LocalPostgres() as server, psycopg.connect(server.dsn(), autocommit=True) as con:
        columns = ", ".join(
            f"{c} {'bigint' if c == '__row' else 'text'}" for c in rows.schema.names
        )
        con.execute(f"CREATE TEMP TABLE b ({columns})".encode())
        t0 = time.perf_counter()
        with con.cursor().copy("COPY b FROM STDIN (FORMAT BINARY)") as copy:
            copy.write(pgcopy.HEADER + bytes(body) + pgcopy.TRAILER)
        print(f"{'COPY into the staging table':<40} {time.perf_counter() - t0:6.3f} s")
        adbc(server.dsn(), rows)
        for label, (table, insert) in STATEMENTS.items():
            con.execute("DROP TABLE IF EXISTS r")
            con.execute(table.encode())
            t0 = time.perf_counter()
            con.execute(insert.encode())
            print(f"{label:<40} {time.perf_counter() - t0:6.3f} s")


if __name__ == "__main__":
    main()
