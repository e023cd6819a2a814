"""``sluice.connect()``: an embedded database with native pipelines, like DuckDB or SQLite."""

from __future__ import annotations

from types import TracebackType

from sluice.engine import Engine
from sluice.result import Result
from sluice.sql import ast, parse, split_statements
from sluice.stores import Store, open_store


class Connection:
    """A session on a database with pipelines. Pipeline statements run in Sluice; any other SQL
    goes to the store (DuckDB or PostgreSQL) unchanged, in this session's own transaction.

    Use a connection from one thread at a time; ``cursor()`` opens another session on the same
    database for another thread (as DuckDB's ``cursor()`` does). Open a file once per process.
    """

    def __init__(self, database: str = ":memory:", *, _engine: Engine | None = None) -> None:
        self.database = database
        self._owner = _engine is None
        if _engine is None:
            _engine = Engine(open_store(database))
            _engine.resume()
        self._engine = _engine
        self._store = _engine.store.fork()  # the user's SQL, in the user's transactions
        self._pipeline_store: Store | None = None  # pipeline statements, outside them
        self._closed = False

    @property
    def store(self) -> str:
        """The store's name: ``duckdb`` or ``postgresql``."""
        return self._engine.store.name

    @property
    def engine(self) -> Engine:
        """The database's engine (its pipelines, metrics and catalog), for the servers."""
        return self._engine

    def cursor(self) -> Connection:
        """Another session on this database, with its own transaction."""
        return Connection(self.database, _engine=self._engine)

    def execute(self, sql: str) -> Result:
        """Run one statement, or several separated by ``;``; returns the last one's result."""
        result = Result()
        for statement in split_statements(sql):
            stmt = parse(statement)
            if isinstance(stmt, ast.Passthrough):
                result = self._store.execute(stmt.sql)
            else:
                if self._pipeline_store is None:
                    self._pipeline_store = self._engine.store.fork()
                result = self._engine.execute(stmt, self._pipeline_store)
        return result

    def close(self) -> None:
        """Close this session. Closing the connection that opened the database also stops its
        pipelines after their current batch; their state stays Running, so they resume the
        next time the database is opened."""
        if self._closed:
            return
        self._closed = True
        self._store.close()
        if self._pipeline_store is not None:
            self._pipeline_store.close()
        if self._owner:
            self._engine.close()
            self._engine.store.close()

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def connect(database: str = ":memory:") -> Connection:
    """Open (or create) a database: a DuckDB file path, ``:memory:``, or a PostgreSQL URL
    (``postgresql://user:password@host:port/dbname``), whose schema ``sluice`` then holds the
    pipelines' catalog."""
    return Connection(database)
