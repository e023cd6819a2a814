"""WITH TRANSFORM PYTHON 'package.module:function' ['{"arg": value}']: a Python function between
parse and load, called in-process once per batch with the whole batch.

``function(table: pyarrow.Table, **args) -> pyarrow.Table``. ``table`` holds the batch's
columns typed as the target table's columns, and ``__row``, each row's lineage (which record it
came from). The function may add, drop and compute columns and filter rows; the columns it
returns are the columns loaded. It keeps ``__row`` when it changes the number of rows (filters
do), so that a rejected row still names its record. To reject rows with a reason, set a string
column ``__reject`` (``sluice.reject`` does): those rows go to ``PIPELINES_ERRORS`` with their
raw records under ``SKIP PARSER ERRORS`` / ``SKIP ALL ERRORS``, else they fail the batch.
An exception fails the batch (retried, then Error) with its traceback in ``STD_ERROR``.

The function is imported once per pipeline (not per batch), so whatever it loads at import
is loaded once; a class is instead built once with the arguments and its instances called on
each batch (``sluice.transforms.models:Score`` loads its model so). The module is found on
``sys.path``, or given as a file: ``'/path/to/transforms.py:function'``.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import os
import sys
import traceback
from collections.abc import Callable, Mapping
from typing import Any, cast

import pyarrow as pa
import pyarrow.compute as pc

from sluice.errors import TransformError
from sluice.options import json_object
from sluice.vocab import ROW_COLUMN

REJECT_COLUMN = "__reject"


def reject(table: pa.Table, mask: pa.Array | pa.ChunkedArray, reason: str) -> pa.Table:
    """``table`` with the rows where ``mask`` is true marked rejected for ``reason`` (rows
    rejected already keep their first reason)."""
    mask = pc.fill_null(mask, False)
    new = pc.if_else(mask, pa.scalar(reason, pa.string()), pa.scalar(None, pa.string()))
    if REJECT_COLUMN not in table.column_names:
        return table.append_column(REJECT_COLUMN, new)
    i = table.column_names.index(REJECT_COLUMN)
    return table.set_column(i, REJECT_COLUMN, pc.coalesce(table.column(i), new))


def load_function(target: str, *, pipeline: str = "") -> Callable[..., Any]:
    """The function ``'module:function'`` names (the module a dotted name or a file path)."""
    module_name, sep, name = target.rpartition(":")
    if not sep or not module_name or not name:
        raise TransformError(
            f"WITH TRANSFORM PYTHON {target!r}: name a function as 'package.module:function'",
            pipeline=pipeline,
        )
    try:
        if module_name.endswith(".py") or os.sep in module_name:
            module = _from_file(module_name)
        else:
            module = importlib.import_module(module_name)
    except Exception as exc:
        raise _raised(f"WITH TRANSFORM PYTHON: cannot import {module_name}", exc, pipeline) from exc
    function: Callable[..., Any] | None = getattr(module, name, None)
    if not callable(function):
        raise TransformError(
            f"WITH TRANSFORM PYTHON: {module_name} has no function {name}", pipeline=pipeline
        )
    return function


def _raised(what: str, exc: Exception, pipeline: str, after: str = "") -> TransformError:
    """The user's code raised ``exc``: the error says what, its traceback is the STD_ERROR."""
    return TransformError(
        f"{what}: {exc!r} {after}".rstrip(),
        pipeline=pipeline,
        stderr="".join(traceback.format_exception(exc)),
    )


def _from_file(path: str) -> Any:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path} does not exist")
    name = "sluice_transform_" + os.path.splitext(os.path.basename(path))[0]
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


class PythonTransform:
    """The function of one pipeline, with its arguments."""

    def __init__(self, target: str, arguments: str, *, pipeline: str = "") -> None:
        self.target = target
        self.pipeline = pipeline
        self.args: Mapping[str, Any] = json_object(
            arguments, "WITH TRANSFORM PYTHON arguments", TransformError
        )
        self.function = load_function(target, pipeline=pipeline)
        if inspect.isclass(self.function):  # a class is built once, with the arguments
            try:
                self.function = cast(Callable[..., Any], self.function(**self.args))
            except TransformError as exc:
                exc.pipeline = pipeline
                raise
            except Exception as exc:
                raise _raised(f"WITH TRANSFORM PYTHON {target}", exc, pipeline) from exc
            self.args = {}

    def __call__(self, table: pa.Table) -> tuple[pa.Table, list[tuple[int, str]]]:
        """The function's table (with ``__row``), and the rows it rejected as (row id,
        reason)."""
        try:
            out = self.function(table, **self.args)
        except Exception as exc:
            what = f"transform {self.target} raised"
            raise _raised(what, exc, self.pipeline, "(traceback in STD_ERROR)") from exc
        if isinstance(out, pa.RecordBatch):
            out = pa.Table.from_batches([out])
        if not isinstance(out, pa.Table):
            raise self._error(f"returned {type(out).__name__}, not a pyarrow.Table")
        if ROW_COLUMN not in out.column_names:
            if out.num_rows != table.num_rows:
                raise self._error(
                    f"returned {out.num_rows} rows of {table.num_rows} without the {ROW_COLUMN} "
                    "column: keep it when filtering, so that each row still names its record"
                )
            out = out.append_column(ROW_COLUMN, table.column(ROW_COLUMN))
        refused: list[tuple[int, str]] = []
        if REJECT_COLUMN in out.column_names:
            reasons = out.column(REJECT_COLUMN)
            if reasons.null_count < len(reasons):
                marked = pc.is_valid(reasons)
                failing = out.filter(marked)
                refused = list(
                    zip(
                        failing.column(ROW_COLUMN).to_pylist(),
                        map(str, failing.column(REJECT_COLUMN).to_pylist()),
                        strict=True,
                    )
                )
                out = out.filter(pc.invert(marked))
            out = out.drop_columns([REJECT_COLUMN])
        return out, refused

    def _error(self, what: str) -> TransformError:
        return TransformError(f"transform {self.target} {what}", pipeline=self.pipeline)
