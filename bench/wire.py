"""The MySQL endpoint's speed: simple-query round trips/s and rows/s streamed to pymysql.

.venv/bin/python bench/wire.py [--rows N] [--seconds S]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time

import pymysql
import pymysql.cursors

from sluice.broker import free_port


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        server = subprocess.Popen(
            [sys.executable, "-m", "sluice.cli", "serve", "--db", f"{tmp}/wire.duckdb",
             "--mysql-port", str(port)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert server.stdout is not None
        while "MySQL protocol on" not in server.stdout.readline():
            pass
        try:
            conn = pymysql.connect(host="127.0.0.1", port=port, user="root", autocommit=True)
            with conn.cursor() as cur:
                n, t0 = 0, time.perf_counter()
                while time.perf_counter() - t0 < args.seconds:
                    cur.execute("SELECT 1")
                    cur.fetchall()
                    n += 1
                print(f"SELECT 1 round trips: {n / (time.perf_counter() - t0):,.0f}/s")
                cur.execute(
                    f"CREATE TABLE wide AS SELECT range AS id, range * 1.5 AS x, "
                    f"'row ' || range AS s, DATE '2026-01-01' + (range % 365)::INT AS d, "
                    f"range % 2 = 0 AS b FROM range({args.rows})"
                )
            with conn.cursor(pymysql.cursors.SSCursor) as cur:  # streams, as a client would
                t0 = time.perf_counter()
                cur.execute("SELECT * FROM wide")
                got = sum(1 for _ in cur)
                dt = time.perf_counter() - t0
                print(f"{got:,} rows x 5 columns streamed to pymysql: {got / dt:,.0f} rows/s")
            conn.close()
        finally:
            server.terminate()
            server.wait(30)
            server.stdout.close()


if __name__ == "__main__":
    main()
