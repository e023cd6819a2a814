"""The result of one statement: rows (fetched lazily from the store), column names, row count."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Any

Row = tuple[Any, ...]


class Result:
    """Rows of a query, or the row count of a change.

    ``rowcount`` is the number of rows changed (-1 for a query); ``columns`` the column names
    (empty when the statement returns no rows); ``warnings`` notes about accepted clauses that
    have no effect here.
    """

    def __init__(
        self,
        columns: Sequence[str] = (),
        rows: Iterable[Row] = (),
        *,
        rowcount: int = -1,
        warnings: Sequence[str] = (),
        types: Sequence[str] = (),
    ) -> None:
        self.columns = list(columns)
        self.types = list(types)
        self.rowcount = rowcount
        self.warnings = list(warnings)
        self._rows: Iterator[Row] = iter(rows)

    def fetchone(self) -> Row | None:
        return next(self._rows, None)

    def fetchmany(self, size: int = 1000) -> list[Row]:
        out = []
        for row in self._rows:
            out.append(row)
            if len(out) >= size:
                break
        return out

    def fetchall(self) -> list[Row]:
        return list(self._rows)

    def __iter__(self) -> Iterator[Row]:
        return self._rows

    def __repr__(self) -> str:
        return f"<Result columns={self.columns} rowcount={self.rowcount}>"
