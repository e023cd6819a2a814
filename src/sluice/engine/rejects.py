"""Which rows of a refused batch the table rejects, and why.

Called only after a batch has failed to load, so the common path pays nothing. Values that do
not convert to their column's type are found in one vectorised query, with a reason naming the
column. Rows the table itself refuses (NOT NULL, keys, CHECK) are found by bisection over
trial loads that are always rolled back: the first failing prefix ends with a bad row, which is
taken out before looking for the next. Rows are tried in their load order, so a row that only
conflicts with an earlier row of the same batch is the one rejected, as MySQL would.
"""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

from sluice.plan import LoadPlan
from sluice.stores.base import Store
from sluice.vocab import ROW_COLUMN

MAX_BISECTED_ROWS = 1_000  # beyond this, a batch is failing as a whole, not row by row


@dataclass(frozen=True)
class RowRejection:
    row: int  # the row's ROW_COLUMN value
    kind: str  # Parse (a value of the wrong type) | Load (the table refused the row)
    reason: str
    duplicate_key: bool = False


def without(rows: pa.Table, ids: set[int]) -> pa.Table:
    if not ids:
        return rows
    keep = pc.invert(pc.is_in(rows.column(ROW_COLUMN), value_set=pa.array(sorted(ids), pa.int64())))
    return rows.filter(keep)


def diagnose(store: Store, plan: LoadPlan, rows: pa.Table) -> list[RowRejection]:
    """Every row of ``rows`` that keeps the batch from loading; empty if the failure does not
    come from particular rows."""
    found = [RowRejection(r, "Parse", reason) for r, reason in store.type_errors(plan, rows)]
    remaining = without(rows, {f.row for f in found})
    bisected = 0
    while remaining.num_rows and bisected < MAX_BISECTED_ROWS:
        reason = store.trial_load(plan, remaining)
        if reason is None:
            break
        index, reason = _first_failing_row(store, plan, remaining, reason)
        row = int(remaining.column(ROW_COLUMN)[index].as_py())
        found.append(RowRejection(row, "Load", reason, store.is_duplicate_key(reason)))
        remaining = without(remaining, {row})
        bisected += 1
    return found


def _first_failing_row(
    store: Store, plan: LoadPlan, rows: pa.Table, whole_reason: str
) -> tuple[int, str]:
    """The smallest i such that rows[0..i] fails (rows as a whole fails), and its reason."""
    lo, hi, reason = 0, rows.num_rows - 1, whole_reason
    while lo < hi:
        mid = (lo + hi) // 2
        failure = store.trial_load(plan, rows.slice(0, mid + 1))
        if failure is None:
            lo = mid + 1
        else:
            hi, reason = mid, failure
    return lo, reason
