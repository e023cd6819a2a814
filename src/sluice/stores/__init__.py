"""Stores: where tables, the catalog and the cursors live, keyed by the URL scheme."""

from __future__ import annotations

from sluice.errors import NotSupportedError
from sluice.stores.base import Store
from sluice.stores.duckdb import DuckDBStore

STORES: dict[str, type[Store]] = {"duckdb": DuckDBStore}


def open_store(database: str) -> Store:
    """A DuckDB file path (or ``:memory:``); other URLs name their store by scheme."""
    scheme, sep, _ = database.partition("://")
    if sep and scheme not in ("file", "duckdb"):
        raise NotSupportedError(f"store {scheme!r} is not supported yet (supported: duckdb files)")
    return DuckDBStore(database.split("://", 1)[1] if sep else database)


__all__ = ["STORES", "Store", "open_store"]
