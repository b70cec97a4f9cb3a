"""SDK -> server -> query API: what a wrapped scikit-learn model logs comes back as the right numbers."""

from __future__ import annotations

import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from sklearn import metrics as skm
from sklearn.datasets import load_iris
from sklearn.linear_model import LinearRegression, LogisticRegression

import aither
from aither import _client
from aither.testing import LiveServer
from aither.testing import live_server as serving


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The server on a free port, and aither.init pointed at it with its admin key; restored afterwards."""
    with serving(tmp_path) as server:
        yield server


def test_wrapped_classifier_metrics_from_the_server_equal_sklearn_on_what_was_labelled(
    live_server: LiveServer,
) -> None:
    X, y = load_iris(return_X_y=True)
    model = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    tracked = aither.wrap(model, name="iris", version="2", environment="test")
    X_test, y_test = X[1::2], y[1::2]
    y_true: list[int] = []
    y_pred: list[int] = []
    rows = 0
    for start in range(0, 60, 12):  # batches: labelled as a whole, or some rows one by one
        pred = tracked.predict(X_test[start : start + 12])
        rows += len(pred)
        if start % 24 == 0:
            aither.log_label(tracked.last_trace_id, y_test[start : start + 12].tolist())
            y_true += y_test[start : start + 12].tolist()
            y_pred += pred.tolist()
        else:
            for row in (0, 5, 11):
                aither.log_label(tracked.last_trace_id, int(y_test[start + row]), row=row)
                y_true.append(int(y_test[start + row]))
                y_pred.append(int(pred[row]))
    singles = []
    for i in range(60, 75):  # single rows; their labels arrive after all predictions were delivered
        tracked.predict(X_test[i : i + 1])
        singles.append((tracked.last_trace_id, i))
        rows += 1
    assert aither.flush(timeout=30)
    for trace_id, i in singles[::2]:
        aither.log_label(trace_id, int(y_test[i]))
        y_true.append(int(y_test[i]))
        y_pred.append(int(model.predict(X_test[i : i + 1])[0]))
    assert aither.flush(timeout=30)

    m = live_server.get("/api/v1/models/iris/metrics", version="2", environment="test")
    assert (m["calls"], m["predictions"], m["labels"]) == (20, rows, len(y_true))
    assert m["label_coverage"] == pytest.approx(len(y_true) / rows)
    assert m["task"] == "classification"
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["latency_ms"]["p50"] is not None and m["error_rate"] == 0.0
    (model_entry,) = live_server.get("/api/v1/models")["data"]
    assert (model_entry["name"], model_entry["versions"], model_entry["environments"]) == ("iris", ["2"], ["test"])


def test_predict_proba_auc_from_the_server_equals_sklearn(live_server: LiveServer) -> None:
    X, y = load_iris(return_X_y=True)
    binary = y != 2
    X, y = X[binary], y[binary]
    X = X + np.random.default_rng(0).normal(0, 1.0, X.shape)  # overlap, so AUC is not trivially 1
    model = LogisticRegression(max_iter=500).fit(X[::2], y[::2])
    tracked = aither.wrap(model, name="proba")
    scores, truth = [], []
    for start in range(0, 50, 10):
        proba = tracked.predict_proba(X[1::2][start : start + 10])
        aither.log_label(tracked.last_trace_id, y[1::2][start : start + 10].tolist())
        scores += proba[:, 1].tolist()
        truth += y[1::2][start : start + 10].tolist()
    assert aither.flush(timeout=30)
    m = live_server.get("/api/v1/models/proba/metrics")
    assert m["auc"] == pytest.approx(skm.roc_auc_score(truth, scores))


def test_wrapped_regressor_gets_mae_and_rmse_equal_to_sklearn(live_server: LiveServer) -> None:
    rng = np.random.default_rng(1)
    X = rng.normal(size=(80, 3))
    y = X @ [1.5, -2.0, 0.5] + rng.normal(0, 0.3, 80)
    model = LinearRegression().fit(X[:40], y[:40])
    tracked = aither.wrap(model, name="reg")
    pred = tracked.predict(X[40:])
    aither.log_label(tracked.last_trace_id, y[40:].tolist())
    assert aither.flush(timeout=30)
    m = live_server.get("/api/v1/models/reg/metrics")
    assert m["task"] == "regression"
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y[40:], pred))
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y[40:], pred)))


def test_log_prediction_and_errors_show_up_in_recent_predictions(live_server: LiveServer) -> None:
    trace_id = aither.log_prediction("manual", {"amount": 150.0, "country": "US"}, 0.87, version="1.2.3")
    aither.log_label(trace_id, 1)

    class Broken:
        def predict(self, X: object) -> object:
            raise ValueError("no model here")

    tracked = aither.wrap(Broken(), name="broken")
    with pytest.raises(ValueError):
        tracked.predict([[1, 2]])
    assert aither.flush(timeout=30)
    found = live_server.get(f"/api/v1/predictions/{trace_id}")
    assert found["prediction"] == 0.87
    assert found["labels"] == {"0": 1}
    assert found["version"] == "1.2.3"
    broken = live_server.get("/api/v1/models/broken/metrics")
    assert (broken["calls"], broken["errors"], broken["predictions"]) == (1, 1, 0)
    (call,) = live_server.get("/api/v1/models/broken/predictions")["data"]
    assert call["status"] == "error" and "no model here" in call["error"]


def test_demo_runs_end_to_end_and_reports_labels(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from aither_server import demo

    monkeypatch.delenv("AITHER_BOOTSTRAP_KEY", raising=False)
    previous = _client.get_client()
    try:
        assert demo.main(["--db", str(tmp_path / "demo.db")]) == 0
    finally:
        _client.restore(previous)
    out = capsys.readouterr().out
    assert "label coverage" in out and "accuracy" in out
    assert str(tmp_path / "demo.db") in out
    assert "curl -H" in out and "/api/v1/models/breast-cancer-demo/metrics" in out
