"""The realized figures' per-hour cache (``realized_hours``): a closed hour's labelled rows are read once, and a
label that joins later, or replaces one, makes the hour read again, so the figures stay those of its rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from conftest import Server
from otlp_builders import label_span
from sklearn.datasets import load_breast_cancer
from test_estimate import (
    HOUR,
    METRICS,
    Split,
    _hour_start,
    _performance,
    _post_estimator,
    _realized,
    _send,
)

from aither_server.store.retention import Retention, expire

DAY = 24 * HOUR


@pytest.fixture(scope="module")
def cancer() -> Split:
    X, y = load_breast_cancer(return_X_y=True)
    return Split(X, y)


def _label(server: Server, split: Split, trace_id: bytes, rows: Any, truth: Any = None) -> None:
    labels = split.y[rows] if truth is None else truth
    assert server.ingest([label_span(trace_id, np.asarray(labels).tolist())]).status_code == 200


def _assert_figures(found: dict[str, Any], expected: dict[str, float], labels: int) -> None:
    assert found["labels"] == labels
    for metric in METRICS:
        assert found[metric] == pytest.approx(expected[metric]), metric


def test_labels_joining_a_cached_hour_later_change_its_realized_figures(server: Server, cancer: Split) -> None:
    start = _hour_start(3)
    rows = cancer.shifted(1, 60, 0.5)
    traces = _send(server, cancer, rows, start, model="late")  # three traces of 20 rows
    _post_estimator(server, cancer.estimator, model="late")
    _label(server, cancer, traces[0], rows[:20])
    (point,) = _performance(server, start, start + HOUR, model="late")
    _assert_figures(point["realized"], _realized(cancer, rows[:20]), 20)
    assert server.sql("SELECT hour FROM realized_hours") == [(start,)]
    assert _performance(server, start, start + HOUR, model="late") == [point]  # read from the cache

    # Two more traces' labels: the hour's labelled rows moved, so its figures are those of all 60 rows.
    _label(server, cancer, traces[1], rows[20:40])
    _label(server, cancer, traces[2], rows[40:])
    (point,) = _performance(server, start, start + HOUR, model="late")
    _assert_figures(point["realized"], _realized(cancer, rows), 60)

    # A label replaced (the first trace's classes flipped) keeps the count but changes the figures.
    flipped = 1 - cancer.y[rows[:20]]
    _label(server, cancer, traces[0], rows[:20], truth=flipped)
    (point,) = _performance(server, start, start + HOUR, model="late")
    predicted = cancer.model.predict(cancer.X[rows])
    truth = np.concatenate([flipped, cancer.y[rows[20:]]])
    assert point["realized"]["labels"] == 60
    assert point["realized"]["accuracy"] == pytest.approx(float(np.mean(predicted == truth)))
    assert server.sql("SELECT count(*) FROM realized_hours") == [(1,)]


def test_a_day_bucket_merges_cached_hours_into_the_figures_of_all_its_rows(server: Server, cancer: Split) -> None:
    start = _hour_start(4)
    if start % DAY == 23 * HOUR:  # both hours in one UTC day
        start -= HOUR
    hours = [cancer.shifted(2, 40, strength) for strength in (0.0, 1.5)]
    for i, rows in enumerate(hours):
        for trace_id, at in zip(_send(server, cancer, rows, start + i * HOUR, model="daily"), (0, 20), strict=True):
            _label(server, cancer, trace_id, rows[at : at + 20])
    _post_estimator(server, cancer.estimator, model="daily")
    hourly = _performance(server, start, start + 2 * HOUR, model="daily")
    for point, rows in zip(hourly, hours, strict=True):
        _assert_figures(point["realized"], _realized(cancer, rows), 40)
    assert len(server.sql("SELECT hour FROM realized_hours")) == 2
    day = start - start % DAY
    found = server.get(
        "/api/v1/models/daily/performance", bucket="1d", start=f"{day / 1e9:.0f}", end=f"{(day + DAY) / 1e9:.0f}"
    )
    (point,) = found["points"]
    # Exact, not binned: an hour's cache keeps its rows' scores, so the day's AUC ranks all 80 rows together.
    _assert_figures(point["realized"], _realized(cancer, np.concatenate(hours)), 80)


def test_retention_expires_the_cached_hours_with_the_rollups(server: Server, cancer: Split) -> None:
    start = _hour_start(800 * 24)
    rows = cancer.held_out[:20]
    (trace_id,) = _send(server, cancer, rows, start, model="old")
    _label(server, cancer, trace_id, rows)
    _post_estimator(server, cancer.estimator, model="old")
    (point,) = _performance(server, start, start + HOUR, model="old")
    _assert_figures(point["realized"], _realized(cancer, rows), 20)
    assert server.sql("SELECT hour FROM realized_hours") == [(start,)]

    expire(server.thread.store, Retention(raw_days=None, rollup_days=730))
    assert server.sql("SELECT count(*) FROM realized_hours") == [(0,)]
    assert server.sql("SELECT count(*) FROM estimate_hours") == [(0,)]
