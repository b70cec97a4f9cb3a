"""Estimated performance end to end: ``aither.log_reference`` with a real classifier's scores and labels, the
wrapped model's traffic under a planted covariate shift, no label at all, and the estimate read back typed
(``aither.models.performance``) and watched by a monitor (``aither.monitors``)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import aither
from aither.testing import LiveServer
from aither.testing import live_server as serving
from aither.testing._server import ADMIN_KEY


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    with serving(tmp_path) as server:
        yield server


def test_a_shifted_classifier_is_estimated_and_alerts_before_any_label(live_server: LiveServer) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    order = np.random.default_rng(3).permutation(len(y))
    train, reference, held_out = order[:190], order[190:380], order[380:]
    model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000)).fit(X[train], y[train])

    stored = aither.log_reference(
        "tumours", X[reference], predictions=model.predict_proba(X[reference]), labels=y[reference]
    )
    assert stored["estimator"]["method"] == "isotonic" and stored["estimator"]["classes"] == 2
    assert stored["rows"] == 190 and "estimator" not in aither.log_reference(
        "other", X[reference], predictions=model.predict(X[reference]), labels=y[reference]
    )

    # Covariate shift: the held-out rows with the largest tumours (feature 0) are the ones that arrive.
    shifted = held_out[np.argsort(X[held_out, 0])[-120:]]
    tracked = aither.wrap(model, name="tumours")
    for start in range(0, 120, 30):
        tracked.predict_proba(X[shifted[start : start + 30]])
    assert aither.flush(timeout=30)

    (point,) = [p for p in aither.models.performance("tumours") if p.rows]
    assert point.rows == 120 and point.labels == 0 and point.waiting_for_labels and point.realized == {}
    realized = float(np.mean(model.predict(X[shifted]) == y[shifted]))
    accuracy = point.estimated["accuracy"]
    assert accuracy.low is not None and accuracy.high is not None and accuracy.low <= realized <= accuracy.high
    assert point.estimated_confusion_matrix is not None and sum(
        map(sum, point.estimated_confusion_matrix)
    ) == pytest.approx(120)

    monitor = aither.monitors.create("estimated accuracy", "tumours", "estimated_accuracy", "<", 0.999, window="1h")
    evaluated = aither.monitors.evaluate(monitor.id)
    assert evaluated.state == "ALERT" and evaluated.rows == 120
    assert evaluated.value == pytest.approx(accuracy.value)
    assert live_server.get("/api/v1/models/tumours/metrics")["labels"] == 0


def _doc_example() -> str:
    """The worked example of docs/estimated-performance.md, as written there."""
    text = (Path(__file__).parents[1] / "docs" / "estimated-performance.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert len(blocks) == 1
    return str(blocks[0])


def test_the_worked_example_runs_as_written(live_server: LiveServer) -> None:
    env = {**os.environ, "AITHER_API_KEY": ADMIN_KEY, "AITHER_BASE_URL": live_server.url}
    done = subprocess.run(
        [sys.executable, "-c", _doc_example()], env=env, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    found = re.search(
        r"estimated accuracy ([0-9.]+), band ([0-9.]+) to ([0-9.]+), 80 rows, waiting for labels: True", done.stdout
    )
    assert found is not None, done.stdout
    value, low, high = map(float, found.groups())
    assert low <= value <= high
    (monitor,) = live_server.get("/api/v1/monitors")["data"]
    assert monitor["metric"] == "estimated_accuracy"


def test_a_regressor_wrapped_with_every_column_is_estimated_before_labels(live_server: LiveServer) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    X, y = load_diabetes(return_X_y=True)
    rng = np.random.default_rng(0)
    X = np.hstack([X, rng.normal(0, 0.05, (len(y), 5))])  # 15 columns: more than the default window of 10
    order = rng.permutation(len(y))
    train, reference, held_out = order[:150], order[150:300], order[300:]
    model = Ridge(alpha=0.1).fit(X[train], y[train])
    stored = aither.log_reference("sugar", X[reference], predictions=model.predict(X[reference]), labels=y[reference])
    assert stored["estimator"]["task"] == "regression"

    tracked = aither.wrap(model, name="sugar", sample_rows=35, sample_columns=None)
    shifted = held_out[np.argsort(X[held_out, 2])[-70:]]
    for start in range(0, 70, 35):
        tracked.predict(X[shifted[start : start + 35]])
    assert aither.flush(timeout=30)
    (recent, *_) = live_server.get("/api/v1/models/sugar/predictions", limit=1)["data"]
    assert len(recent["sampled_rows"][0]["features"]) == 15  # every column, not the default window of 10
    (point,) = [p for p in live_server.get("/api/v1/models/sugar/performance")["points"] if p["rows"]]
    errors = model.predict(X[shifted]) - y[shifted]
    low, high = point["estimated"]["mae"]["band"]
    assert point["rows"] == 70 and low <= float(np.mean(np.abs(errors))) <= high
