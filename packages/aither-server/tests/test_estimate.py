"""Estimated performance (CBPE): a real classifier's scores under a planted covariate shift, estimated per closed
hour from a reference's calibration, against the realized figures of the same rows computed here."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Server, serve_at
from otlp_builders import label_span, new_trace_id, prediction_span
from sklearn.datasets import load_breast_cancer, load_wine
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aither._calibration import classifier_estimator

HOUR = 3600 * 1_000_000_000
METRICS = ("accuracy", "precision", "recall", "f1", "auc")


class Split:
    """A model fitted on one part of a real data set, its reference part, and its held-out rows."""

    def __init__(self, X: Any, y: Any, seed: int = 0) -> None:
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(y))
        third = len(y) // 3
        train, reference, self.held_out = order[:third], order[third : 2 * third], order[2 * third :]
        self.X, self.y = X, y
        self.model = make_pipeline(StandardScaler(), LogisticRegression(C=0.05, max_iter=2000))
        self.model.fit(X[train], y[train])
        self.estimator = classifier_estimator(self.model.predict_proba(X[reference]), y[reference])
        self.rng = rng

    def shifted(self, column: int, size: int, strength: float) -> Any:
        """Held-out rows drawn with a probability growing with one feature: the inputs move, P(y | x) does not."""
        values = self.X[self.held_out, column]
        weights = np.exp(strength * (values - values.mean()) / values.std())
        chosen = self.rng.choice(len(values), size=size, replace=False, p=weights / weights.sum())
        return self.held_out[chosen]


@pytest.fixture(scope="module")
def cancer() -> Split:
    X, y = load_breast_cancer(return_X_y=True)
    return Split(X, y)


def _hour_start(hours_ago: int) -> int:
    now = time.time_ns()
    return now - now % HOUR - hours_ago * HOUR


def _send(server: Server, split: Split, rows: Any, start_ns: int, model: str = "clf", **span: Any) -> list[bytes]:
    """Batches of 20 rows' ``predict_proba`` output inside the hour from ``start_ns``; their trace ids."""
    spans, traces = [], []
    for i in range(0, len(rows), 20):
        trace_id = new_trace_id()
        proba = split.model.predict_proba(split.X[rows[i : i + 20]]).tolist()
        spans.append(
            prediction_span(
                model, proba, trace_id=trace_id, method="predict_proba", start_ns=start_ns + i * 1_000_000, **span
            )
        )
        traces.append(trace_id)
    assert server.ingest(spans).status_code == 200
    return traces


def _post_estimator(server: Server, estimator: Any, model: str = "clf") -> None:
    response = server.http.post(f"/api/v1/models/{model}/estimators", json={"name": "training", "estimator": estimator})
    assert response.status_code == 201, response.text


def _performance(server: Server, start_ns: int, end_ns: int, model: str = "clf") -> list[dict[str, Any]]:
    found = server.get(
        f"/api/v1/models/{model}/performance",
        bucket="1h",
        start=f"{start_ns / 1e9:.0f}",
        end=f"{end_ns / 1e9:.0f}",
    )
    points: list[dict[str, Any]] = found["points"]
    return points


def _realized(split: Split, rows: Any) -> dict[str, float]:
    """The figures the labels will show, computed here from the true classes."""
    proba = split.model.predict_proba(split.X[rows])
    predicted, truth = proba.argmax(axis=1), split.y[rows]
    classes = range(proba.shape[1])
    tp = [np.sum((predicted == c) & (truth == c)) for c in classes]
    precision = [tp[c] / max(np.sum(predicted == c), 1) for c in classes]
    recall = [tp[c] / max(np.sum(truth == c), 1) for c in classes]
    f1 = [2 * tp[c] / (np.sum(predicted == c) + np.sum(truth == c)) for c in classes]
    auc = (
        roc_auc_score(truth, proba[:, 1])
        if proba.shape[1] == 2
        else np.mean([roc_auc_score(truth == c, proba[:, c]) for c in classes])
    )
    return {
        "accuracy": float(np.mean(predicted == truth)),
        "precision": float(np.mean(precision)),
        "recall": float(np.mean(recall)),
        "f1": float(np.mean(f1)),
        "auc": float(auc),
    }


def test_estimates_of_shifted_hours_hold_the_realized_figures_in_their_bands(server: Server, cancer: Split) -> None:
    start = _hour_start(5)
    hours = [cancer.shifted(0, 60, strength) for strength in (0.0, 1.0, -1.5)]
    traces = [_send(server, cancer, rows, start + i * HOUR) for i, rows in enumerate(hours)]
    _post_estimator(server, cancer.estimator)
    points = _performance(server, start, start + 3 * HOUR)
    assert [p["rows"] for p in points] == [60, 60, 60]
    for point, rows in zip(points, hours, strict=True):
        assert point["waiting_for_labels"] and point["realized"] is None and point["labels"] == 0
        truth = _realized(cancer, rows)
        for metric in METRICS:
            low, high = point["estimated"][metric]["band"]
            assert low <= truth[metric] <= high, (metric, point["estimated"][metric], truth[metric])
        matrix = np.asarray(point["estimated"]["confusion_matrix"])
        assert matrix.sum() == pytest.approx(60)
        # The predicted classes (rows of the matrix) are counted, only the true ones estimated.
        predicted = cancer.model.predict(cancer.X[rows])
        assert matrix.sum(axis=1) == pytest.approx([np.sum(predicted == 0), np.sum(predicted == 1)])

    # Labels for the second hour: its realized figures join the estimate, exactly as computed here.
    for trace_id, i in zip(traces[1], range(0, 60, 20), strict=True):
        assert server.ingest([label_span(trace_id, cancer.y[hours[1][i : i + 20]].tolist())]).status_code == 200
    points = _performance(server, start, start + 3 * HOUR)
    assert [p["waiting_for_labels"] for p in points] == [True, False, True]
    realized = points[1]["realized"]
    assert realized["labels"] == 60 and points[1]["labels"] == 60
    for metric in METRICS:
        assert realized[metric] == pytest.approx(_realized(cancer, hours[1])[metric])
    assert realized["accuracy"] == pytest.approx(
        server.metrics("clf", start=points[1]["start"], end=points[1]["end"])["accuracy"]
    )


def test_closed_hours_are_computed_once_and_a_new_reference_replaces_them(server: Server, cancer: Split) -> None:
    start = _hour_start(3)
    _send(server, cancer, cancer.shifted(3, 40, 1.0), start)
    _post_estimator(server, cancer.estimator)
    first = _performance(server, start, start + 2 * HOUR)
    cached = server.sql("SELECT model_id, hour, rows FROM estimate_hours ORDER BY hour")
    assert [(hour, rows) for _, hour, rows in cached] == [(start, 40), (start + HOUR, 0)]
    assert _performance(server, start, start + 2 * HOUR) == first

    # A reference whose calibration says every score means 50%: the estimate follows it, not the old cache.
    flat = json.loads(json.dumps(cancer.estimator))
    flat["calibration"] = [{"x": [0.0, 1.0], "y": [0.5, 0.5]}]
    _post_estimator(server, flat)
    assert server.sql("SELECT count(*) FROM estimate_hours") == [(0,)]
    again = _performance(server, start, start + 2 * HOUR)
    assert again[0]["estimated"]["accuracy"]["value"] == pytest.approx(0.5)
    assert again[1]["estimated"] is None and not again[1]["waiting_for_labels"]


def test_sampled_spans_weigh_one_over_their_sample_rate(server: Server, cancer: Split) -> None:
    start = _hour_start(2)
    _send(server, cancer, cancer.shifted(0, 20, 0.0), start, sample_rate=0.25)
    _post_estimator(server, cancer.estimator)
    (point,) = _performance(server, start, start + HOUR)
    assert point["rows"] == 20 and point["estimated"]["weighted_rows"] == pytest.approx(80)
    assert sum(map(sum, point["estimated"]["confusion_matrix"])) == pytest.approx(80)


def test_a_multiclass_model_is_estimated_one_vs_rest(server: Server) -> None:
    X, y = load_wine(return_X_y=True)
    wine = Split(X, y, seed=1)
    rows = wine.shifted(12, 50, 1.0)
    start = _hour_start(2)
    _send(server, wine, rows, start, model="wine")
    _post_estimator(server, wine.estimator, model="wine")
    (point,) = _performance(server, start, start + HOUR, model="wine")
    assert np.asarray(point["estimated"]["confusion_matrix"]).shape == (3, 3)
    truth = _realized(wine, rows)
    for metric in METRICS:
        low, high = point["estimated"][metric]["band"]
        assert low <= truth[metric] <= high, (metric, point["estimated"][metric], truth[metric])


def test_without_an_estimator_the_answer_says_so_and_bad_ones_are_refused(server: Server, cancer: Split) -> None:
    _send(server, cancer, cancer.held_out[:20], _hour_start(1))
    found = server.get("/api/v1/models/clf/performance")
    assert found["estimator"] is None and found["points"] == []
    assert server.http.get("/api/v1/models/nobody/performance").status_code == 404
    bad = json.loads(json.dumps(cancer.estimator))
    bad["calibration"][0]["y"] = [2.0] * len(bad["calibration"][0]["y"])
    response = server.http.post("/api/v1/models/clf/estimators", json={"estimator": bad})
    assert response.status_code == 400 and "[0, 1]" in response.json()["error"]["message"]
    response = server.http.post("/api/v1/models/clf/estimators", json={"estimator": {**bad, "classes": [1, 1]}})
    assert response.status_code == 400 and "distinct" in response.json()["error"]["message"]


@pytest.fixture
def monitor_server(database: Path | str) -> Iterator[Server]:
    yield from serve_at(database, monitor_interval_s=0)


def test_a_monitor_on_estimated_accuracy_fires_with_no_labels(monitor_server: Server, cancer: Split) -> None:
    server = monitor_server
    _send(server, cancer, cancer.shifted(0, 60, 1.5), time.time_ns() - 60 * 1_000_000_000)
    body = {"name": "est", "model": "clf", "metric": "estimated_accuracy", "op": "<", "threshold": 0.999}
    created = server.http.post("/api/v1/monitors", json={**body, "window": "1h", "min_rows": 10})
    assert created.status_code == 201, created.text
    monitor_id = created.json()["id"]
    evaluated = server.http.post(f"/api/v1/monitors/{monitor_id}/evaluate").json()
    assert evaluated["state"] == "NO_DATA"  # no reference yet: nothing to estimate from
    _post_estimator(server, cancer.estimator)
    evaluated = server.http.post(f"/api/v1/monitors/{monitor_id}/evaluate").json()
    assert evaluated["state"] == "ALERT" and evaluated["rows"] == 60
    assert server.metrics("clf")["labels"] == 0
    assert 0.5 < evaluated["value"] < 0.999


def _regression_spans(model: Any, X: Any, rows: Any, start_ns: int, sampled: int, columns: int = 10) -> list[Any]:
    """One call per 10 rows, ``sampled`` of them in ``ml.features`` with their first ``columns`` columns."""
    spans = []
    for i in range(0, len(rows), 10):
        batch = X[rows[i : i + 10]]
        picked = list(range(0, len(batch), max(1, len(batch) // sampled)))[:sampled]
        sample = [{str(c): float(batch[r, c]) for c in range(columns)} for r in picked]
        features = {"sample": sample, "_meta": {"rows": picked, "shape": list(batch.shape)}}
        spans.append(
            prediction_span("reg", model.predict(batch).tolist(), features=features, start_ns=start_ns + i * 1_000_000)
        )
    return spans


def test_a_regressors_mae_and_rmse_are_estimated_from_its_sampled_rows(server: Server) -> None:
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from aither._loss_model import regressor_estimator

    X, y = load_diabetes(return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    train, reference, held_out = order[:150], order[150:300], order[300:]
    model = Ridge(alpha=0.1).fit(X[train], y[train])
    estimator = regressor_estimator(X[reference], model.predict(X[reference]), y[reference])
    assert estimator is not None and estimator["task"] == "regression"
    shifted = held_out[np.argsort(X[held_out, 2])[-70:]]  # the highest body-mass index only
    start = _hour_start(3)
    assert server.ingest(_regression_spans(model, X, shifted, start, sampled=10)).status_code == 200
    # The next hour: half of each call's rows sampled, and only 4 of the 10 columns (a rotating window).
    assert server.ingest(_regression_spans(model, X, shifted, start + HOUR, sampled=5, columns=4)).status_code == 200
    _post_estimator(server, estimator, model="reg")
    points = _performance(server, start, start + 2 * HOUR, model="reg")
    errors = model.predict(X[shifted]) - y[shifted]
    realized = {"mae": float(np.mean(np.abs(errors))), "rmse": float(np.sqrt(np.mean(errors**2)))}
    assert [p["rows"] for p in points] == [70, 35]
    assert points[1]["estimated"]["weighted_rows"] == pytest.approx(70)  # each sampled row stands for two
    for point in points:
        assert point["waiting_for_labels"]
        for metric in ("mae", "rmse"):
            low, high = point["estimated"][metric]["band"]
            assert low <= realized[metric] <= high, (metric, point["estimated"][metric], realized)

    spans = _regression_spans(model, X, shifted[:10], start + 2 * HOUR + 10**9, sampled=10)
    labelled = [label_span(spans[0].trace_id, y[shifted[:10]].tolist())]
    assert server.ingest(spans + labelled).status_code == 200
    point = _performance(server, start + 2 * HOUR, start + 3 * HOUR, model="reg")[0]
    first = model.predict(X[shifted[:10]]) - y[shifted[:10]]
    assert point["realized"]["labels"] == 10 and not point["waiting_for_labels"]
    assert point["realized"]["mae"] == pytest.approx(float(np.mean(np.abs(first))))
    assert point["realized"]["rmse"] == pytest.approx(float(np.sqrt(np.mean(first**2))))


def test_the_model_page_plots_estimated_beside_realized_once_a_reference_carries_an_estimator(
    server: Server, cancer: Split
) -> None:
    from test_dashboard import _signed_in

    rows = cancer.shifted(0, 60, 1.0)
    traces = _send(server, cancer, rows, time.time_ns() - 3 * HOUR)
    _send(server, cancer, cancer.shifted(0, 40, 1.0), time.time_ns() - HOUR // 2)
    client = _signed_in(server)
    assert 'id="chart-estimated"' not in client.get("/models/clf", params={"range": "6h"}).text
    _post_estimator(server, cancer.estimator)
    assert server.ingest([label_span(traces[0], cancer.y[rows[:20]].tolist())]).status_code == 200
    page = client.get("/models/clf", params={"range": "6h"}).text
    chart = page.split('id="chart-estimated"', 1)[1].split("</figure>", 1)[0]
    assert "estimated accuracy" in chart and "realized accuracy" in chart and "waiting for labels" in chart
    assert "60 rows, 20 labels" in chart and "40 rows, 0 labels" in chart
