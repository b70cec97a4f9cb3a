"""The rollup tables /metrics reads give the same answers as the raw rows, whatever order labels arrive in."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from aither_server import Store
from aither_server.model.records import LabelSpan, PredictionSpan
from aither_server.query import metrics as query_metrics

_H = 3600 * 10**9
_T0 = 1_780_000_000 * 10**9 + 123_456_789  # not aligned to a minute or an hour


def _prediction(rng: random.Random, trace_id: bytes, model: str, value: Any, method: str = "predict") -> PredictionSpan:
    start = _T0 + rng.randrange(3 * 24 * _H)
    error = "ValueError: boom" if rng.random() < 0.05 else None
    return PredictionSpan(
        trace_id=trace_id,
        span_id=os.urandom(8),
        model=model,
        version=rng.choice(["1", "2"]),
        environment=rng.choice(["prod", "dev"]),
        name=method,
        method=method,
        framework="sklearn",
        start_ns=start,
        end_ns=start + int(rng.lognormvariate(13, 1.0)),
        error=error,
        batch_size=len(value) if isinstance(value, list) and method == "predict" else 1,
        features=None,
        prediction=None if error else value,
        prediction_json=None if error else json.dumps(value),
        service_name="test",
    )


def _fill(store: Store, rng: random.Random) -> None:
    """Classification (batches, binary predict_proba) and regression; labels early, late, replaced, stale."""
    preds: list[PredictionSpan] = []
    labels: list[LabelSpan] = []
    for i in range(800):
        trace_id = os.urandom(16)
        if i % 4 == 0:
            value: Any = round(rng.uniform(0, 10), 2)
            preds.append(_prediction(rng, trace_id, "reg", value))
            truth: Any = round(value + rng.gauss(0, 1), 2)
        elif i % 4 == 1:
            p1 = round(rng.random(), 2)
            preds.append(_prediction(rng, trace_id, "clf", [[1 - p1, p1]], method="predict_proba"))
            truth = int(rng.random() < p1)
        else:
            value = [rng.choice([0, 1, 2]) for _ in range(rng.choice([1, 3]))]
            preds.append(_prediction(rng, trace_id, "clf", value if len(value) > 1 else value[0]))
            truth = [v if rng.random() < 0.7 else rng.choice([0, 1, 2]) for v in value]
            truth = truth if len(truth) > 1 else truth[0]
        if rng.random() < 0.7:
            labels.append(LabelSpan(trace_id, os.urandom(8), None, truth, _T0 + 10 * _H))
        if rng.random() < 0.2:  # a newer label replaces it, or an older one must not
            other = round(rng.uniform(0, 10), 2) if i % 4 == 0 else rng.choice([0, 1, 2])
            labels.append(LabelSpan(trace_id, os.urandom(8), 0, other, _T0 + rng.choice([5, 20]) * _H))
    rng.shuffle(labels)
    # Some labels come before their predictions, some with them, some after; batches are retried.
    store.ingest([], labels[:200], count_call=False)
    for i in range(0, len(preds), 100):
        store.ingest(preds[i : i + 100], labels[200 + i // 4 : 200 + (i + 100) // 4], count_call=False)
    store.ingest(preds[:100], labels[400:], count_call=False)
    store.ingest([], labels[350:450], count_call=False)


@pytest.fixture(scope="module")
def store(module_database: Path | str) -> Any:
    store = Store(module_database)
    _fill(store, random.Random(3))
    yield store
    store.close()


def _raw_split(lo: int, hi: int, unit: int) -> tuple[None, list[tuple[int, int]]]:
    return None, [(lo, hi)] if lo < hi else []


_CASES = [
    {},
    {"version": "1"},
    {"environment": "dev", "version": "2"},
    {"start_ns": _T0 + 5 * _H + 17_000_000_123, "end_ns": _T0 + 40 * _H + 59_000_000_000},
    {"start_ns": _T0 + 30 * _H + 1, "bucket": "1h", "version": "2"},
    {"start_ns": _T0 + 61 * _H, "end_ns": _T0 + 63 * _H - 7, "bucket": "30s"},
    {"start_ns": _T0 + 50 * _H, "end_ns": _T0 + 50 * _H + 30 * 10**9},
]


@pytest.mark.parametrize("model", ["clf", "reg"])
@pytest.mark.parametrize("case", _CASES, ids=[str(i) for i in range(len(_CASES))])
def test_rollups_answer_like_the_raw_rows(
    store: Store, model: str, case: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    fast = query_metrics.metrics(store.reader(), model, **case)
    monkeypatch.setattr(query_metrics, "split", _raw_split)
    raw = query_metrics.metrics(store.reader(), model, **case)
    assert fast is not None and raw is not None
    for key in ("mae", "rmse"):  # sums of floats, added up in another order
        a, b = fast.pop(key), raw.pop(key)
        assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9)
    assert fast == raw
    if not case.get("end_ns"):
        assert fast["predictions"] > 30 and fast["labels"] > 10
        assert (a if model == "reg" else fast["accuracy"]) is not None
