"""Stores: where tables, the catalog and the cursors live, chosen by the database URL."""

from __future__ import annotations

from sluice.errors import NotSupportedError
from sluice.stores.base import Store
from sluice.stores.duckdb import DuckDBStore

POSTGRES_SCHEMES = ("postgresql", "postgres")


def open_store(database: str) -> Store:
    """``postgresql://user@host:port/db`` (or ``postgres://``) opens PostgreSQL; a path,
    ``duckdb://path``, ``file://path`` or ``:memory:`` opens a DuckDB database."""
    scheme, sep, rest = database.partition("://")
    if not sep:
        return DuckDBStore(database)
    if scheme in ("file", "duckdb"):
        return DuckDBStore(rest)
    if scheme in POSTGRES_SCHEMES:
        try:
            from sluice.stores.postgres import PostgresStore
        except ImportError as exc:
            raise NotSupportedError(
                "the PostgreSQL store needs psycopg: pip install 'sluice[postgres]'"
            ) from exc
        return PostgresStore(database)
    raise NotSupportedError(
        f"store {scheme!r} is not supported (supported: a DuckDB file path, postgresql://…)"
    )


__all__ = ["Store", "open_store"]
