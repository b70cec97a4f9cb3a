"""The query API's numbers equal what scikit-learn computes from what the test sent."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest
from conftest import Server
from otlp_builders import label_span, new_trace_id, prediction_span
from sklearn import metrics as skm


def _send_classification(
    server: Server, rng: random.Random, classes: list[object]
) -> tuple[list[object], list[object], int]:
    """Batches and single rows, labelled by row, by whole batch, and some rows left unlabelled."""
    y_true: list[object] = []
    y_pred: list[object] = []
    predicted_rows = 0
    spans = []
    for i in range(30):
        n = rng.choice([1, 1, 3, 7])
        pred = [rng.choice(classes) for _ in range(n)]
        truth = [p if rng.random() < 0.7 else rng.choice(classes) for p in pred]
        trace_id = new_trace_id()
        spans.append(prediction_span("clf", pred if n > 1 else pred[0], trace_id=trace_id, batch_size=n))
        predicted_rows += n
        if i % 3 == 0:
            spans.append(label_span(trace_id, truth if n > 1 else truth[0]))
            y_true += truth
            y_pred += pred
        elif i % 3 == 1:
            for row in range(0, n, 2):
                spans.append(label_span(trace_id, truth[row], row=row))
                y_true.append(truth[row])
                y_pred.append(pred[row])
    server.ingest(spans)
    return y_true, y_pred, predicted_rows


@pytest.mark.parametrize("classes", [[0, 1, 2], ["cat", "dog"]], ids=["int-classes", "string-classes"])
def test_classification_metrics_equal_sklearn_macro_averages(server: Server, classes: list[object]) -> None:
    y_true, y_pred, rows = _send_classification(server, random.Random(7), classes)
    m = server.metrics("clf")
    assert m["task"] == "classification"
    assert (m["predictions"], m["labels"]) == (rows, len(y_true))
    assert m["label_coverage"] == pytest.approx(len(y_true) / rows)
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    assert m["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))
    assert (m["mae"], m["rmse"], m["auc"]) == (None, None, None)


def test_class_never_predicted_counts_with_precision_zero_like_sklearn(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [0, 0, 1], trace_id=trace_id), label_span(trace_id, [0, 2, 1])])
    m = server.metrics("clf")
    y_true, y_pred = [0, 2, 1], [0, 0, 1]
    assert m["precision"] == pytest.approx(skm.precision_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["recall"] == pytest.approx(skm.recall_score(y_true, y_pred, average="macro", zero_division=0))
    assert m["f1"] == pytest.approx(skm.f1_score(y_true, y_pred, average="macro", zero_division=0))


def test_binary_predict_proba_gives_accuracy_and_auc_equal_to_sklearn(server: Server) -> None:
    rng = np.random.default_rng(3)
    spans, y_true, scores = [], [], []
    for _ in range(25):
        n = int(rng.integers(1, 6))
        p1 = np.round(rng.random(n), 2)  # rounded, so ties happen and their handling is checked too
        proba = np.column_stack([1 - p1, p1]).tolist()
        truth = [int(t) for t in (rng.random(n) < p1)]
        trace_id = new_trace_id()
        spans += [
            prediction_span("risk", proba, method="predict_proba", trace_id=trace_id),
            label_span(trace_id, truth),
        ]
        y_true += truth
        scores += [row[1] for row in proba]
    server.ingest(spans)
    m = server.metrics("risk")
    y_pred = [int(s > 0.5) if s != 0.5 else 0 for s in scores]
    assert m["task"] == "classification"
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y_true, scores))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))


def test_multiclass_predict_proba_auc_is_one_vs_rest_macro_like_sklearn(server: Server) -> None:
    rng = np.random.default_rng(5)
    proba = rng.dirichlet([1.0, 1.0, 1.0], size=60)
    y_true = [int(rng.choice(3, p=row)) for row in proba]
    spans = []
    for i in range(0, 60, 6):
        trace_id = new_trace_id()
        spans += [
            prediction_span("iris", proba[i : i + 6].tolist(), method="predict_proba", trace_id=trace_id),
            label_span(trace_id, y_true[i : i + 6]),
        ]
    server.ingest(spans)
    m = server.metrics("iris")
    assert m["auc"] == pytest.approx(skm.roc_auc_score(y_true, proba, multi_class="ovr", average="macro"))
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, proba.argmax(axis=1)))


def test_string_classes_of_predict_proba_map_to_sorted_columns_like_sklearn_classes(server: Server) -> None:
    trace_id = new_trace_id()
    proba = [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]
    server.ingest(
        [
            prediction_span("spam", proba, method="predict_proba", trace_id=trace_id),
            label_span(trace_id, ["ham", "spam", "spam"]),
        ]
    )
    m = server.metrics("spam")
    assert m["accuracy"] == pytest.approx(2 / 3)
    assert m["auc"] == pytest.approx(skm.roc_auc_score([0, 1, 1], [0.1, 0.8, 0.4]))


def test_regression_metrics_equal_sklearn(server: Server) -> None:
    rng = np.random.default_rng(11)
    spans, y_true, y_pred = [], [], []
    for _ in range(20):
        n = int(rng.integers(1, 5))
        pred = rng.normal(10, 3, n).round(3).tolist()
        truth = [p + float(rng.normal(0, 1)) for p in pred]
        trace_id = new_trace_id()
        spans += [prediction_span("price", pred if n > 1 else pred[0], trace_id=trace_id, batch_size=n)]
        spans += [label_span(trace_id, truth if n > 1 else truth[0])]
        y_true += truth
        y_pred += pred
    server.ingest(spans)
    m = server.metrics("price")
    assert m["task"] == "regression"
    assert m["mae"] == pytest.approx(skm.mean_absolute_error(y_true, y_pred))
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error(y_true, y_pred)))
    assert m["accuracy"] is None


def test_latency_percentiles_are_nearest_rank_over_calls(server: Server) -> None:
    latencies_ms = list(range(1, 101))
    random.Random(1).shuffle(latencies_ms)
    server.ingest([prediction_span("clf", 1, latency_ns=ms * 1_000_000) for ms in latencies_ms])
    assert server.metrics("clf")["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0}


_HOUR = 3600 * 10**9
#: A whole hour (2023-11-14T22:00:00Z).
_START = (1_700_000_000 * 10**9 // _HOUR) * _HOUR


def _calls_over_two_hours(seed: int, n: int) -> list[tuple[int, int]]:
    """(start, latency) of ``n`` calls spread evenly over two hours from :data:`_START`, log-normal latencies."""
    latencies_ns = np.random.default_rng(seed).lognormal(mean=15.0, sigma=0.6, size=n).astype(int)
    return [(_START + i * (2 * _HOUR // n), int(ns)) for i, ns in enumerate(latencies_ns)]


def test_past_the_exact_limit_percentiles_are_interpolated_within_their_bucket(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Past EXACT_PERCENTILE_CALLS calls (a million), each percentile comes from the hourly histogram alone:
    # within one bucket (4%) of the exact nearest-rank value, about 2% at most in practice.
    from aither_server.query import latency as query_latency

    calls = _calls_over_two_hours(3, 2000)
    server.ingest([prediction_span("clf", 1, start_ns=at, latency_ns=ns) for at, ns in calls])
    window = {"start": "2023-11-14T22:00:00Z", "end": "2023-11-15T02:00:00Z"}
    exact = server.metrics("clf", **window)["latency_ms"]
    monkeypatch.setattr(query_latency, "EXACT_PERCENTILE_CALLS", 100)
    interpolated = server.metrics("clf", **window)["latency_ms"]
    ranked = np.sort([ns for _, ns in calls]) / 1e6
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert exact[name] == ranked[math.ceil(q * len(ranked)) - 1]
        assert interpolated[name] != exact[name]
        assert abs(interpolated[name] / exact[name] - 1) < 0.04, (name, interpolated, exact)


def test_approximate_metrics_place_percentiles_in_their_bucket_as_past_the_exact_limit(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dashboard's charts ask for approximate metrics (one call per slice): percentiles from the hourly
    # histogram alone, as the endpoint gives them past _EXACT_PERCENTILE_CALLS calls; the AUC from the scores'
    # 0.01-wide bins (these scores have three decimals: ten to a bin); everything else exact.
    from aither_server.query import latency as query_latency
    from aither_server.query import metrics as query_metrics

    rng = np.random.default_rng(5)
    spans = []
    for i, (at, ns) in enumerate(_calls_over_two_hours(5, 1500)):
        trace_id = new_trace_id()
        p1 = round(float(rng.random()), 3)
        proba = [[1 - p1, p1]]
        spans.append(
            prediction_span("clf", proba, method="predict_proba", trace_id=trace_id, latency_ns=ns, start_ns=at)
        )
        if i % 2:
            spans.append(label_span(trace_id, [int(rng.random() < p1)]))
    server.ingest(spans)
    conn = server.thread.store.reader()
    end = _START + 2 * _HOUR
    exact = query_metrics.metrics(conn, "clf", start_ns=_START, end_ns=end)
    approximate = query_metrics.metrics(conn, "clf", start_ns=_START, end_ns=end, approximate=True)
    monkeypatch.setattr(query_latency, "EXACT_PERCENTILE_CALLS", 100)
    interpolated = query_metrics.metrics(conn, "clf", start_ns=_START, end_ns=end)
    assert exact is not None and approximate is not None and interpolated is not None
    assert approximate["latency_ms"] == interpolated["latency_ms"] != exact["latency_ms"]
    for name in ("p50", "p95", "p99"):
        approximate_ms, exact_ms = approximate["latency_ms"][name], exact["latency_ms"][name]
        assert approximate_ms is not None and exact_ms is not None
        assert abs(approximate_ms / exact_ms - 1) < 0.04
    assert approximate["auc"] is not None and exact["auc"] is not None
    assert abs(approximate["auc"] - exact["auc"]) < 0.01
    assert {k: v for k, v in approximate.items() if k not in ("latency_ms", "auc")} == {
        k: v for k, v in exact.items() if k not in ("latency_ms", "auc")
    }
    assert exact["auc"] is not None


def test_volume_is_bucketed_by_time_and_the_range_filters(server: Server) -> None:
    hour = 3600 * 10**9
    base = 1_700_000_000 * 10**9 // hour * hour
    server.ingest(
        [
            prediction_span("clf", [1, 0], start_ns=base + 5),
            prediction_span("clf", 1, start_ns=base + 10),
            prediction_span("clf", 1, start_ns=base + 2 * hour + 1),
        ]
    )
    m = server.metrics("clf", bucket="1h")
    assert [(v["start"], v["predictions"], v["calls"]) for v in m["volume"]] == [
        ("2023-11-14T22:00:00Z", 3, 2),
        ("2023-11-15T00:00:00Z", 1, 1),
    ]
    ranged = server.metrics("clf", start="2023-11-14T23:00:00Z", end="2023-11-15T01:00:00Z")
    assert (ranged["calls"], ranged["predictions"]) == (1, 1)


def test_version_and_environment_filter_the_metrics(server: Server) -> None:
    server.ingest(
        [
            prediction_span("clf", [1, 1], version="1", environment="prod"),
            prediction_span("clf", 1, version="2", environment="prod"),
            prediction_span("clf", 1, version="2", environment="staging"),
        ]
    )
    assert server.metrics("clf")["predictions"] == 4
    assert server.metrics("clf", version="2")["predictions"] == 2
    assert server.metrics("clf", environment="prod")["predictions"] == 3
    assert server.metrics("clf", version="1", environment="staging")["predictions"] == 0
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["versions"], model["environments"]) == (["1", "2"], ["prod", "staging"])


def test_unknown_model_is_404_and_bad_bucket_is_400(server: Server) -> None:
    server.ingest([prediction_span("clf", 1)])
    assert server.http.get("/api/v1/models/nope/metrics").status_code == 404
    assert server.http.get("/api/v1/models/clf/metrics", params={"bucket": "1y"}).status_code == 400
    response = server.http.get(
        "/api/v1/models/clf/metrics", params={"bucket": "1s", "start": "2000-01-01", "end": "2030-01-01"}
    )
    assert response.status_code in (200, 400)


def test_recent_predictions_come_newest_first_with_their_labels(server: Server) -> None:
    ids = [new_trace_id() for _ in range(5)]
    base = 1_700_000_000 * 10**9
    server.ingest([prediction_span("clf", [i, i], trace_id=t, start_ns=base + i) for i, t in enumerate(ids)])
    server.ingest([label_span(ids[4], 4, row=1)])
    data = server.get("/api/v1/models/clf/predictions", limit=3)["data"]
    assert [d["trace_id"] for d in data] == [ids[4].hex(), ids[3].hex(), ids[2].hex()]
    assert data[0]["labels"] == {"1": 4}
    assert data[0]["prediction"] == [4, 4]
    assert data[0]["features"]["sample"] == [[1.0, 2.0]]


def test_prediction_by_trace_id_bad_id_is_400_unknown_is_404(server: Server) -> None:
    assert server.http.get("/api/v1/predictions/xyz").status_code == 400
    assert server.http.get(f"/api/v1/predictions/{'ab' * 16}").status_code == 404


def test_model_names_with_slashes_and_spaces_are_queryable(server: Server) -> None:
    server.ingest([prediction_span("team/fraud model", 1)])
    assert server.get("/api/v1/models/team%2Ffraud%20model/metrics")["calls"] == 1
