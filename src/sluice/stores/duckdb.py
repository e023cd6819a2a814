"""DuckDB: the embedded store. The catalog lives in schema ``sluice`` of the database file."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from sluice.errors import (
    CursorConflictError,
    DatabaseLockedError,
    StoreError,
    TerminalError,
    TransientError,
)
from sluice.result import Result
from sluice.sql.expr import quote
from sluice.stores.base import (
    BatchOutcome,
    PartitionProgress,
    PipelineRecord,
    Rejected,
    Store,
    route_views,
)
from sluice.stores.duckdb_catalog import BATCHES_KEPT, CATALOG, VIEWS
from sluice.stores.loadsql import BATCH_RELATION, LoadPlan, TableInfo

# Errors a particular row causes (as opposed to a missing table, a bad SET expression, ...).
_ROW_LEVEL = (
    duckdb.ConstraintException,
    duckdb.ConversionException,
    duckdb.InvalidInputException,
    duckdb.OutOfRangeException,
)
_LOCK = re.compile(r"Conflicting lock is held in (.*?) \(PID (\d+)\)")


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


class DuckDBStore(Store):
    name = "duckdb"

    def __init__(self, path: str = ":memory:", *, _con: duckdb.DuckDBPyConnection | None = None):
        self.path = path
        self._con = _con if _con is not None else _connect(path)
        self._open: _RowStream | None = None
        if _con is None:
            self._conn().execute(CATALOG)
            for name, body in VIEWS.items():
                self._conn().execute(f'CREATE OR REPLACE VIEW sluice."{name}" AS {body}')

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

    def _run(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        return self._conn().execute(sql, params).fetchall()

    # -- user SQL -----------------------------------------------------------------------------

    def execute(self, sql: str) -> Result:
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

    # -- catalog ------------------------------------------------------------------------------

    def pipelines(self) -> list[PipelineRecord]:
        rows = self._run(
            "SELECT name, definition, config_json, state, created, altered, error "
            "FROM sluice.definitions ORDER BY name"
        )
        return [PipelineRecord(*row) for row in rows]

    def definition(self, name: str) -> str | None:
        rows = self._run("SELECT definition FROM sluice.definitions WHERE name = ?", [name])
        return str(rows[0][0]) if rows else None

    def save_pipeline(self, record: PipelineRecord, *, replace: bool) -> None:
        conflict = (
            "ON CONFLICT (name) DO UPDATE SET definition = EXCLUDED.definition, "
            "config_json = EXCLUDED.config_json, altered = EXCLUDED.altered"
            if replace
            else ""
        )
        self._run(
            "INSERT INTO sluice.definitions VALUES (?, ?, ?, ?, now(), now(), NULL) " + conflict,
            [record.name, record.definition, record.config_json, record.state],
        )

    def set_state(self, name: str, state: str, error: str | None = None) -> None:
        self._run(
            "UPDATE sluice.definitions SET state = ?, error = ? WHERE name = ?",
            [state, error, name],
        )

    def drop_pipeline(self, name: str) -> None:
        self._run("BEGIN")
        try:
            for table in ("definitions", "cursors", "batches", "batch_partitions", "errors"):
                column = "name" if table == "definitions" else "pipeline"
                self._run(f"DELETE FROM sluice.{table} WHERE {column} = ?", [name])
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise

    def cursors(self, name: str) -> dict[str, int]:
        rows = self._run(
            'SELECT partition, "offset" FROM sluice.cursors WHERE pipeline = ?', [name]
        )
        return {p: int(o) for p, o in rows}

    def set_cursors(self, name: str, source_type: str, offsets: Mapping[str, int]) -> None:
        self._run("BEGIN")
        try:
            for partition, offset in offsets.items():
                self._run(
                    'INSERT INTO sluice.cursors (pipeline, source_type, partition, "offset", '
                    "updated) VALUES (?, ?, ?, ?, now()) ON CONFLICT (pipeline, partition) "
                    'DO UPDATE SET "offset" = EXCLUDED."offset", updated = now()',
                    [name, source_type, partition, offset],
                )
            self._run("COMMIT")
        except BaseException:
            self._run("ROLLBACK")
            raise

    def table_sql(self, table: str) -> str:
        return ".".join(quote(part) for part in table.split("."))

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

    # -- the batch ----------------------------------------------------------------------------

    def load_batch(
        self,
        pipeline: str,
        source_type: str,
        plan: LoadPlan,
        rows: pa.Table,
        progress: Sequence[PartitionProgress],
        *,
        started: datetime,
        nbytes: int,
        rejected: Sequence[Rejected] = (),
        state: str = "Succeeded",
    ) -> BatchOutcome:
        batch_id = int(self._run("SELECT nextval('sluice.batch_ids')")[0][0])
        with self._transaction(rows, pipeline, batch_id):
            loaded = plan.run(self._run) if rows.num_rows else 0
            self._advance_cursors(pipeline, source_type, progress, batch_id)
            self._record_batch(
                pipeline, batch_id, progress, rows.num_rows, loaded, started, nbytes, state
            )
            self._record_rejected(pipeline, batch_id, rejected)
        return BatchOutcome(batch_id, loaded)

    @contextmanager
    def _transaction(
        self, rows: pa.Table, pipeline: str, batch_id: int | None
    ) -> Iterator[duckdb.DuckDBPyConnection]:
        """One transaction with ``rows`` readable as BATCH_RELATION; rolled back on any error,
        which is translated into Sluice's errors."""
        con = self._conn()
        con.register(BATCH_RELATION, rows)
        con.execute("BEGIN")
        try:
            yield con
            con.execute("COMMIT")
        except BaseException as exc:
            con.execute("ROLLBACK")
            if isinstance(exc, duckdb.Error):
                raise _translate(exc, pipeline, batch_id) from exc
            raise
        finally:
            con.unregister(BATCH_RELATION)

    def _advance_cursors(
        self, pipeline: str, source_type: str, progress: Sequence[PartitionProgress], batch: int
    ) -> None:
        for p in progress:
            if p.start is None:
                try:
                    self._run(
                        "INSERT INTO sluice.cursors VALUES (?, ?, ?, ?, ?, ?, now())",
                        [pipeline, source_type, p.partition, p.end, p.latest, p.size],
                    )
                except duckdb.ConstraintException as exc:
                    raise self._conflict(pipeline, batch, p) from exc
                continue
            changed = self._run(
                'UPDATE sluice.cursors SET "offset" = ?, latest_offset = ?, '
                "file_size = coalesce(?, file_size), updated = now() "
                'WHERE pipeline = ? AND partition = ? AND "offset" = ?',
                [p.end, p.latest, p.size, pipeline, p.partition, p.start],
            )[0][0]
            if changed != 1:
                raise self._conflict(pipeline, batch, p)

    @staticmethod
    def _conflict(pipeline: str, batch: int, p: PartitionProgress) -> CursorConflictError:
        return CursorConflictError(
            f"pipeline {pipeline}: the cursor of partition {p.partition} is no longer at "
            f"{p.start}; another writer loaded it. The batch was rolled back.",
            pipeline=pipeline,
            batch_id=batch,
        )

    def _record_batch(
        self,
        pipeline: str,
        batch_id: int,
        progress: Sequence[PartitionProgress],
        rows: int,
        loaded: int,
        started: datetime,
        nbytes: int,
        state: str,
    ) -> None:
        seconds = (datetime.now() - started).total_seconds()
        self._run(
            "INSERT INTO sluice.batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [pipeline, batch_id, state, started, seconds, rows, loaded, nbytes, len(progress)],
        )
        self._conn().executemany(
            "INSERT INTO sluice.batch_partitions VALUES (?, ?, ?, ?, ?, ?, ?)",
            [[pipeline, batch_id, p.partition, p.start, p.end, p.rows, state] for p in progress],
        )
        if batch_id % 1000 == 0:
            for table in ("batches", "batch_partitions"):
                self._run(
                    f"DELETE FROM sluice.{table} WHERE pipeline = ? AND batch_id < ?",
                    [pipeline, batch_id - BATCHES_KEPT],
                )

    def _record_rejected(
        self, pipeline: str, batch_id: int | None, rejected: Sequence[Rejected]
    ) -> None:
        if rejected:
            self._conn().executemany(
                "INSERT INTO sluice.errors VALUES (nextval('sluice.error_ids'), ?, ?, 'Error', "
                "?, ?, ?, ?, ?, ?, NULL, now())",
                [
                    [pipeline, batch_id, r.kind, r.reason, r.partition, r.offset, r.raw,
                     _printable(r.raw)]
                    for r in rejected
                ],
            )  # fmt: skip

    def trial_load(self, plan: LoadPlan, rows: pa.Table) -> str | None:
        con = self._conn()
        con.register(BATCH_RELATION, rows)
        con.execute("BEGIN")
        try:
            plan.run(self._run)
            return None
        except _ROW_LEVEL as exc:
            return str(exc).split("\n")[0]
        except duckdb.Error as exc:
            raise _translate(exc, "", None) from exc
        finally:
            con.execute("ROLLBACK")
            con.unregister(BATCH_RELATION)

    def type_errors(self, plan: LoadPlan, rows: pa.Table) -> list[tuple[int, str]]:
        con = self._conn()
        con.register(BATCH_RELATION, rows)
        try:
            found = self._run(plan.type_check(lambda expr, t: f"TRY_CAST({expr} AS {t})"))
        finally:
            con.unregister(BATCH_RELATION)
        return [(int(row), str(reason)) for row, reason in found]

    def is_duplicate_key(self, reason: str) -> bool:
        return "duplicate key" in reason.lower()

    def rejected_records(self, pipeline: str, where: str | None) -> list[tuple[int, Rejected]]:
        condition = route_views(where, "sluice") if where else "true"
        try:
            rows = self._run(
                'SELECT error_id, error_kind, message, partition, "offset", raw '
                "FROM sluice.errors WHERE pipeline = ? AND raw IS NOT NULL AND error_id IN "
                f'(SELECT ERROR_ID FROM sluice."PIPELINES_ERRORS" WHERE {condition}) '
                "ORDER BY error_id",
                [pipeline],
            )
        except duckdb.Error as exc:
            raise StoreError(f"bad REPLAY ERRORS condition: {exc}") from exc
        return [(int(i), Rejected(k, m, p, o, bytes(r))) for i, k, m, p, o, r in rows]

    def replay(
        self,
        pipeline: str,
        plan: LoadPlan,
        rows: pa.Table,
        replayed: Sequence[int],
        still_failing: Sequence[tuple[int, str]],
    ) -> int:
        with self._transaction(rows, pipeline, None) as con:
            loaded = plan.run(self._run) if rows.num_rows else 0
            if replayed:
                con.executemany(
                    "DELETE FROM sluice.errors WHERE error_id = ?", [[i] for i in replayed]
                )
            if still_failing:
                con.executemany(
                    "UPDATE sluice.errors SET message = ?, time = now() WHERE error_id = ?",
                    [[reason, i] for i, reason in still_failing],
                )
        return loaded

    def clear_errors(self, pipeline: str | None) -> int:
        if pipeline is None:
            return _count_of(self._run("DELETE FROM sluice.errors"))
        return _count_of(self._run("DELETE FROM sluice.errors WHERE pipeline = ?", [pipeline]))

    def preview(self, plan: LoadPlan, rows: pa.Table, limit: int | None) -> Result:
        cols = ", ".join(quote(c) for c in plan.columns)
        limit_sql = f" LIMIT {int(limit)}" if limit is not None else ""
        self._conn().register(BATCH_RELATION, rows)
        try:
            cur = self._conn().execute(f"SELECT {cols} FROM ({plan.select}) AS r{limit_sql}")
            return Result(list(plan.columns), cur.fetchall())
        except duckdb.Error as exc:
            raise StoreError(str(exc)) from exc
        finally:
            self._conn().unregister(BATCH_RELATION)

    def record_error(
        self,
        pipeline: str,
        *,
        kind: str,
        message: str,
        batch_id: int | None = None,
        partition: str | None = None,
        offset: int | None = None,
        raw: bytes | None = None,
        error_type: str = "Error",
    ) -> None:
        self._run(
            "INSERT INTO sluice.errors VALUES (nextval('sluice.error_ids'), ?, ?, ?, ?, ?, ?, ?, "
            "?, ?, NULL, now())",
            [
                pipeline,
                batch_id,
                error_type,
                kind,
                message,
                partition,
                offset,
                raw,
                _printable(raw),
            ],
        )


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


def _printable(raw: bytes | None) -> str | None:
    return None if raw is None else raw.decode("utf-8", errors="replace")


def _count_of(rows: list[tuple[Any, ...]]) -> int:
    return int(rows[0][0]) if rows else 0


def _translate(exc: duckdb.Error, pipeline: str, batch_id: int | None) -> StoreError:
    what = f"batch {batch_id}" if batch_id is not None else "the rows"
    message = f"the store refused {what}: {exc}"
    if isinstance(exc, duckdb.TransactionException):
        return _TransientStoreError(message, pipeline=pipeline, batch_id=batch_id)
    return StoreError(message, pipeline=pipeline, batch_id=batch_id)


class _TransientStoreError(StoreError, TransientError):
    """A write conflict with another transaction: retried."""
