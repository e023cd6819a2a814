"""``sluice.connect()``: an embedded database with native pipelines, like DuckDB or SQLite."""

from __future__ import annotations

from types import TracebackType

from sluice.engine import Engine
from sluice.result import Result
from sluice.sql import parse, split_statements
from sluice.stores import open_store


class Connection:
    """A database with pipelines. Pipeline statements run in Sluice; any other SQL goes to
    the store (DuckDB) unchanged. Use it from one thread; open it once per process."""

    def __init__(self, database: str = ":memory:") -> None:
        self.database = database
        self._engine = Engine(open_store(database))
        self._engine.resume()
        self._closed = False

    def execute(self, sql: str) -> Result:
        """Run one statement, or several separated by ``;``; returns the last one's result."""
        result = Result()
        for statement in split_statements(sql):
            result = self._engine.execute(parse(statement))
        return result

    def close(self) -> None:
        """Stop running pipelines after their current batch and close the database. Their
        state stays Running, so they resume the next time the database is opened."""
        if not self._closed:
            self._closed = True
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
    """Open (or create) a database: a DuckDB file path, or ``:memory:``."""
    return Connection(database)
