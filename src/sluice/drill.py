"""The drill-health model of the demo: simulated sensor readings whose failures really follow
from the sensor values, a gradient-boosted classifier trained on them, saved as ONNX, as a
scikit-learn estimator (joblib) and as PMML (the format of the architecture Sluice replaces).

``python -m sluice.drill [directory]`` trains it and prints its accuracy on held-out readings.

The physics, in short: a drill fails soon when its bit is worn. Wear shows as heat (friction),
vibration (a chipped bit) and torque out of proportion to the speed; pressure matters less.
A reading's chance of failing soon is a logistic function of those, so the label is noisy, as a
real one is, and a model can learn it only from the values.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FEATURES = ("temp_c", "vib_mm_s", "rpm", "torque_knm", "pressure_bar")
TREES = 100


def readings(n: int, rng: np.random.Generator, wear: np.ndarray | None = None) -> np.ndarray:
    """``n`` readings (one row each, columns ``FEATURES``) of drills with the given ``wear``
    (0 new … 1 worn out; drawn at random if not given)."""
    if wear is None:
        wear = rng.beta(1.5, 2.5, n)
    rpm = rng.normal(130, 15, n)
    temp = 65 + 30 * wear**1.5 + 0.05 * (rpm - 130) + rng.normal(0, 2.0, n)
    vib = 2.0 + 3.0 * wear**2 + rng.normal(0, 0.35, n)
    torque = 0.09 * rpm * (1 + 0.6 * wear) + rng.normal(0, 1.0, n)
    pressure = rng.normal(210, 12, n) - 10 * wear
    return np.column_stack([temp, vib, rpm, torque, pressure])


def failure_chance(x: np.ndarray) -> np.ndarray:
    """The chance that a drill reading ``x`` fails within the hour: what the model learns."""
    temp, vib, rpm, torque, pressure = x.T
    strain = torque / (0.09 * rpm) - 1  # torque beyond what the speed needs
    z = 0.35 * (temp - 78) + 2.0 * (vib - 3.0) + 8.0 * (strain - 0.25) - 0.02 * (pressure - 205)
    return np.asarray(1 / (1 + np.exp(-z)))


def simulate(n: int, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = readings(n, rng)
    y = (rng.random(n) < failure_chance(x)).astype(np.int64)
    return x, y


@dataclass(frozen=True)
class Trained:
    onnx: Path
    joblib: Path
    pmml: Path | None  # None without Java (sklearn2pmml runs the JPMML converter)
    accuracy: float  # on held-out readings
    baseline: float  # always guessing the majority class
    seconds: float


def train(directory: str | os.PathLike[str], n: int = 40_000, seed: int = 7) -> Trained:
    """Train on ``n`` simulated readings (a quarter held out) and save the three formats."""
    os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")  # see sluice.transforms.models
    import joblib
    import pandas as pd
    from skl2onnx import to_onnx
    from sklearn.ensemble import GradientBoostingClassifier

    t0 = time.perf_counter()
    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    x, y = simulate(n, seed)
    cut = n * 3 // 4
    frame = pd.DataFrame(x[:cut], columns=list(FEATURES))
    model = GradientBoostingClassifier(n_estimators=TREES, max_depth=3, random_state=seed)
    if shutil.which("java"):
        from sklearn2pmml import sklearn2pmml
        from sklearn2pmml.pipeline import PMMLPipeline

        target = pd.Series(y[:cut], name="fails_soon")
        pipeline = PMMLPipeline([("model", model)]).fit(frame, target)
        pmml: Path | None = out / "drill.pmml"
        with contextlib.redirect_stdout(io.StringIO()):  # the converter's banner
            sklearn2pmml(pipeline, str(pmml))
    else:
        model.fit(frame, y[:cut])
        pmml = None
    held_out = model.predict(pd.DataFrame(x[cut:], columns=list(FEATURES)))
    accuracy = float((held_out == y[cut:]).mean())
    baseline = float(max(y[cut:].mean(), 1 - y[cut:].mean()))
    joblib.dump(model, out / "drill.joblib")
    onnx = to_onnx(model, x[:1].astype(np.float32), options={"zipmap": False})
    (out / "drill.onnx").write_bytes(onnx.SerializeToString())
    return Trained(
        out / "drill.onnx", out / "drill.joblib", pmml, accuracy, baseline,
        time.perf_counter() - t0,
    )  # fmt: skip


def main(argv: list[str]) -> int:
    directory = argv[0] if argv else "models"
    trained = train(directory)
    print(
        f"drill model ({TREES} trees, features {', '.join(FEATURES)}) trained in "
        f"{trained.seconds:.1f} s: accuracy {trained.accuracy:.3f} on held-out readings "
        f"(always guessing the commoner outcome: {trained.baseline:.3f})"
    )
    for path in (trained.onnx, trained.joblib, trained.pmml):
        if path is not None:
            print(f"  {path}")
    if trained.pmml is None:
        print("  (no PMML: sklearn2pmml needs Java; install a JRE to write it)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
