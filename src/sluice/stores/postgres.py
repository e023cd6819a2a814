"""PostgreSQL: the store beyond one embedded file. Tables are ordinary PostgreSQL tables; the
catalog lives in schema ``sluice`` of the same database.

A batch travels as one binary ``COPY`` into a temporary staging table, then the load plan's
``INSERT … SELECT`` (SET, WHERE, ``ON CONFLICT``) runs in the same transaction as the cursor
compare-and-set and the batch record. Several Sluice processes may share the database: each
pipeline is loaded by the process whose connection holds its advisory lock.
"""

from __future__ import annotations

from collections.abc import Sequence
from contextlib import suppress
from typing import Any

import psycopg
import psycopg.errors
import pyarrow as pa
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus

from sluice.errors import InvalidStatementError, StoreError, TerminalError, TransientStoreError
from sluice.plan import LoadPlan
from sluice.result import Result
from sluice.sql.expr import quote
from sluice.stores import pgcopy
from sluice.stores.base import process_label, route_views
from sluice.stores.catalog import CATALOG, VERSION, VIEWS
from sluice.stores.sqlstore import Rows, SQLStore
from sluice.vocab import BATCH_RELATION, ROW_COLUMN, TableInfo, is_text

# The first key of the advisory locks that claim pipelines ("SL"); the second is the
# pipeline name's hashtext(). One more key serialises the creation of the catalog.
CLAIMS = 0x534C
CATALOG_LOCK = 0x534C0000

# PostgreSQL type names as the rest of Sluice names types (DuckDB's names), for clients.
_TYPES = {
    "bool": "BOOLEAN", "int2": "SMALLINT", "int4": "INTEGER", "int8": "BIGINT",
    "float4": "FLOAT", "float8": "DOUBLE", "numeric": "DECIMAL", "date": "DATE",
    "time": "TIME", "timestamp": "TIMESTAMP", "timestamptz": "TIMESTAMP WITH TIME ZONE",
    "bytea": "BLOB", "json": "JSON", "jsonb": "JSON", "uuid": "UUID", "oid": "BIGINT",
}  # fmt: skip


class PostgresStore(SQLStore):
    name = "postgresql"
    shared = True
    remote = True
    has_procedures = True
    driver_error = psycopg.Error
    copies_batches = True

    def __init__(self, url: str, *, _catalog: bool = True) -> None:
        super().__init__()
        self.url = url
        self._con: psycopg.Connection[Any] | None = None
        self._claimed: set[str] = set()  # pipelines whose lock this connection holds
        self._conn()
        if _catalog:
            self._create_catalog()

    def where(self) -> str:
        """The server and database, for messages (never the password)."""
        try:
            info = conninfo_to_dict(self.url)
        except psycopg.ProgrammingError:
            return "PostgreSQL"
        host, port = info.get("host", "localhost"), info.get("port", "5432")
        return f"PostgreSQL {host}:{port}/{info.get('dbname', '')}"

    def _conn(self) -> psycopg.Connection[Any]:
        """The connection; a new one if it was lost (its claims went with it)."""
        if self._con is None or self._con.closed or self._con.broken:
            self._claimed.clear()
            try:
                self._con = psycopg.connect(
                    self.url,
                    autocommit=True,
                    application_name=f"sluice {process_label()}",
                    connect_timeout=10,
                )
            except psycopg.Error as exc:
                raise TransientStoreError(f"cannot connect to {self.where()}: {exc}") from exc
        return self._con

    def _create_catalog(self) -> None:
        """Create (or update) the catalog, unless it is current; processes opening the
        database at once take turns."""
        current = "SELECT obj_description(to_regnamespace('sluice'), 'pg_namespace') = ?"
        if self._run(current, [VERSION])[0][0]:
            return  # nothing to do, and no DDL rights needed
        with self._transaction():
            self._run(f"SELECT pg_advisory_xact_lock({CATALOG_LOCK})")
            if self._run(current, [VERSION])[0][0]:
                return
            self._run(CATALOG)
            names = ", ".join(f'sluice."{name}"' for name in VIEWS)
            self._run(f"DROP VIEW IF EXISTS {names} CASCADE")
            for name, body in VIEWS.items():
                self._run(f'CREATE VIEW sluice."{name}" AS {body}')
            self._run(f"COMMENT ON SCHEMA sluice IS '{VERSION}'")

    def fork(self) -> PostgresStore:
        return PostgresStore(self.url, _catalog=False)

    def close(self) -> None:
        """Close the connection, releasing its claims first: PostgreSQL would free them only
        once the server process of the session has ended, after ``close()`` returns, so
        another process's claim right after this one closes could still fail."""
        con, self._con = self._con, None
        if con is not None:
            if self._claimed and not con.closed and not con.broken:
                with suppress(psycopg.Error):
                    con.execute("SELECT pg_advisory_unlock_all()")
            con.close()
        self._claimed.clear()

    # -- user SQL -----------------------------------------------------------------------------

    def execute(self, sql: str) -> Result:
        try:
            cur = self._conn().execute(route_views(sql, "sluice").encode())
            while cur.nextset():  # several statements: the last one's result
                pass
            if cur.description is None:
                return Result(rowcount=cur.rowcount)
            rows = cur.fetchall()
        except psycopg.Error as exc:
            # Class 42: syntax errors, unknown names and types (not 42501, a privilege)
            if (exc.sqlstate or "").startswith("42") and exc.sqlstate != "42501":
                raise InvalidStatementError(_message(exc)) from exc
            raise StoreError(_message(exc)) from exc
        types = [_type_name(d.type_code) for d in cur.description]
        return Result([d.name for d in cur.description], rows, types=types)

    # -- what SQLStore needs ------------------------------------------------------------------

    def _execute(self, sql: str, params: Sequence[Any] | None = None) -> Rows:
        """Run one of Sluice's statements. Outside a transaction, a connection found dead (a
        restarted server ends idle sessions) is replaced and the statement sent once more."""
        query = (sql.replace("?", "%s") if params is not None else sql).encode()
        for attempt in (1, 2):
            con = self._conn()
            idle = con.info.transaction_status == TransactionStatus.IDLE
            try:
                cur = con.execute(query, params)
                break
            except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
                if attempt == 2 or not idle or not con.broken:
                    raise _lost(exc, self.where()) from exc
        return cur.fetchall() if cur.description is not None else [(cur.rowcount,)]

    def _execute_many(self, sql: str, rows: Sequence[Sequence[Any]]) -> None:
        try:
            self._conn().cursor().executemany(sql.replace("?", "%s").encode(), rows)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _lost(exc, self.where()) from exc

    def _begin(self, rows: pa.Table | None) -> None:
        self._run("BEGIN")
        if rows is None:
            return
        columns = ", ".join(
            f"{quote(name)} {'bigint' if name == ROW_COLUMN else 'text'}"
            for name in rows.schema.names
        )
        self._run(f"CREATE TEMP TABLE {BATCH_RELATION} ({columns}) ON COMMIT DROP")
        body = pgcopy.encode(_as_text(rows))
        try:
            with (
                self._conn()
                .cursor()
                .copy(f"COPY {BATCH_RELATION} FROM STDIN (FORMAT BINARY)") as copy
            ):
                copy.write(pgcopy.HEADER)
                copy.write(body)
                copy.write(pgcopy.TRAILER)
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _lost(exc, self.where()) from exc

    def _copy_batch(self, plan: LoadPlan, rows: pa.Table) -> int:
        columns = ", ".join(quote(c) for c in plan.columns)
        body = pgcopy.encode_csv(rows.select(list(plan.direct)), {t for t, _ in plan.typed})
        try:
            with self._conn().cursor() as cursor:
                with cursor.copy(f"COPY {plan.table} ({columns}) FROM STDIN (FORMAT csv)") as copy:
                    copy.write(body)
                return cursor.rowcount
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise _lost(exc, self.where()) from exc

    def _end(self, *, commit: bool) -> None:
        self._run("COMMIT" if commit else "ROLLBACK")

    def _translate(self, exc: Exception, pipeline: str, batch_id: int | None) -> StoreError:
        what = f"batch {batch_id}" if batch_id is not None else "a statement"
        message = f"{self.where()} refused {what}: {_message(exc)}"
        if isinstance(exc, (psycopg.OperationalError, psycopg.InterfaceError)):
            return TransientStoreError(message, pipeline=pipeline, batch_id=batch_id)
        return StoreError(message, pipeline=pipeline, batch_id=batch_id)

    def _row_level(self, exc: Exception) -> bool:
        return isinstance(exc, (psycopg.DataError, psycopg.IntegrityError))

    def _is_unique_violation(self, exc: Exception) -> bool:
        return isinstance(exc, psycopg.errors.UniqueViolation)

    def _try_cast(self, expr: str, sql_type: str) -> str | None:
        if self._conn().info.server_version < 160000:  # pg_input_is_valid is PostgreSQL 16+
            return None
        literal = "'" + sql_type.replace("'", "''") + "'"
        return f"CASE WHEN pg_input_is_valid({expr}, {literal}) THEN 1 END"

    def table_sql(self, table: str) -> str:
        found = self._run("SELECT to_regclass(?)::text", [table])
        if not found or found[0][0] is None:
            raise TerminalError(f"table {table} does not exist in {self.where()}; create it first")
        return str(found[0][0])

    def table_info(self, table: str) -> TableInfo:
        columns = self._run(
            "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
            "WHERE attrelid = to_regclass(?) AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            [table],
        )
        if not columns:
            raise TerminalError(f"table {table} does not exist in {self.where()}; create it first")
        keys = self._run(
            "SELECT array_agg(a.attname::text ORDER BY k.ord) FROM pg_index i "
            "CROSS JOIN unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum "
            "WHERE i.indrelid = to_regclass(?) AND i.indisunique AND i.indpred IS NULL "
            "AND i.indexprs IS NULL "
            "GROUP BY i.indexrelid, i.indisprimary ORDER BY i.indisprimary DESC, i.indexrelid "
            "LIMIT 1",
            [table],
        )
        key = tuple(keys[0][0]) if keys else ()
        return TableInfo(table, tuple((c, _cast_type(t)) for c, t in columns), key)

    # -- claims -------------------------------------------------------------------------------

    def claim(self, pipeline: str) -> bool:
        if pipeline in self._claimed and not self._conn().broken:
            return True
        got = self._run("SELECT pg_try_advisory_lock(?, hashtext(?))", [CLAIMS, pipeline])
        if got[0][0]:
            self._claimed.add(pipeline)
        return bool(got[0][0])

    def holders(self) -> dict[str, str]:
        rows = self._run(
            "SELECT d.name, a.application_name FROM sluice.definitions AS d "
            "JOIN pg_locks AS l ON l.locktype = 'advisory' AND l.granted "
            f"AND l.classid = {CLAIMS} AND l.objsubid = 2 "
            "AND l.objid::bigint = (hashtext(d.name)::bigint & 4294967295) "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "JOIN pg_stat_activity AS a ON a.pid = l.pid"
        )
        return {name: str(app).removeprefix("sluice ") for name, app in rows}


def _as_text(rows: pa.Table) -> pa.Table:
    """Every column but the row ids as text, as the staging table holds them: values (a
    Python transform's) travel in PostgreSQL's input syntax, which Arrow's casts write."""
    for i, field in enumerate(rows.schema):
        if field.name != ROW_COLUMN and not is_text(field.type):
            rows = rows.set_column(i, field.name, rows.column(i).cast(pa.string()))
    return rows


def _cast_type(pg_type: str) -> str:
    """The type a batch's text is cast to for a column. A length-limited character column is
    cast to text, so that a value too long is refused when stored (an explicit cast to
    ``varchar(n)`` would cut it short silently)."""
    return "text" if pg_type.startswith(("character varying(", "character(")) else pg_type


def _type_name(oid: int) -> str:
    info = psycopg.adapters.types.get(oid)
    return _TYPES.get(info.name, "VARCHAR") if info is not None else "VARCHAR"


def _message(exc: BaseException) -> str:
    return str(exc).strip()


def _lost(exc: Exception, where: str) -> TransientStoreError:
    return TransientStoreError(f"the connection to {where} failed: {_message(exc)}")
