"""The MySQL wire protocol, against a running `sluice serve`, with real MySQL clients."""

from __future__ import annotations

import datetime
import json
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable
from decimal import Decimal

import psycopg
import pymysql
import pymysql.cursors
import pytest

from sluice.testing import LocalBroker, produce, wait_for
from tests.server.conftest import PASSWORD, Server, serving


def test_types_round_trip(server: Server) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE t (i INTEGER, bi BIGINT, f DOUBLE, d DECIMAL(10, 3), s VARCHAR, "
            "b BOOLEAN, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, bl BLOB, l INTEGER[], "
            "st STRUCT(a INTEGER, b VARCHAR), j JSON, n INTEGER)"
        )
        cur.execute(
            "INSERT INTO t VALUES (-7, 9007199254740993, 2.5, 12.345, 'héllo ☃', true, "
            "'2026-11-22', '2026-11-22 07:08:09.123456', '2026-11-22 07:08:09+02', "
            "'\\xAA\\xBB'::BLOB, [1, 2], {'a': 1, 'b': 'x'}, '{\"k\": [1]}', NULL)"
        )
        cur.execute("SELECT * FROM t")
        row = cur.fetchone()
        assert row == (
            -7,
            9007199254740993,
            2.5,
            Decimal("12.345"),
            "héllo ☃",
            1,
            datetime.date(2026, 11, 22),
            datetime.datetime(2026, 11, 22, 7, 8, 9, 123456),
            datetime.datetime(2026, 11, 22, 5, 8, 9),  # with a time zone: sent as UTC
            b"\xaa\xbb",
            "[1, 2]",
            json.dumps({"a": 1, "b": "x"}),
            '{"k": [1]}',
            None,
        )


def test_client_chatter_and_transactions(server: Server) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        for statement in ("SET NAMES utf8mb4", "SET autocommit = 1", "USE main"):
            cur.execute(statement)
        cur.execute("SELECT @@version")
        assert cur.fetchone() is not None
        cur.execute("CREATE TABLE t (a INTEGER)")
        cur.execute("SHOW TABLES")
        assert ("t",) in cur.fetchall()
        cur.execute("DESCRIBE t")
        assert cur.fetchone()[:2] == ("a", "int")  # type: ignore[index]  # as MySQL names it
        cur.execute("SHOW DATABASES")
        assert ("main",) in cur.fetchall()
        cur.execute("BEGIN")
        cur.execute("INSERT INTO t VALUES (1)")
        cur.execute("ROLLBACK")
        cur.execute("SELECT count(*) FROM t")
        assert cur.fetchone() == (0,)
        cur.execute("SELECT 41 + 1")
        assert cur.fetchone() == (42,)


def test_errors_come_back_as_mysql_errors(server: Server) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        with pytest.raises(pymysql.err.MySQLError) as info:
            cur.execute("CREATE PIPELINE p AS\nLOAD DATA KAFKA INTO TABLE t")
        assert "KAFKA address" in str(info.value) and "line 2, column 17" in str(info.value)
        with pytest.raises(pymysql.err.MySQLError, match="missing_table"):
            cur.execute("SELECT * FROM missing_table")
        cur.execute("SELECT 1")  # the connection is still usable
        assert cur.fetchone() == (1,)


def test_a_wrong_password_is_refused(server: Server) -> None:
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=server.port, user="root", password="wrong")
    with pytest.raises(pymysql.err.OperationalError, match="Access denied"):
        pymysql.connect(host="127.0.0.1", port=server.port, user="nobody", password=PASSWORD)


def test_a_pipeline_created_and_watched_over_the_wire(
    server: Server, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    name = topic(2)
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE r (id INTEGER, v DOUBLE)")
        cur.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            'CREDENTIALS \'{"sasl.password": "hunter2"}\' '
            "INTO TABLE r FORMAT JSON (id <- id, v <- v)"
        )
        cur.execute("START PIPELINE p")
        produce(broker.bootstrap, name, [json.dumps({"id": i, "v": i / 2}).encode()
                                         for i in range(500)], partitions=2)  # fmt: skip

        def loaded() -> int:
            cur.execute("SELECT count(*) FROM r")
            row = cur.fetchone()
            return int(row[0]) if row else 0

        wait_for(lambda: loaded() == 500, message="rows over the wire")
        cur.execute(
            "SELECT sum(ROWS_STREAMED) FROM information_schema.PIPELINES_BATCHES_SUMMARY "
            "WHERE PIPELINE_NAME = 'p'"
        )
        assert cur.fetchone() == (Decimal(500),)
        cur.execute("SHOW CREATE PIPELINE p")
        text = cur.fetchone()[1]  # type: ignore[index]
        cur.execute("SELECT CONFIG_JSON FROM information_schema.PIPELINES")
        config = cur.fetchone()[0]  # type: ignore[index]
        assert "hunter2" not in text and "hunter2" not in config
        cur.execute("STOP PIPELINE p")
        cur.execute("SHOW PIPELINES")
        assert cur.fetchall() == (("p", "Stopped", None),)


@pytest.mark.skipif(
    shutil.which("mariadb") is None, reason="mariadb client not installed (make tools)"
)
def test_the_mariadb_command_line_client(
    server: Server, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    def mariadb(sql: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["mariadb", "-h", "127.0.0.1", "-P", str(server.port), "-u", "root",
             f"-p{PASSWORD}", "--batch", "-e", sql],
            capture_output=True, text=True, timeout=30,
        )  # fmt: skip

    out = mariadb("CREATE TABLE m (a INTEGER, s VARCHAR); INSERT INTO m VALUES (1, 'ok'); "
                  "SELECT * FROM m; SHOW PIPELINES;")  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[:2] == ["a\ts", "1\tok"]
    bad = mariadb("SELEC 1")
    assert bad.returncode != 0 and "ERROR" in bad.stderr

    name = topic(2)
    created = mariadb(
        "CREATE TABLE ev (id INTEGER); "
        f"CREATE PIPELINE ev AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
        "INTO TABLE ev FORMAT JSON (id <- id); START PIPELINE ev;"
    )
    assert created.returncode == 0, created.stderr
    produce(broker.bootstrap, name, [b'{"id": %d}' % i for i in range(300)], partitions=2)
    wait_for(lambda: mariadb("SELECT count(*) FROM ev").stdout.split() == ["count_star()", "300"])
    summary = mariadb(
        "SELECT sum(ROWS_STREAMED) AS n FROM information_schema.PIPELINES_BATCHES_SUMMARY "
        "WHERE PIPELINE_NAME = 'ev'; STOP PIPELINE ev;"
    )
    assert summary.returncode == 0, summary.stderr
    assert summary.stdout.split() == ["n", "300"]


def test_sluice_sql_connects_to_a_running_server(server: Server) -> None:
    sluice_sql = [sys.executable, "-m", "sluice.cli", "sql"]
    remote = subprocess.run(
        [*sluice_sql, "--host", "127.0.0.1", "--port", str(server.port), "--password", PASSWORD,
         "-e", "CREATE TABLE x (a INTEGER); INSERT INTO x VALUES (5); SELECT a FROM x"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert remote.returncode == 0, remote.stderr
    assert "| 5 |" in remote.stdout
    local = subprocess.run(
        [*sluice_sql, "--db", server.db_path, "-e", "SELECT 1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert local.returncode == 1
    assert f"in use by process {server.process.pid}" in local.stderr
    assert "sluice sql --host 127.0.0.1 --port 3307" in local.stderr


def test_a_long_query_does_not_block_other_connections(server: Server) -> None:
    """A query still streaming its result (its client read one row and stopped reading, so it
    cannot end before the others) holds its own session only: every other connection is
    answered meanwhile."""
    slow = server.connect(cursorclass=pymysql.cursors.SSCursor)
    try:
        cur = slow.cursor()  # not closed: closing would read the rest of the result
        cur.execute("SELECT range FROM range(1000000000)")
        assert cur.fetchone() == (0,)
        for _ in range(8):  # eight quick questions, each on a connection of its own
            with server.connect() as conn, conn.cursor() as quick:
                quick.execute("SELECT 1")
                assert quick.fetchone() == (1,)
        assert cur.fetchone() == (1,)  # the long query is still there, streaming
    finally:
        result = getattr(slow, "_result", None)
        if result is not None:  # abandon the rest (pymysql would read all of it first)
            result.unbuffered_active = False
        slow.close()  # hang up in the middle of its result: the server stops that query
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute("SELECT 2")
        assert cur.fetchone() == (2,)


def test_serve_on_postgresql_while_any_postgresql_client_reads(
    pg_url: str, broker: LocalBroker, topic: Callable[..., str]
) -> None:
    """`sluice serve --store postgresql://…`: the pipeline's table is an ordinary PostgreSQL
    table that psycopg reads while the pipeline fills it; the SQL sent is PostgreSQL's."""
    name = topic(2)
    with serving(pg_url) as server, server.connect() as conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE r (id INTEGER PRIMARY KEY, v DOUBLE PRECISION)")
        cur.execute(
            f"CREATE PIPELINE p AS LOAD DATA KAFKA '{broker.bootstrap}/{name}' "
            "INTO TABLE r FORMAT JSON (id <- id, v <- v)"
        )
        cur.execute("START PIPELINE p")
        with psycopg.connect(pg_url, autocommit=True) as pg:
            for start in (0, 500):
                produce(broker.bootstrap, name, [json.dumps({"id": i, "v": i / 2}).encode()
                                                 for i in range(start, start + 500)],
                        partitions=2)  # fmt: skip
                wait_for(
                    lambda n=start + 500: pg.execute("SELECT count(*) FROM r").fetchone() == (n,),
                    message="rows, read by a PostgreSQL client",
                )
            assert pg.execute("SELECT sum(v) FROM r").fetchone() == (sum(range(1000)) / 2,)
            assert pg.execute(
                "SELECT sum(rows_streamed) FROM sluice.batches WHERE pipeline = 'p'"
            ).fetchone() == (1000,)
        cur.execute("SHOW PIPELINES")
        ((pipeline, state, holder),) = cur.fetchall()
        assert (pipeline, state) == ("p", "Running")
        assert holder == f"{socket.gethostname()}:{server.process.pid}"
        cur.execute("SELECT count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY")
        assert cur.fetchone()[0] > 0  # type: ignore[index]
