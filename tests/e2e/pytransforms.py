"""Python transforms the tests name as ``tests.e2e.pytransforms:<function>``."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

import sluice

CALLS: list[int] = []  # batch sizes seen by ``fahrenheit``


def fahrenheit(table: pa.Table, *, limit: float = 1e9) -> pa.Table:
    """Typed in, typed out: adds ``f``, drops readings that are off, rejects those over
    ``limit``."""
    assert table.schema.field("c").type == pa.float64(), table.schema
    assert table.schema.field("id").type == pa.int32(), table.schema
    CALLS.append(table.num_rows)
    table = table.filter(pc.invert(table.column("off")))
    f = pc.add(pc.multiply(table.column("c"), 1.8), 32)
    table = table.append_column("f", f)
    return sluice.reject(table, pc.greater(f, limit), f"hotter than {limit} F")


def fails(table: pa.Table) -> pa.Table:
    raise ValueError("the model file is corrupt")


def not_a_table(table: pa.Table) -> object:
    return table.to_pylist()
