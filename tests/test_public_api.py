import sluice


def test_public_names_are_pinned() -> None:
    assert sorted(sluice.__all__) == [
        "CatalogError",
        "Connection",
        "DatabaseLockedError",
        "NotSupportedError",
        "ParseError",
        "REJECT_COLUMN",
        "Result",
        "SluiceError",
        "TerminalError",
        "TransformError",
        "TransientError",
        "__version__",
        "connect",
        "reject",
    ]


def test_embedded_api_passes_plain_sql_to_duckdb() -> None:
    with sluice.connect() as db:
        assert db.execute("CREATE TABLE t (a INT, b VARCHAR)").rowcount == -1
        assert db.execute("INSERT INTO t VALUES (1, 'x'), (2, 'y')").rowcount == 2
        result = db.execute("SELECT a, b FROM t ORDER BY a")
        assert result.columns == ["a", "b"]
        assert result.rowcount == -1
        assert result.fetchone() == (1, "x")
        assert result.fetchall() == [(2, "y")]
        assert db.execute("UPDATE t SET b = 'z' WHERE a = 2").rowcount == 1
        db.execute("BEGIN; DELETE FROM t; ROLLBACK")
        assert db.execute("SELECT count(*) FROM t").fetchall() == [(2,)]


def test_a_result_stays_whole_when_another_statement_runs_first() -> None:
    with sluice.connect() as db:
        first = db.execute("SELECT * FROM range(5000)")
        assert first.fetchone() == (0,)
        assert db.execute("SELECT 42").fetchall() == [(42,)]
        assert first.fetchall() == [(i,) for i in range(1, 5000)]


def test_cursor_opens_a_session_with_its_own_transaction(tmp_path: object) -> None:
    with sluice.connect() as db:
        db.execute("CREATE TABLE t (a INT)")
        other = db.cursor()
        other.execute("BEGIN")
        other.execute("INSERT INTO t VALUES (1)")
        assert db.execute("SELECT count(*) FROM t").fetchall() == [(0,)]  # not committed yet
        other.execute("COMMIT")
        assert db.execute("SELECT count(*) FROM t").fetchall() == [(1,)]
        assert other.execute("SHOW PIPELINES").fetchall() == []
        other.close()
