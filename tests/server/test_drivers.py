"""The tools people already use, against a real `sluice serve`: JDBC (MariaDB Connector/J),
SQLAlchemy with PyMySQL and with mysqlclient (pool, inspect(), pandas), mysql-connector-python
with plain and prepared cursors, and MySQL's dialect translated for each store."""

from __future__ import annotations

import datetime
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import mysql.connector
import pandas as pd
import pymysql
import pytest
import sqlalchemy as sa

from sluice.testing import LocalBroker, produce
from tests.server.conftest import PASSWORD, Server, serving

JAR = Path("/usr/share/java/mariadb-java-client.jar")
JDBC_CLIENT = Path(__file__).parent / "jdbc" / "JdbcClient.java"


@pytest.fixture
def store_server(database: str) -> Iterator[Server]:
    """`sluice serve` on each store in turn."""
    with serving(database) as running:
        yield running


def readings(server: Server) -> None:
    with server.connect() as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TABLE readings (id INTEGER PRIMARY KEY, name VARCHAR(20) NOT NULL, "
            "v DOUBLE, at TIMESTAMP)"
        )
        cur.execute(
            "INSERT INTO readings VALUES (1, 'drill-1', 0.5, '2026-12-01 10:00:00'), "
            "(2, 'drill-2', 1.5, '2026-12-01 11:30:00'), (3, 'drill-3', NULL, NULL)"
        )


# (MySQL's statement, the row it returns) — the same on both stores.
CONSTRUCTS = [
    ("SELECT `id`, `name` FROM `readings` ORDER BY `id` LIMIT 1, 1", (2, "drill-2")),
    ("SELECT DATE_FORMAT(`at`, '%Y-%m-%d %H:%i') FROM readings WHERE id = 2",
     ("2026-12-01 11:30",)),
    ("SELECT IFNULL(v, -1) FROM readings WHERE id = 3", (-1,)),
    ("SELECT CAST(v AS SIGNED), CAST(id AS UNSIGNED), CAST(id AS CHAR) FROM readings "
     "WHERE id = 2", (2, 2, "2")),
    ("SELECT CURDATE() = CURRENT_DATE, NOW() IS NOT NULL", (1, 1)),
    ("SELECT CONCAT(name, '/', id), CONCAT(name, NULL) FROM readings WHERE id = 1",
     ("drill-1/1", None)),
    ("SELECT GROUP_CONCAT(name ORDER BY id SEPARATOR ';') FROM readings",
     ("drill-1;drill-2;drill-3",)),
    ("SELECT STR_TO_DATE('2026-12-07', '%Y-%m-%d')", (datetime.date(2026, 12, 7),)),
    ("SELECT UNIX_TIMESTAMP('2026-12-01 00:00:00'), FROM_UNIXTIME(0) IS NOT NULL",
     (1796083200, 1)),
    ("SELECT IF(v > 1, 'hot', 'cold') FROM readings WHERE id = 1", ("cold",)),
    ("SELECT 'it\\'s', \"double-quoted\"", ("it's", "double-quoted")),
]  # fmt: skip


def test_mysql_dialect_on_both_stores(store_server: Server) -> None:
    readings(store_server)
    with store_server.connect() as conn, conn.cursor() as cur:
        for sql, want in CONSTRUCTS:
            cur.execute(sql)
            got = cur.fetchone()
            assert got is not None, sql
            got = tuple(int(g) if isinstance(g, (bool, Decimal, float)) else g for g in got)
            assert got == want, sql
        # The store's own SQL still runs as written (DuckDB's or PostgreSQL's cast syntax).
        cur.execute("SELECT id::VARCHAR FROM readings ORDER BY id LIMIT 1")
        assert cur.fetchone() == ("1",)
        # An explicit transaction: a MySQL construct inside it does not end it.
        cur.execute("BEGIN")
        cur.execute("INSERT INTO readings VALUES (4, 'drill-4', 2.5, NULL)")
        cur.execute("SELECT count(*) FROM `readings` LIMIT 0, 10")
        assert cur.fetchone() == (4,)
        cur.execute("ROLLBACK")
        cur.execute("SELECT count(*) FROM readings")
        assert cur.fetchone() == (3,)
        # What cannot be read names what it stumbled on.
        with pytest.raises(pymysql.err.MySQLError, match="NO_SUCH_FUNCTION"):
            cur.execute("SELECT NO_SUCH_FUNCTION(id) FROM readings")


def test_schema_browsing(store_server: Server) -> None:
    readings(store_server)
    schema = "public" if store_server.db_path.startswith("postgresql") else "main"
    with store_server.connect() as conn, conn.cursor() as cur:
        cur.execute("SHOW FULL TABLES")
        assert ("readings", "BASE TABLE") in cur.fetchall()
        # DuckDB keeps no VARCHAR length: its strings are MySQL's longtext.
        text = "varchar(20)" if schema == "public" else "longtext"
        cur.execute("SHOW COLUMNS FROM readings")
        assert [r[:4] for r in cur.fetchall()] == [
            ("id", "int", "NO", "PRI"),
            ("name", text, "NO", ""),
            ("v", "double", "YES", ""),
            ("at", "datetime(6)", "YES", ""),
        ]
        cur.execute("SHOW INDEX FROM readings")
        assert [(r[2], r[4]) for r in cur.fetchall()] == [("PRIMARY", "id")]
        cur.execute("SHOW CREATE TABLE readings")
        name, ddl = cur.fetchone()  # type: ignore[misc]
        assert (
            name == "readings" and "PRIMARY KEY (`id`)" in ddl and f"`name` {text} NOT NULL" in ddl
        )
        cur.execute(
            "SELECT COLUMN_NAME, DATA_TYPE, COLUMN_KEY FROM information_schema.COLUMNS "
            f"WHERE TABLE_SCHEMA = '{schema}' AND TABLE_NAME = 'readings' ORDER BY ORDINAL_POSITION"
        )
        assert cur.fetchall()[:2] == (("id", "int", "PRI"), ("name", text.split("(")[0], ""))
        cur.execute(
            "SELECT k.COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE k "
            "JOIN information_schema.TABLE_CONSTRAINTS c USING (CONSTRAINT_NAME, TABLE_NAME) "
            "WHERE k.TABLE_NAME = 'readings' AND c.CONSTRAINT_TYPE = 'PRIMARY KEY'"
        )
        assert cur.fetchall() == (("id",),)
        cur.execute("SELECT SCHEMA_NAME FROM information_schema.SCHEMATA")
        assert (schema,) in cur.fetchall()
        cur.execute("SHOW COLLATION WHERE Charset = 'utf8mb4' AND Collation = 'utf8mb4_bin'")
        assert [r[:2] for r in cur.fetchall()] == [("utf8mb4_bin", "utf8mb4")]
        cur.execute("SHOW TABLE STATUS LIKE 'read%'")
        assert [r[:2] for r in cur.fetchall()] == [("readings", "Sluice")]
        cur.execute("SHOW CHARACTER SET LIKE 'utf8%'")
        assert {r[0] for r in cur.fetchall()} == {"utf8mb4", "utf8mb3"}
        cur.execute("SELECT @@tx_isolation, @@session.transaction_read_only, @@sql_mode")
        isolation, _, mode = cur.fetchone()  # type: ignore[misc]
        assert isolation == "REPEATABLE-READ" and "ANSI_QUOTES" not in mode
        cur.execute("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
        cur.execute("SELECT @@tx_isolation, @@transaction_isolation")
        assert cur.fetchone() == ("READ-COMMITTED", "READ-COMMITTED")


@pytest.mark.parametrize("driver", ["pymysql", "mysqldb"])
def test_sqlalchemy(server: Server, driver: str) -> None:
    readings(server)
    engine = sa.create_engine(
        f"mysql+{driver}://root:{PASSWORD}@127.0.0.1:{server.port}/main", pool_size=2
    )
    try:
        for _ in range(3):  # checkout and return (each return sends ROLLBACK)
            with engine.connect() as conn:
                assert conn.execute(sa.text("SELECT count(*) FROM readings")).scalar() == 3
        inspector = sa.inspect(engine)
        assert "readings" in inspector.get_table_names()
        columns = {c["name"]: c for c in inspector.get_columns("readings")}
        assert isinstance(columns["id"]["type"], sa.Integer) and not columns["id"]["nullable"]
        assert isinstance(columns["name"]["type"], sa.String)
        assert isinstance(columns["v"]["type"], sa.Float)
        assert isinstance(columns["at"]["type"], sa.DateTime)
        assert inspector.get_pk_constraint("readings")["constrained_columns"] == ["id"]
        frame = pd.read_sql("SELECT id, name, v FROM readings ORDER BY id", engine)
        assert frame["name"].tolist() == ["drill-1", "drill-2", "drill-3"]
        table = sa.Table("readings", sa.MetaData(), autoload_with=engine)
        query = sa.select(table.c.name).where(table.c.v > 1).order_by(table.c.id).limit(5)
        with engine.connect() as conn:
            assert conn.execute(query).scalars().all() == ["drill-2"]
        with pytest.raises(RuntimeError), engine.begin() as conn:  # rolled back
            conn.execute(sa.text("INSERT INTO readings VALUES (9, 'drill-9', 9, NULL)"))
            raise RuntimeError("changed my mind")
        with engine.connect() as conn:
            assert conn.execute(sa.text("SELECT count(*) FROM readings")).scalar() == 3
    finally:
        engine.dispose()


def test_mysql_connector_plain_and_prepared(server: Server) -> None:
    readings(server)
    conn = mysql.connector.connect(
        host="127.0.0.1", port=server.port, user="root", password=PASSWORD, database="main"
    )
    try:
        plain = conn.cursor()
        plain.execute("SELECT name FROM readings WHERE id = %s", (2,))
        assert plain.fetchall() == [("drill-2",)]
        plain.close()
        prepared = conn.cursor(prepared=True)
        prepared.execute("SELECT id, name, v, at FROM readings WHERE id >= ? ORDER BY id", (2,))
        assert prepared.fetchall() == [
            (2, "drill-2", 1.5, datetime.datetime(2026, 12, 1, 11, 30)),
            (3, "drill-3", None, None),
        ]
        prepared.close()
    finally:
        conn.close()


def test_prepared_statements_carry_every_type(server: Server) -> None:
    """The binary protocol's rows (COM_STMT_EXECUTE), for the types of the text protocol's
    round trip (tests/server/test_mysql.py)."""
    with server.connect() as c, c.cursor() as cur:
        cur.execute(
            "CREATE TABLE t (i INTEGER, bi BIGINT, f DOUBLE, d DECIMAL(10, 3), s VARCHAR, "
            "b BOOLEAN, dt DATE, ts TIMESTAMP, tz TIMESTAMPTZ, bl BLOB, l INTEGER[], j JSON, "
            "n INTEGER)"
        )
        cur.execute(
            "INSERT INTO t VALUES (-7, 9007199254740993, 2.5, 12.345, 'héllo ☃', true, "
            "'2026-11-22', '2026-11-22 07:08:09.123456', '2026-11-22 07:08:09+02', "
            "'\\xAA\\xBB'::BLOB, [1, 2], '{\"k\": [1]}', NULL)"
        )
    conn = mysql.connector.connect(
        host="127.0.0.1", port=server.port, user="root", password=PASSWORD, database="main"
    )
    try:
        cur = conn.cursor(prepared=True)
        cur.execute("SELECT * FROM t WHERE i = ? AND s = ?", (-7, "héllo ☃"))
        row = cur.fetchone()
        cur.close()
    finally:
        conn.close()
    assert row is not None
    assert list(row) == [
        -7, 9007199254740993, 2.5, Decimal("12.345"), "héllo ☃", 1,
        datetime.date(2026, 11, 22), datetime.datetime(2026, 11, 22, 7, 8, 9, 123456),
        datetime.datetime(2026, 11, 22, 5, 8, 9), bytearray(b"\xaa\xbb"), "[1, 2]",
        '{"k": [1]}', None,
    ]  # fmt: skip


@pytest.mark.skipif(
    not JAR.exists() or shutil.which("java") is None,
    reason="make test installs Java and Debian's libmariadb-java",
)
def test_jdbc(broker: LocalBroker, topic: Callable[..., str], server: Server) -> None:
    # The topic is made before the server and deleted after it stops (librdkafka 2.16 can
    # crash when a topic is deleted under a consumer, here the lag monitor's).
    readings(server)
    name = topic(1)
    values = [json.dumps({"id": 100 + i, "name": f"drill-{i}", "v": i}).encode() for i in range(5)]
    produce(broker.bootstrap, name, values, partitions=1)
    run = subprocess.run(
        ["java", "-cp", str(JAR), str(JDBC_CLIENT), str(server.port), PASSWORD,
         f"{broker.bootstrap}/{name}"],
        capture_output=True, text=True, timeout=180,
    )  # fmt: skip
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "table readings" in lines
    assert "column id INT 4 NO" in lines and "column v DOUBLE 8 YES" in lines
    assert "column name LONGTEXT -1 NO" in lines  # DuckDB keeps no VARCHAR length
    assert "key id" in lines
    assert "query 3 2.0" in lines
    assert [x for x in lines if x.startswith("prepared")] == [
        "prepared 2 drill-2 1.5",
        "prepared 3 drill-3 0.0",
    ]
    assert "loaded 5" in lines
    assert "pipeline jdbc_p Running" in lines
    assert lines[-1] == "done"
