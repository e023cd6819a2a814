"""DuckDB: the embedded store. The catalog lives in schema ``sluice`` of the database file."""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sluice.errors import (
    DatabaseLockedError,
    InvalidStatementError,
    StoreError,
    TerminalError,
    TransientStoreError,
)
from sluice.result import Result
from sluice.stores.base import route_views
from sluice.stores.catalog import CATALOG, VIEWS
from sluice.stores.sqlstore import SQLStore
from sluice.vocab import BATCH_RELATION, TableInfo

# Errors a particular row causes (as opposed to a missing table, a bad SET expression, ...).
_ROW_LEVEL = (
    duckdb.ConstraintException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)
# Errors that may clear by themselves: a write conflict, a full disk, memory.
_TRANSIENT = (duckdb.TransactionException, duckdb.IOException, duckdb.OutOfMemoryException)
_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")
_CHECKPOINT = re.compile(r"\s*(FORCE\s+)?CHECKPOINT\s*;?\s*$", re.I)
CHECKPOINT_WAIT = 10.0  # seconds a CHECKPOINT waits for Sluice's own writes to end


def _connect(path: str) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path)
    except duckdb.IOException as exc:
        m = _LOCK.search(str(exc))
        if m is None:
            raise StoreError(f"cannot open {path}: {exc}") from exc
        pid = int(m.group(2))
        raise DatabaseLockedError(
            f"database {path} is in use by process {pid} ({_command_line(pid) or m.group(1)}). "
            "A DuckDB file is opened by one process at a time: if it is `sluice serve`, connect "
            "to it with `sluice sql --host 127.0.0.1 --port 3307` (its --mysql-port); else run "
            "your statements in that process, or stop it first (pipelines it left Running "
            "resume when the file is opened again)."
        ) from exc


def _command_line(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace").strip()


class DuckDBStore(SQLStore):
    driver_error = duckdb.Error

    name = "duckdb"

    def __init__(self, path: str = ":memory:", *, _con: duckdb.DuckDBPyConnection | None = None):
        super().__init__()
        self.path = path
        self._con = _con if _con is not None else _connect(path)
        self._open: _RowStream | None = None
        self._staged = False  # a batch is registered as BATCH_RELATION
        if _con is None:
            try:
                self._conn().execute(CATALOG)
                for name, body in VIEWS.items():
                    self._conn().execute(f'CREATE OR REPLACE VIEW sluice."{name}" AS {body}')
            except BaseException:
                self._con.close()  # a file that cannot take the catalog is not left open
                raise

    def _conn(self) -> duckdb.DuckDBPyConnection:
        """The connection, once any query result still streaming from it is read to the end
        (into memory), so that running a statement never cuts an earlier result short."""
        if self._open is not None:
            self._open.drain()
            self._open = None
        return self._con

    def fork(self) -> DuckDBStore:
        return DuckDBStore(self.path, _con=self._conn().cursor())

    def close(self) -> None:
        self._open = None
        self._con.close()

    # -- user SQL -----------------------------------------------------------------------------

    def _checkpoint(self, sql: str) -> Result:
        """CHECKPOINT, once the short write transactions of the pipelines and of the lag
        monitor let it (DuckDB refuses it while any is open), for at most CHECKPOINT_WAIT s."""
        deadline = time.monotonic() + CHECKPOINT_WAIT
        while True:
            try:
                self._conn().execute(sql).fetchall()
                return Result()
            except duckdb.TransactionException as exc:
                if "other write transactions" not in str(exc) or time.monotonic() > deadline:
                    raise StoreError(str(exc)) from exc
                time.sleep(0.05)
            except duckdb.Error as exc:
                raise StoreError(str(exc)) from exc

    def execute(self, sql: str) -> Result:
        if _CHECKPOINT.match(sql):
            return self._checkpoint(sql)
        sql = route_views(sql, "sluice")
        con = self._conn()
        try:
            statements = con.extract_statements(sql)  # parsed once, run as parsed
            if not statements:
                return Result()
            for statement in statements[:-1]:
                con.execute(statement).fetchall()
            last = statements[-1]
            is_query = last.expected_result_type == [duckdb.ExpectedResultType.QUERY_RESULT]
            cur = con.execute(last)
        except (duckdb.ParserException, duckdb.BinderException, duckdb.CatalogException) as exc:
            raise InvalidStatementError(str(exc)) from exc
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from exc
        if not is_query:
            rowcount = cur.rowcount
            cur.fetchall()
            return Result(rowcount=rowcount)
        description = cur.description or []
        self._open = _RowStream(cur)
        return Result(
            [d[0] for d in description],
            self._open,
            types=[str(d[1]) for d in description],
        )

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        self._conn().executemany(sql, rows)

    def _begin(self, rows: pa.Table | None) -> None:
        con = self._conn()
        if rows is not None:
            con.register(BATCH_RELATION, rows)  # scanned in place, not copied
            self._staged = True
        con.execute("BEGIN")

    def _end(self, *, commit: bool) -> None:
        try:
            self._con.execute("COMMIT" if commit else "ROLLBACK")
        finally:
            if self._staged:
                self._staged = False
                self._con.unregister(BATCH_RELATION)

    def _translate(self, exc: Exception, pipeline: str, batch_id: int | None) -> StoreError:
        what = f"batch {batch_id}" if batch_id is not None else "a statement"
        message = f"the store refused {what}: {exc}"
        if isinstance(exc, _TRANSIENT):
            return TransientStoreError(message, pipeline=pipeline, batch_id=batch_id)
        return StoreError(message, pipeline=pipeline, batch_id=batch_id)

    def _row_level(self, exc: Exception) -> bool:
        return isinstance(exc, _ROW_LEVEL)

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, duckdb.ConstraintException)

    def _try_cast(self, expr: str, sql_type: str) -> str:
        return f"TRY_CAST({expr} AS {sql_type})"

    def table_info(self, table: str) -> TableInfo:
        schema, _, name = table.rpartition(".")
        schema_filter = "lower(schema_name) = lower(?)" if schema else "schema_name = 'main'"
        params = [schema, name] if schema else [name]
        columns = self._run(
            f"SELECT column_name, data_type FROM duckdb_columns() WHERE {schema_filter} "
            "AND lower(table_name) = lower(?) AND database_name = current_database() "
            "ORDER BY column_index",
            params,
        )
        if not columns:
            raise TerminalError(f"table {table} does not exist; create it before the pipeline")
        keys = self._run(
            "SELECT constraint_type, constraint_column_names FROM duckdb_constraints() "
            f"WHERE {schema_filter} AND lower(table_name) = lower(?) "
            "AND database_name = current_database() "
            "AND constraint_type IN ('PRIMARY KEY', 'UNIQUE') "
            "ORDER BY constraint_type = 'UNIQUE', constraint_index",
            params,
        )
        key = tuple(keys[0][1]) if keys else ()
        return TableInfo(table, tuple((c, t) for c, t in columns), key)


class _RowStream:
    """A query's rows, fetched from DuckDB in chunks as they are read."""

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur = cur
        self._rows: deque[tuple[Any, ...]] = deque()
        self._done = False

    def __iter__(self) -> _RowStream:
        return self

    def __next__(self) -> tuple[Any, ...]:
        if not self._rows:
            chunk = [] if self._done else self._cur.fetchmany(2048)
            if not chunk:
                self._done = True
                raise StopIteration
            self._rows.extend(chunk)
        return self._rows.popleft()

    def drain(self) -> None:
        if not self._done:
            self._rows.extend(self._cur.fetchall())
            self._done = True
