"""The MySQL wire protocol (as SingleStore speaks it), on mysql-mimic.

Each client connection is a session with its own DuckDB connection (its own transaction);
pipeline statements go to the database's engine. Blocking work runs on worker threads, never
on the event loop, and rows stream to the client in chunks.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import secrets
import ssl
from asyncio import sslproto
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import UTC
from typing import Any

import duckdb
from mysql_mimic import (
    ColumnType,
    IdentityProvider,
    MysqlServer,
    NativePasswordAuthPlugin,
    ResultColumn,
    ResultSet,
    Session,
    User,
)
from mysql_mimic.charset import CharacterSet
from mysql_mimic.connection import Connection as MimicConnection
from mysql_mimic.constants import DEFAULT_SERVER_CAPABILITIES
from mysql_mimic.errors import ErrorCode, MysqlError
from mysql_mimic.intercept import expression_to_value, value_to_expression
from mysql_mimic.packets import (
    make_column_count,
    make_column_definition_41,
    make_com_stmt_prepare_ok,
)
from mysql_mimic.schema import show_statement_to_info_schema_query
from mysql_mimic.stream import MysqlStream
from mysql_mimic.types import Capabilities, ServerStatus
from mysql_mimic.variables import GlobalVariables, SessionVariables
from sqlglot import exp
from sqlglot.errors import ParseError as SqlglotParseError
from sqlglot.errors import SqlglotError

from sluice.connection import Connection
from sluice.errors import AccessDeniedError, InvalidStatementError, ParseError, SluiceError
from sluice.result import Result
from sluice.server import access, catalog, variables
from sluice.server.access import UserDirectory
from sluice.sql import is_pipeline_statement, mysql
from sluice.stores.base import mentions_views

log = logging.getLogger("sluice.server")

CHUNK = 2048  # rows fetched per trip to the worker thread

# DuckDB type (its leading word) → MySQL column type. Anything else travels as text.
_TYPES = {
    "BOOLEAN": ColumnType.TINY,
    "TINYINT": ColumnType.TINY,
    "UTINYINT": ColumnType.SHORT,
    "SMALLINT": ColumnType.SHORT,
    "USMALLINT": ColumnType.LONG,
    "INTEGER": ColumnType.LONG,
    "UINTEGER": ColumnType.LONGLONG,
    "BIGINT": ColumnType.LONGLONG,
    "UBIGINT": ColumnType.NEWDECIMAL,
    "HUGEINT": ColumnType.NEWDECIMAL,  # sum() of integers, for one
    "UHUGEINT": ColumnType.NEWDECIMAL,
    "FLOAT": ColumnType.FLOAT,
    "DOUBLE": ColumnType.DOUBLE,
    "DECIMAL": ColumnType.NEWDECIMAL,
    "DATE": ColumnType.DATE,
    "TIME": ColumnType.TIME,
    "TIMESTAMP": ColumnType.DATETIME,
    "TIMESTAMP_S": ColumnType.DATETIME,
    "TIMESTAMP_MS": ColumnType.DATETIME,
    "TIMESTAMP_NS": ColumnType.DATETIME,
    "BLOB": ColumnType.BLOB,
}


def column_type(duckdb_type: str) -> ColumnType:
    name = duckdb_type.upper()
    if name.startswith("TIMESTAMP WITH TIME ZONE"):
        return ColumnType.DATETIME
    if name.endswith("[]") or name.startswith(("STRUCT", "MAP", "UNION")):
        return ColumnType.VARCHAR
    return _TYPES.get(name.split("(")[0].split(" ")[0], ColumnType.VARCHAR)


def _text(value: Any) -> Any:
    """A value MySQL's text columns can carry: nested values as JSON text."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (list, dict, tuple)):
        return json.dumps(value, default=str)
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return str(value)


def _converter(kind: ColumnType, duckdb_type: str) -> Callable[[Any], Any] | None:
    """How a column's Python values become what mysql-mimic encodes; None: as they are."""
    if duckdb_type.upper().startswith("TIMESTAMP WITH TIME ZONE"):
        # MySQL DATETIME has no zone: send UTC, as SingleStore does for TIMESTAMP.
        return lambda v: v if v is None else v.astimezone(UTC).replace(tzinfo=None)
    if kind is ColumnType.TINY and duckdb_type.upper() == "BOOLEAN":
        return lambda v: v if v is None else int(v)
    if kind is ColumnType.VARCHAR:
        return _text
    return None


_DATA_STATEMENT = re.compile(
    r"\s*(SELECT|WITH|INSERT|UPDATE|DELETE|CREATE|DROP|COPY|BEGIN)\b", re.I
)
# What mysql-mimic must see: session variables, MySQL's own functions, back-quoted names,
# and the information_schema it emulates for clients and BI tools.
_NEEDS_MYSQL = re.compile(
    r"@@|`|information_schema|\b(DATABASE|SCHEMA|USER|CURRENT_USER|SESSION_USER|SYSTEM_USER|"
    r"CONNECTION_ID|VERSION|LAST_INSERT_ID|FOUND_ROWS|ROW_COUNT)\s*\(",
    re.I,
)
# A transaction's end, which MySQL accepts with no transaction open (pools send it on every
# checkout); DuckDB refuses it.
_END = re.compile(r"\s*(COMMIT|ROLLBACK)(\s+WORK)?\s*;?\s*$", re.I)
_NO_TRANSACTION = "no transaction is active"
_BEGIN = re.compile(r"\s*(BEGIN|START\s+TRANSACTION)\b", re.I)


def _plain(sql: str) -> bool:
    """A data statement the store may run as the client wrote it."""
    return (
        bool(_DATA_STATEMENT.match(sql))
        and not _NEEDS_MYSQL.search(sql)
        and not mysql.MYSQL_ONLY.search(sql)
    )


# Statements that mysql-mimic passed on unchanged, by store and text: their translation is all
# they need, so the next time they skip its parse and go straight to the store.
_TRANSLATED: dict[tuple[str, str], str] = {}
_TRANSLATED_MAX = 4096


class SluiceSession(Session):  # type: ignore[misc]  # mysql-mimic ships no type hints
    """One client connection: a session on the shared database.

    A client's statement is MySQL's SQL: when it is not valid for the store as written, it is
    translated into the store's dialect (``sluice.sql.mysql``). Statements the store accepts
    as written take no detour."""

    dialect = mysql.ClientMySQL

    def __init__(self, database: Connection, users: UserDirectory) -> None:
        super().__init__(variables=SessionVariables(GlobalVariables(variables.SCHEMA)))
        self._database = database
        self._users = users
        self._conn: Connection | None = None
        self._in_transaction = False  # BEGIN (or an implicit one) and no COMMIT/ROLLBACK yet
        self._implicit = False  # that transaction was opened because autocommit is off
        # mysql-mimic would answer FROM-less SELECTs itself (not in DuckDB) and swallow
        # BEGIN/COMMIT/ROLLBACK: both must reach the store.
        for middleware in (
            self._static_query_middleware,
            self._begin_middleware,
            self._commit_middleware,
            self._rollback_middleware,
        ):
            self.middlewares.remove(middleware)

    async def init(self, connection: Any) -> None:
        await super().init(connection)
        self._conn = await asyncio.to_thread(self._database.cursor)
        # The store's default schema: SHOW TABLES works without USE.
        self.database = "public" if self._database.store == "postgresql" else "main"
        log.info("connection %s opened", connection.connection_id)

    async def close(self) -> None:
        if self._conn is not None:
            await asyncio.to_thread(self._conn.close)
            self._conn = None
        log.info("connection %s closed", self.connection.connection_id)
        await super().close()

    async def handle_query(self, sql: str, attrs: dict[str, str]) -> Any:
        try:
            return await self._handle(sql, attrs)
        finally:
            # What the replies' status says: drivers (PyMySQL) decide from it whether to
            # send SET autocommit, and whether a transaction is open.
            status = ServerStatus(0)
            if self.variables.get("autocommit"):
                status |= ServerStatus.SERVER_STATUS_AUTOCOMMIT
            if self._in_transaction:
                status |= ServerStatus.SERVER_STATUS_IN_TRANS
            self.connection.status_flags = status

    async def _handle(self, sql: str, attrs: dict[str, str]) -> Any:
        if is_pipeline_statement(sql) or mentions_views(sql):
            # Pipeline statements are not MySQL, and the monitoring views live in the store.
            return await self._run(sql)
        if _END.match(sql):
            return await self._end_transaction(sql)
        # SHOW COLLATION and others sqlglot cannot read
        show = catalog.show_query(sql, self.database or "")
        if show is not None:
            return await self._query_info_schema(self._parse(show)[0])
        if _plain(sql):
            # No sqlglot parse (in Python, holding the GIL the pipelines need) unless the
            # store cannot read the statement.
            return await self._run_or_translate(sql)
        known = _TRANSLATED.get((self._database.store, sql))
        if known is not None and not self._in_info_schema():
            return await self._run(known)
        try:
            return await super().handle_query(sql, attrs)
        except SqlglotParseError:
            return await self._run(sql)  # the store's own SQL, which MySQL's grammar lacks

    async def query(self, expression: exp.Expression, sql: str, attrs: dict[str, str]) -> Any:
        store = self._database.store
        original = self._parse(sql)
        if len(original) == 1 and original[0] == expression:
            translated = mysql.translate(sql, store)  # the client's text, read once
            if len(_TRANSLATED) >= _TRANSLATED_MAX:
                _TRANSLATED.clear()
            _TRANSLATED[(store, sql)] = translated
            return await self._run(translated)
        # mysql-mimic rewrote the statement (CONNECTION_ID(), NOW() and such are values now)
        return await self._run(mysql.to_store(expression, store))

    async def _run_or_translate(self, sql: str) -> Any:
        """Run ``sql`` as written; if the store cannot read it, as MySQL's SQL translated.
        (In a transaction, the first failure has already ended it: the translation then
        fails too, and the client sees the store's error about what it wrote.)"""
        try:
            return await self._run(sql)
        except MysqlError as exc:
            if not isinstance(exc.__cause__, (InvalidStatementError, ParseError)):
                raise
            try:
                translated = mysql.translate(sql, self._database.store)
            except ParseError:
                raise exc from exc.__cause__
            if translated.strip() == sql.strip().rstrip(";"):
                raise
            try:
                return await self._run(translated)
            except MysqlError:
                raise exc from exc.__cause__

    async def _end_transaction(self, sql: str) -> Any:
        self._in_transaction = False  # whatever the store says, none is open after this
        try:
            return await self._run(sql)
        except MysqlError as exc:
            if _NO_TRANSACTION in str(exc):
                return [], []
            raise

    async def _begin_implicitly(self, sql: str) -> None:
        """MySQL's ``autocommit = 0``: the first statement after a COMMIT or ROLLBACK opens a
        transaction, which the next COMMIT or ROLLBACK ends (SQLAlchemy and most drivers turn
        autocommit off). Setting autocommit back on commits it, as in MySQL."""
        if _BEGIN.match(sql):
            self._in_transaction = True
            return
        autocommit = bool(self.variables.get("autocommit"))
        if self._in_transaction and autocommit and self._implicit:
            self._in_transaction = False
            await self._run_blocking("COMMIT")
        if not autocommit and not self._in_transaction and not is_pipeline_statement(sql):
            await self._run_blocking("BEGIN")
            self._in_transaction = self._implicit = True

    def _in_info_schema(self) -> bool:
        return (self.database or "").lower() == "information_schema"

    def _set_transaction(self, item: exp.SetItem) -> None:
        super()._set_transaction(item)  # MySQL 5.7's names say the same as 8's
        self.variables.set("tx_isolation", self.variables.get("transaction_isolation"))
        self.variables.set("tx_read_only", self.variables.get("transaction_read_only"))

    def _set_variable(self, setitem: exp.SetItem) -> None:
        """mysql-mimic's, except that the value may be any expression of literals and
        variables, as drivers send it: ``sql_mode = CONCAT(@@sql_mode, ',STRICT_ALL_TABLES')``."""
        assignment = setitem.this
        try:
            expression_to_value(assignment.right)
        except MysqlError:
            value = variables.evaluate(assignment.right, self.variables)
            setitem = setitem.copy()
            setitem.this.set("expression", value_to_expression(value))
        super()._set_variable(setitem)

    async def _catalog(self) -> catalog.Catalog:
        """MySQL's information_schema over the store's catalog as it is now, for users who
        may read the store."""
        if self.username != self._users.admin:
            await asyncio.to_thread(self._allow, "SELECT * FROM information_schema.tables")
        assert self._conn is not None, "the session is not open"
        store = await asyncio.to_thread(catalog.StoreCatalog.read, self._conn.execute)
        return catalog.Catalog(store, self.database)

    async def _query_info_schema(self, expression: exp.Expression) -> Any:
        """A query of information_schema (SHOW statements become ones)."""
        found = await self._catalog()
        try:
            return _result_set(await asyncio.to_thread(found.run, expression))
        except (duckdb.Error, SqlglotError) as exc:
            raise MysqlError(f"information_schema: {exc}", ErrorCode.PARSE_ERROR) from exc
        finally:
            found.close()

    async def _show(self, expression: exp.Show) -> Any:
        kind = expression.name.upper()
        if kind == "CREATE TABLE":
            found = await self._catalog()
            ddl = found.create_table(expression.text("target"), expression.text("db") or None)
            if ddl is None:
                raise MysqlError(
                    f"Table '{expression.text('target')}' doesn't exist", ErrorCode.NO_SUCH_TABLE
                )
            return [ddl], ["Table", "Create Table"]
        if kind == "COLUMNS":  # MySQL shows the full type: varchar(20), decimal(10,2)
            expression = expression.copy()
            select = show_statement_to_info_schema_query(expression, self.database)
            select.expressions[1].set("this", exp.column("column_type"))
            return await self._query_info_schema(select)
        return await super()._show(expression)

    async def _run_blocking(self, sql: str) -> Result:
        assert self._conn is not None, "the session is not open"
        try:
            return await asyncio.to_thread(self._conn.execute, sql)
        except ParseError as exc:
            raise MysqlError(str(exc), ErrorCode.PARSE_ERROR) from exc
        except SluiceError as exc:
            raise MysqlError(str(exc)) from exc

    async def _run(self, sql: str) -> ResultSet | tuple[Sequence[Any], Sequence[str]]:
        """Run a client's statement, if its user may (``sluice.server.access``)."""
        if self.username != self._users.admin:  # the administrator may run anything
            await asyncio.to_thread(self._allow, sql)
        if not _END.match(sql):
            await self._begin_implicitly(sql)
        result = await self._run_blocking(sql)
        if access.changes_users(sql):
            self._users.forget()
        for warning in result.warnings:
            log.warning("%s", warning)
        return _result_set(result)

    def _allow(self, sql: str) -> None:
        who = self._users.grantee(self.username or "")
        if who is None:
            raise MysqlError(
                f"user {self.username} no longer exists", ErrorCode.ACCESS_DENIED_ERROR
            )
        try:
            access.check(sql, who, self._database.store)
        except AccessDeniedError as exc:
            raise MysqlError(str(exc), ErrorCode.ACCESS_DENIED_ERROR) from exc


def _result_set(result: Result) -> ResultSet | tuple[Sequence[Any], Sequence[str]]:
    """A statement's result as mysql-mimic sends it, its rows streamed."""
    if not result.columns:
        return [], []
    types = result.types or ["VARCHAR"] * len(result.columns)
    kinds = [column_type(t) for t in types]
    columns = [
        ResultColumn(n, k, CharacterSet.binary if k is ColumnType.BLOB else CharacterSet.utf8mb4)
        for n, k in zip(result.columns, kinds, strict=True)
    ]
    convert = [_converter(k, t) for k, t in zip(kinds, types, strict=True)]
    return ResultSet(_stream(result, convert), columns)


async def _stream(
    result: Result, convert: Sequence[Callable[[Any], Any] | None]
) -> AsyncIterator[Sequence[Any]]:
    """Rows in chunks fetched on a worker thread, so a big result never sits in memory whole
    and never blocks the event loop."""
    needs = any(c is not None for c in convert)
    while True:
        rows = await asyncio.to_thread(result.fetchmany, CHUNK)
        if not rows:
            return
        for row in rows:
            if needs:
                yield [v if c is None else c(v) for v, c in zip(row, convert, strict=True)]
            else:
                yield row


async def _write_text_resultset(self: MimicConnection, result_set: ResultSet) -> None:
    """mysql-mimic's own, except that

    - a streamed result is sent a chunk at a time, each waiting until the client has taken it
      (mysql-mimic 3.0.5 buffers a streamed result whole before sending it: a large result grew
      the server's memory without bound, and a client that hung up did not stop its query);
    - the packet that ends the rows says 0 rows affected, as MySQL's does (mysql-mimic says
      how many rows were sent, and MariaDB Connector/J 2.7 then reads past that packet's end:
      ``ArrayIndexOutOfBoundsException`` on connecting)."""
    header = [
        make_column_count(capabilities=self.capabilities, column_count=len(result_set.columns))
    ]
    header += [
        make_column_definition_41(
            server_charset=self.server_charset,
            name=column.name,
            column_type=column.type,
            character_set=column.character_set,
        )
        for column in result_set.columns
    ]
    if not self.deprecate_eof():
        header.append(self.eof())
    self.stream.write_many(header)
    rows = result_set.rows
    if isinstance(rows, (list, tuple)):
        for start in range(0, len(rows), CHUNK):
            self.stream.write_text_rows(rows[start : start + CHUNK], result_set.columns)
            await self.stream.drain()
    else:
        chunk = []
        async for row in rows:
            chunk.append(row)
            if len(chunk) >= CHUNK:
                self.stream.write_text_rows(chunk, result_set.columns)
                chunk = []
                await self.stream.drain()  # waits while the client is not reading
        self.stream.write_text_rows(chunk, result_set.columns)
    await self.stream.write(self.ok_or_eof(), drain=False)
    await self.stream.drain()


MimicConnection.write_text_resultset = _write_text_resultset


def _com_stmt_prepare_response(self: MimicConnection, statement: Any) -> Iterator[bytes]:
    """mysql-mimic's own, except that no EOF follows the parameters' definitions when the
    client has deprecated EOF packets, as MySQL does (MariaDB Connector/J then reads the EOF
    as a definition and fails)."""
    yield make_com_stmt_prepare_ok(statement)
    if statement.num_params:
        for _ in range(statement.num_params):
            yield make_column_definition_41(server_charset=self.server_charset, name="?")
        if not self.deprecate_eof():
            yield self.eof()


MimicConnection.com_stmt_prepare_response = _com_stmt_prepare_response
_mimic_init = MimicConnection.__init__


def _init_connection(self: MimicConnection, *args: Any, **kwargs: Any) -> None:
    """mysql-mimic's own, except that the status sent from the login on says autocommit is
    on, as it is (PyMySQL reads it to decide whether to turn autocommit off)."""
    _mimic_init(self, *args, **kwargs)
    self.status_flags = ServerStatus.SERVER_STATUS_AUTOCOMMIT


MimicConnection.__init__ = _init_connection


async def _start_tls(self: MysqlStream, context: ssl.SSLContext) -> None:
    """mysql-mimic's own, except that what the client sent right after asking for TLS (its
    TLS hello, often read with the request) goes to the TLS layer. (mysql-mimic 3.0.5 leaves
    those bytes in the plain stream's buffer, and the handshake then waits forever: measured,
    two logins in five hung.) This is asyncio's ``loop.start_tls`` with that one step added."""
    transport = self.writer.transport
    loop = asyncio.get_running_loop()
    buffered: bytearray = self.reader._buffer  # what the plain stream read past the request
    pending = bytes(buffered)
    buffered.clear()
    waiter = loop.create_future()
    tls = sslproto.SSLProtocol(
        loop, transport.get_protocol(), context, waiter, server_side=True,
        call_connection_made=False,
    )  # fmt: skip
    transport.pause_reading()
    transport.set_protocol(tls)
    tls.connection_made(transport)
    while pending:
        room = tls.get_buffer(len(pending))
        n = min(len(room), len(pending))
        room[:n] = pending[:n]
        tls.buffer_updated(n)
        pending = pending[n:]
    transport.resume_reading()
    try:
        await waiter
    except BaseException:
        transport.close()
        raise
    self.writer._transport = tls._app_transport
    self.reader._transport = tls._app_transport


MysqlStream.start_tls = _start_tls
# asyncio's stream protocol says so once per TLS connection closed; nothing is wrong.
logging.getLogger("asyncio").addFilter(
    lambda record: "eof_received() has no effect when using ssl" not in record.getMessage()
)


class DirectoryIdentityProvider(IdentityProvider):  # type: ignore[misc]
    """The administrator and the database's users (mysql_native_password)."""

    def __init__(self, users: UserDirectory) -> None:
        self._users = users

    def get_plugins(self) -> Sequence[NativePasswordAuthPlugin]:
        return [NativePasswordAuthPlugin()]

    async def get_user(self, username: str) -> User | None:
        user = await asyncio.to_thread(self._users.lookup, username)
        if user is not None:
            return User(
                name=username,
                auth_string=user.auth_string or None,
                auth_plugin=NativePasswordAuthPlugin.name,
            )
        # An unknown name gets the same "Access denied" as a wrong password: no way to learn
        # which user names exist.
        return User(
            name=username,
            auth_string=NativePasswordAuthPlugin.create_auth_string(secrets.token_hex(16)),
            auth_plugin=NativePasswordAuthPlugin.name,
        )


def make_server(
    database: Connection, users: UserDirectory, *, tls: ssl.SSLContext | None = None
) -> MysqlServer:
    return MysqlServer(
        session_factory=lambda: SluiceSession(database, users),
        # Transactions, which mysqlclient needs to hear of before it turns autocommit off.
        capabilities=DEFAULT_SERVER_CAPABILITIES | Capabilities.CLIENT_TRANSACTIONS,
        identity_provider=DirectoryIdentityProvider(users),
        ssl=tls,
    )


__all__ = ["SluiceSession", "column_type", "make_server"]
