"""The store's promise, on every store (DuckDB and PostgreSQL, by the `database` fixture):
rows, cursor advance and batch record commit together or not at all."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime

import psycopg
import pyarrow as pa
import pytest

from sluice.errors import CursorConflictError, TerminalError, TransientError
from sluice.plan import LoadPlan, build_plan
from sluice.sql import ast, parse
from sluice.stores import Store, open_store
from sluice.vocab import PartitionProgress


@pytest.fixture
def store(database: str) -> Iterator[Store]:
    opened = open_store(database)
    opened.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR)")
    yield opened
    opened.close()


def plan_for(
    store: Store, sql: str = "CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t (id, v)"
) -> LoadPlan:
    defn = parse(sql)
    assert isinstance(defn, ast.CreatePipeline)
    return build_plan(defn, store.table_info("t"), ["id", "v"], table_sql=store.table_sql("t"))


def batch(ids: range) -> pa.Table:
    return pa.table({"id": [str(i) for i in ids], "v": [f"v{i}" for i in ids]})


def load(store: Store, plan: LoadPlan, rows: pa.Table, start: int | None, end: int) -> int:
    progress = [PartitionProgress("0", start, end, rows.num_rows)]
    return store.load_batch(
        "p", "KAFKA", plan, rows, progress, started=datetime.now(), nbytes=1
    ).rows_loaded


def test_a_moved_cursor_rolls_the_whole_batch_back(store: Store) -> None:
    plan = plan_for(store)
    load(store, plan, batch(range(10)), None, 10)
    assert store.cursors("p") == {"0": 10}
    other = store.fork()  # another writer moves the cursor first
    try:
        load(other, plan, batch(range(10, 15)), 10, 15)
    finally:
        other.close()
    with pytest.raises(CursorConflictError, match="no longer at 10"):
        load(store, plan, batch(range(20, 25)), 10, 15)
    assert store.execute("SELECT count(*), max(id) FROM t").fetchall() == [(15, 14)]
    summary = store.execute(
        "SELECT count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY"
    ).fetchall()
    assert summary == [(2,)]
    with pytest.raises(CursorConflictError):  # a second "new partition" insert also conflicts
        load(store, plan, batch(range(30, 31)), None, 1)
    assert store.cursors("p") == {"0": 15}


def test_a_failing_insert_leaves_cursors_alone(store: Store) -> None:
    plan = plan_for(store)
    bad = pa.table({"id": ["1", "not a number"], "v": ["a", "b"], "__row": pa.array([0, 1])})
    with pytest.raises(TerminalError, match="not a number"):
        load(store, plan, bad, None, 2)
    assert store.cursors("p") == {}
    assert store.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    assert store.type_errors(plan, bad) == [
        (1, "column id: 'not a number' is not a valid " + store.table_info("t").column_type("id"))
    ]  # type: ignore[operator]


def test_values_arrive_as_sent(store: Store) -> None:
    """NULL, empty, multi-byte and long text; the batch's row order for duplicates."""
    plan = plan_for(store, "CREATE PIPELINE p AS LOAD DATA FS '/x' REPLACE INTO TABLE t (id, v)")
    values = [None, "", "ünïcødé ✓ 𝄞", "x" * 100_000, 'it\'s "quoted"\n\ttabbed', "last"]
    rows = pa.table({
        "id": [str(i) for i in range(5)] + ["4"],  # id 4 twice: the later row wins
        "v": values,
        "__row": pa.array(range(6), pa.int64()),
    })  # fmt: skip
    assert load(store, plan, rows, None, 6) == 5
    got = store.execute("SELECT id, v FROM t ORDER BY id").fetchall()
    assert got == [(0, None), (1, ""), (2, values[2]), (3, values[3]), (4, "last")]


def test_upsert_expressions_see_the_stored_row(store: Store) -> None:
    store.execute("ALTER TABLE t ADD COLUMN seen INTEGER DEFAULT 1")
    plan = plan_for(
        store,
        "CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t (id, v) "
        "ON DUPLICATE KEY UPDATE v = concat(v, '+', VALUES(v)), seen = seen + 1",
    )
    rows = pa.table(
        {"id": ["1", "1", "2"], "v": ["a", "b", "c"], "__row": pa.array([0, 1, 2], pa.int64())}
    )
    load(store, plan, rows, None, 3)
    assert store.execute("SELECT id, v, seen FROM t ORDER BY id").fetchall() == [
        (1, "a+b", 2),
        (2, "c", 1),
    ]


def test_a_missing_table_is_a_terminal_error_naming_it(store: Store) -> None:
    with pytest.raises(TerminalError, match="table nope does not exist"):
        store.table_info("nope")
    plan = plan_for(store)
    store.execute("DROP TABLE t")
    with pytest.raises(TerminalError) as failure:
        load(store, plan, batch(range(3)), None, 3)
    assert not isinstance(failure.value, TransientError)
    assert store.cursors("p") == {}


def test_one_connection_at_a_time_holds_a_pipeline(store: Store) -> None:
    with ExitStack() as forks:
        first, second = store.fork(), store.fork()
        forks.callback(lambda: (first.close(), second.close()))
        assert first.claim("p")
        if not store.shared:  # one process per database: nothing to share
            assert second.claim("p")
            return
        assert not second.claim("p") and second.claim("q")
        assert first.claim("p")  # holding it already
        for _ in range(20):  # closing lets go at once: the other's claim right after succeeds
            first.close()
            assert second.claim("p")
            first, second = second, store.fork()
            assert not second.claim("p")


def test_a_lost_connection_is_transient_and_the_next_batch_reconnects(
    store: Store, database: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if store.name != "postgresql":
        pytest.skip("an embedded database has no connection to lose")
    plan = plan_for(store)
    load(store, plan, batch(range(5)), None, 5)
    assert store.claim("p")

    def cut() -> None:  # every session of the database, as a server restart would
        with psycopg.connect(database, autocommit=True) as admin:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )

    advance = store._advance_cursors  # type: ignore[attr-defined]
    monkeypatch.setattr(store, "_advance_cursors", lambda *a: (cut(), advance(*a)))
    with pytest.raises(TransientError, match="connection"):  # cut inside the batch
        load(store, plan, batch(range(5, 10)), 5, 10)
    monkeypatch.undo()
    assert load(store, plan, batch(range(5, 10)), 5, 10) == 5  # on a new connection
    cut()  # an idle connection cut: the next statement finds out and reconnects
    assert store.claim("p")  # claimed again, on the new connection
    assert store.execute("SELECT count(*) FROM t").fetchall() == [(10,)]
    assert store.cursors("p") == {"0": 10}


def test_batch_records_are_trimmed_per_pipeline_by_count(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two pipelines take turns (so their batch ids interleave): each keeps its newest
    BATCHES_KEPT records, and never more than TRIM_EVERY beyond."""
    import sluice.stores.sqlstore as sqlstore

    monkeypatch.setattr(sqlstore, "BATCHES_KEPT", 5)
    monkeypatch.setattr(sqlstore, "TRIM_EVERY", 3)
    plan = plan_for(store)
    counts: dict[str, list[int]] = {"p": [], "q": []}
    for i in range(30):
        for pipeline in ("p", "q"):
            progress = [PartitionProgress("0", i or None, i + 1, 0)]
            store.load_batch(
                pipeline, "KAFKA", plan, batch(range(0)), progress, started=datetime.now(),
                nbytes=0,
            )  # fmt: skip
            (n,) = store.execute(
                f"SELECT count(*) FROM sluice.batches WHERE pipeline = '{pipeline}'"
            ).fetchone()
            counts[pipeline].append(int(n))
    for pipeline, seen in counts.items():
        assert max(seen) <= 5 + 3 and seen[-1] >= 5, (pipeline, seen)
        kept = store.execute(
            f"SELECT BATCH_EARLIEST_OFFSET FROM information_schema.PIPELINES_BATCHES "
            f"WHERE PIPELINE_NAME = '{pipeline}' ORDER BY BATCH_ID"
        ).fetchall()
        assert [o for (o,) in kept][-5:] == [25, 26, 27, 28, 29]  # the newest are kept
