"""Model scoring in a pipeline: the shipped Python transform ``sluice.transforms.models:Score``.

::

    WITH TRANSFORM PYTHON 'sluice.transforms.models:Score'
        '{"model": "/models/drill.onnx", "inputs": ["temp_c", "vib_mm_s"], "output": "risk"}'

The model is loaded once per pipeline, when the pipeline is compiled, and scores each batch as a
whole: the input columns become one float matrix (numpy views of the Arrow columns), the model
runs once, its scores become the column ``output``. A classifier's score is the probability of
its last class (the positive one), a regressor's its prediction. Rows the model cannot score, a
NULL input or a value that is not a number, are rejected with the reason, never scored NULL.

Formats, by the model file's extension (or ``"format"``): ``.onnx`` (onnxruntime), ``.joblib`` /
``.pkl`` (a scikit-learn estimator or pipeline, loaded with joblib: load only files you trust),
``.pmml`` (sklearn-pmml-model, pure Python). ``pip install 'sluice[models]'`` installs them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sluice.errors import TransformError
from sluice.transforms.python import reject
from sluice.vocab import is_text

# onnxruntime (1.32) opens a telemetry store in ~/.cache and reports to Microsoft unless told not
# to when it is imported; a database's scoring has no business doing either.
os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

FORMATS = {".onnx": "onnx", ".joblib": "sklearn", ".pkl": "sklearn", ".pmml": "pmml"}
Predict = Callable[[np.ndarray], np.ndarray]  # float64 (rows, inputs) → one score per row
Refusal = tuple[pa.Array, str]  # (the rows, as a boolean mask; why they cannot be scored)
_NUMBER = r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$"


class Score:
    """A model and the columns it reads; called on each batch's typed Arrow table."""

    def __init__(
        self,
        model: str,
        inputs: Sequence[str],
        output: str = "score",
        format: str | None = None,
    ) -> None:
        path = model.removeprefix("file://")
        if not os.path.isfile(path):
            raise TransformError(f"model file {path} does not exist")
        kind = format or FORMATS.get(os.path.splitext(path)[1].lower(), "")
        if kind not in FORMATS.values():
            raise TransformError(
                f"model {path}: say its format, one of {sorted(set(FORMATS.values()))} "
                f'("format": ...), or name it {", ".join(FORMATS)}'
            )
        if not inputs:
            raise TransformError('model scoring needs "inputs": the columns the model reads')
        self.path, self.kind, self.inputs, self.output = path, kind, tuple(inputs), output
        self.predict: Predict = _LOADERS[kind](path, self.inputs)

    def __call__(self, table: pa.Table) -> pa.Table:
        missing = [c for c in self.inputs if c not in table.column_names]
        if missing:
            raise TransformError(
                f"model {os.path.basename(self.path)} reads {missing}, which the batch does not "
                f"have (it has {[c for c in table.column_names if not c.startswith('__')]})"
            )
        columns, unscorable = [], np.zeros(table.num_rows, dtype=bool)
        for name in self.inputs:
            values, refused = _as_float(table.column(name), name)
            columns.append(values)
            for rows, reason in refused:
                table = reject(table, rows, reason)  # a row keeps its first reason
                unscorable |= np.asarray(rows.to_numpy(zero_copy_only=False), dtype=bool)
        matrix = np.column_stack(columns)
        scores = np.full(table.num_rows, np.nan)
        keep = ~unscorable
        if keep.all():
            scores = self.predict(matrix)
        elif keep.any():
            scores[keep] = self.predict(matrix[keep])
        return table.append_column(self.output, pa.array(scores, pa.float64()))


def _as_float(column: pa.ChunkedArray, name: str) -> tuple[np.ndarray, list[Refusal]]:
    """The column as float64 (NaN where it cannot be scored), and the rows that cannot be, with
    why. Text is read as numbers where it holds one (vectorised: a pattern, then one cast)."""
    values = column.combine_chunks()
    refused: list[Refusal] = []
    if pa.types.is_boolean(values.type):
        values = values.cast(pa.int8())
    elif is_text(values.type):
        text = pc.utf8_trim_whitespace(values)
        number = pc.fill_null(pc.match_substring_regex(text, _NUMBER), True)
        if not pc.all(number).as_py():
            refused.append((pc.invert(number), f"model input {name} is not a number"))
            text = pc.if_else(number, text, pa.scalar(None, text.type))
        values = text
    elif not (pa.types.is_integer(values.type) or pa.types.is_floating(values.type)):
        raise TransformError(
            f"model input {name} is {values.type}, not a number: load it into a numeric column"
        )
    if values.null_count:
        refused.append(
            (pc.is_null(values), f"model input {name} is NULL: the model cannot score it")
        )
    as_float = values.cast(pa.float64()).fill_null(np.nan)
    return np.asarray(as_float.to_numpy(zero_copy_only=False)), refused


def _onnx(path: str, inputs: Sequence[str]) -> Predict:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise _install("onnxruntime") from exc
    options = ort.SessionOptions()
    options.log_severity_level = 3
    # One thread: the pipeline's other stages use the other cores. Measured on 2 cores (100k
    # rows a call, a 100-tree classifier): two threads scored 1M rows in 0.98 s with 2.16 CPU-s,
    # one thread in 1.12 s with 1.11 CPU-s.
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    feed = session.get_inputs()[0]
    outputs = [o.name for o in session.get_outputs()]
    # a classifier converted with zipmap off gives (label, probabilities); a regressor, values
    wanted = "probabilities" if "probabilities" in outputs else outputs[0]
    dtype = np.float64 if "double" in feed.type else np.float32

    def predict(x: np.ndarray) -> np.ndarray:
        (out,) = session.run([wanted], {feed.name: x.astype(dtype, copy=False)})
        if isinstance(out, list):
            raise TransformError(
                f"ONNX model {path} returns probabilities as a list of maps: convert it with "
                "options={'zipmap': False}"
            )
        out = np.asarray(out, dtype=np.float64)
        return out[:, -1] if out.ndim == 2 else out

    return predict


def _sklearn(path: str, inputs: Sequence[str]) -> Predict:
    try:
        import joblib
        import pandas as pd
    except ImportError as exc:
        raise _install("scikit-learn") from exc
    model = joblib.load(path)
    named = hasattr(model, "feature_names_in_")
    return _estimator(model, list(inputs) if named else None, pd)


def _pmml(path: str, inputs: Sequence[str]) -> Predict:
    try:
        import pandas as pd
        from sklearn_pmml_model.auto_detect import auto_detect_estimator
    except ImportError as exc:
        raise _install("sklearn-pmml-model") from exc
    return _estimator(auto_detect_estimator(pmml=path), list(inputs), pd)


def _estimator(model: Any, names: list[str] | None, pd: Any) -> Predict:
    proba = getattr(model, "predict_proba", None)

    def predict(x: np.ndarray) -> np.ndarray:
        rows = pd.DataFrame(x, columns=names) if names is not None else x
        if proba is not None:
            return np.asarray(proba(rows), dtype=np.float64)[:, -1]
        return np.asarray(model.predict(rows), dtype=np.float64).ravel()

    return predict


def _install(package: str) -> TransformError:
    return TransformError(f"model scoring needs {package}: pip install 'sluice[models]'")


_LOADERS: dict[str, Callable[[str, Sequence[str]], Predict]] = {
    "onnx": _onnx,
    "sklearn": _sklearn,
    "pmml": _pmml,
}
