"""Text columns → the types of the columns they load into, for the stages that need values, not
text (a Python transform, a model): one vectorised DuckDB query per batch, casting only the
columns whose type is not text. A value that does not convert is not an exception: its row is
returned with a reason naming the column, as a format returns a bad record."""

from __future__ import annotations

from collections.abc import Mapping

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from sluice.formats.base import ArrowQueries
from sluice.vocab import ROW_COLUMN, is_text_type

_REASON = "__reason"


class Coercion:
    """Casts the columns named in ``types`` (column → SQL type) from text. A type this process
    cannot convert to (a store's own type, such as PostgreSQL's ``jsonb``) stays text: the store
    converts it when it loads."""

    def __init__(self, types: Mapping[str, str]) -> None:
        self._db = ArrowQueries()
        self.types = {
            column: sql_type
            for column, sql_type in types.items()
            if not is_text_type(sql_type) and self._known(sql_type)
        }
        casts, checks = [], []
        for column, sql_type in self.types.items():
            q = _q(column)
            casts.append(f"TRY_CAST(NULLIF({q}, '') AS {sql_type}) AS {q}")
            shown = f"CASE WHEN length({q}) > 60 THEN left({q}, 57) || '...' ELSE {q} END"
            checks.append(
                f"CASE WHEN {q} <> '' AND TRY_CAST({q} AS {sql_type}) IS NULL THEN "
                f"{_s(f'column {column}: ' + chr(39))} || {shown} || "
                f"{_s(chr(39) + f' is not a valid {sql_type}')} END"
            )
        reason = f"concat_ws('; ', {', '.join(checks)})" if checks else "''"
        replace = f" REPLACE ({', '.join(casts)})" if casts else ""
        self._sql = f"SELECT *{replace}, {reason} AS {_REASON} FROM batch"

    def _known(self, sql_type: str) -> bool:
        try:
            self._db.query(f"SELECT CAST(NULL AS {sql_type})")
            return True
        except duckdb.Error:
            return False

    def apply(self, rows: pa.Table) -> tuple[pa.Table, list[tuple[int, str]]]:
        """``rows`` with their columns typed, less the rows holding a value that does not
        convert: those as ``(row id, reason)``."""
        if not self.types or rows.num_rows == 0:
            return rows, []
        out = self._db.query(self._sql, batch=rows)
        reasons = out.column(_REASON)
        bad = pc.not_equal(reasons, "")
        refused: list[tuple[int, str]] = []
        if pc.any(bad).as_py():
            failing = out.filter(bad)
            refused = list(
                zip(
                    failing.column(ROW_COLUMN).to_pylist(),
                    reasons.filter(bad).to_pylist(),
                    strict=True,
                )
            )
            out = out.filter(pc.invert(bad))
        return out.drop_columns([_REASON]), refused

    def close(self) -> None:
        self._db.close()


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _s(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
