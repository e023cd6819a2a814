"""The store's promise: rows, cursor advance and batch record commit together or not at all."""

from __future__ import annotations

from datetime import datetime

import pyarrow as pa
import pytest

from sluice.errors import CursorConflictError, TerminalError
from sluice.sql import ast, parse
from sluice.stores.base import PartitionProgress
from sluice.stores.duckdb import DuckDBStore
from sluice.stores.loadsql import build_plan


def make(db_path: str) -> tuple[DuckDBStore, ast.CreatePipeline]:
    store = DuckDBStore(db_path)
    store.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, v VARCHAR)")
    defn = parse("CREATE PIPELINE p AS LOAD DATA FS '/x' INTO TABLE t (id, v)")
    assert isinstance(defn, ast.CreatePipeline)
    return store, defn


def batch(ids: range) -> pa.Table:
    return pa.table({"id": [str(i) for i in ids], "v": [f"v{i}" for i in ids]})


def test_a_moved_cursor_rolls_the_whole_batch_back(db_path: str) -> None:
    store, defn = make(db_path)
    plan = build_plan(defn, store.table_info("t"), ["id", "v"], table_sql='"t"')
    load = store.load_batch
    load("p", "KAFKA", plan, batch(range(10)), [PartitionProgress("0", None, 10, 10)],
         started=datetime.now(), nbytes=1)  # fmt: skip
    assert store.cursors("p") == {"0": 10}
    other = store.fork()  # another writer moves the cursor first
    load_other = other.load_batch
    load_other("p", "KAFKA", plan, batch(range(10, 15)), [PartitionProgress("0", 10, 15, 5)],
               started=datetime.now(), nbytes=1)  # fmt: skip
    with pytest.raises(CursorConflictError, match="no longer at 10"):
        load("p", "KAFKA", plan, batch(range(20, 25)), [PartitionProgress("0", 10, 15, 5)],
             started=datetime.now(), nbytes=1)  # fmt: skip
    assert store.execute("SELECT count(*), max(id) FROM t").fetchall() == [(15, 14)]
    summary = store.execute(
        "SELECT count(*) FROM information_schema.PIPELINES_BATCHES_SUMMARY"
    ).fetchall()
    assert summary == [(2,)]
    with pytest.raises(CursorConflictError):  # a second "new partition" insert also conflicts
        load("p", "KAFKA", plan, batch(range(30, 31)), [PartitionProgress("0", None, 1, 1)],
             started=datetime.now(), nbytes=1)  # fmt: skip
    assert store.cursors("p") == {"0": 15}
    other.close()
    store.close()


def test_a_failing_insert_leaves_cursors_alone(db_path: str) -> None:
    store, defn = make(db_path)
    plan = build_plan(defn, store.table_info("t"), ["id", "v"], table_sql='"t"')
    bad = pa.table({"id": ["1", "not a number"], "v": ["a", "b"]})
    with pytest.raises(TerminalError, match="not a number"):
        store.load_batch("p", "KAFKA", plan, bad, [PartitionProgress("0", None, 2, 2)],
                         started=datetime.now(), nbytes=1)  # fmt: skip
    assert store.cursors("p") == {}
    assert store.execute("SELECT count(*) FROM t").fetchall() == [(0,)]
    store.close()
