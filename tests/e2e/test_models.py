"""Model scoring in the pipeline: one drill model as ONNX, scikit-learn and PMML, scoring the
same readings the same way, on both stores."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

import sluice
from sluice import drill
from sluice.testing import LocalBroker, produce
from sluice.transforms import models
from tests.e2e.helpers import kafka

COLUMNS = ", ".join(f"{f} DOUBLE PRECISION" for f in drill.FEATURES)
MAPPING = ", ".join(["id <- id", *(f"{f} <- {f}" for f in drill.FEATURES)])


@pytest.fixture(scope="session")
def trained(tmp_path_factory: pytest.TempPathFactory) -> drill.Trained:
    return drill.train(tmp_path_factory.mktemp("models"), n=4_000)


@pytest.fixture
def loads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The model files loaded while the test runs."""
    seen: list[str] = []
    for kind, loader in list(models._LOADERS.items()):

        def counted(path: str, inputs: object, loader: Callable[..., object] = loader) -> object:
            seen.append(path)
            return loader(path, inputs)

        monkeypatch.setitem(models._LOADERS, kind, counted)
    yield seen


def sensor_readings(n: int) -> tuple[np.ndarray, list[bytes]]:
    x, _ = drill.simulate(n, seed=11)
    docs = [
        json.dumps({"id": i, **dict(zip(drill.FEATURES, map(float, row), strict=True))}).encode()
        for i, row in enumerate(x)
    ]
    return x, docs


def test_the_three_formats_score_the_same_rows_the_same(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    trained: drill.Trained,
    loads: list[str],
) -> None:
    assert trained.accuracy > trained.baseline + 0.05  # the score means something
    assert trained.pmml is not None, "PMML needs Java: make test installs a JRE"
    x, docs = sensor_readings(600)
    name = topic(2)
    produce(broker.bootstrap, name, docs, partitions=2)
    import joblib
    import pandas as pd

    frame = pd.DataFrame(x, columns=list(drill.FEATURES))
    truth = joblib.load(trained.joblib).predict_proba(frame)[:, 1]
    scores = {}
    for path in (trained.onnx, trained.joblib, trained.pmml):
        table = f"t_{path.suffix[1:]}"
        db.execute(f"CREATE TABLE {table} (id INTEGER, {COLUMNS}, risk DOUBLE PRECISION)")
        args = json.dumps({"model": str(path), "inputs": list(drill.FEATURES), "output": "risk"})
        db.execute(
            f"CREATE PIPELINE p_{path.suffix[1:]} AS LOAD DATA KAFKA {kafka(broker, name)} "
            "MAX_OFFSETS_PER_BATCH_PARTITION 100 "
            f"WITH TRANSFORM PYTHON 'sluice.transforms.models:Score' '{args}' "
            f"INTO TABLE {table} FORMAT JSON ({MAPPING})"
        )
        batches = db.execute(f"START PIPELINE p_{path.suffix[1:]} FOREGROUND").fetchall()
        assert len(batches) >= 3 and sum(b[2] for b in batches) == 600
        rows = db.execute(f"SELECT id, risk FROM {table} ORDER BY id").fetchall()
        scores[path.suffix] = np.array([risk for _, risk in rows])
    # each model was loaded once for its pipeline's run, not once per batch (CREATE checks it too)
    assert sorted(loads) == sorted(2 * [str(trained.onnx), str(trained.joblib), str(trained.pmml)])
    np.testing.assert_allclose(scores[".joblib"], truth, rtol=0, atol=1e-12)
    np.testing.assert_allclose(scores[".pmml"], truth, rtol=0, atol=1e-9)
    np.testing.assert_allclose(scores[".onnx"], truth, rtol=0, atol=1e-5)  # float32 inside


def test_rows_the_model_cannot_score_are_rejected_with_the_reason(
    db: sluice.Connection,
    broker: LocalBroker,
    topic: Callable[..., str],
    trained: drill.Trained,
) -> None:
    _, docs = sensor_readings(4)
    bad = json.loads(docs[1])
    bad["temp_c"] = None
    worse = json.loads(docs[2])
    worse["vib_mm_s"] = "loud"
    docs[1], docs[2] = json.dumps(bad).encode(), json.dumps(worse).encode()
    name = topic(1)
    produce(broker.bootstrap, name, docs)
    # vib_mm_s is text here, so that a value that is not a number reaches the model
    columns = COLUMNS.replace("vib_mm_s DOUBLE PRECISION", "vib_mm_s VARCHAR")
    db.execute(f"CREATE TABLE t (id INTEGER, {columns}, risk DOUBLE PRECISION)")
    args = json.dumps(
        {"model": str(trained.onnx), "inputs": list(drill.FEATURES), "output": "risk"}
    )
    db.execute(
        f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} SKIP PARSER ERRORS "
        f"WITH TRANSFORM PYTHON 'sluice.transforms.models:Score' '{args}' "
        f"INTO TABLE t FORMAT JSON ({MAPPING})"
    )
    db.execute("START PIPELINE p FOREGROUND")
    rows = db.execute("SELECT id, risk IS NOT NULL FROM t ORDER BY id").fetchall()
    assert rows == [(0, True), (3, True)]
    refused = db.execute(
        'SELECT "OFFSET", ERROR_KIND, ERROR_MESSAGE FROM information_schema.PIPELINES_ERRORS '
        "ORDER BY 1"
    ).fetchall()
    assert refused == [
        (1, "Transform", "model input temp_c is NULL: the model cannot score it"),
        (2, "Transform", "model input vib_mm_s is not a number"),
    ]


def test_bad_model_settings_are_named_at_create(
    db: sluice.Connection, broker: LocalBroker, topic: Callable[..., str], tmp_path: Path
) -> None:
    name = topic(1)
    db.execute(f"CREATE TABLE t (id INTEGER, {COLUMNS}, risk DOUBLE PRECISION)")
    (tmp_path / "m.bin").write_bytes(b"")
    cases = {
        json.dumps({"model": str(tmp_path / "none.onnx"), "inputs": ["x"]}): "does not exist",
        json.dumps({"model": str(tmp_path / "m.bin"), "inputs": ["x"]}): "say its format",
        json.dumps({"inputs": ["x"]}): "missing 1 required positional argument: 'model'",
    }
    for args, reason in cases.items():
        with pytest.raises(sluice.SluiceError, match=reason):
            db.execute(
                f"CREATE PIPELINE p AS LOAD DATA KAFKA {kafka(broker, name)} "
                f"WITH TRANSFORM PYTHON 'sluice.transforms.models:Score' '{args}' "
                f"INTO TABLE t FORMAT JSON ({MAPPING})"
            )
