"""The rollup tables /metrics reads give the same answers as the raw rows, whatever order labels arrive in."""

from __future__ import annotations

import json
import os
import random
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from aither_server import Store
from aither_server.model.records import LabelSpan, PredictionSpan
from aither_server.model.rollup_keys import DAY_NS, score_bin
from aither_server.query import latency as query_latency
from aither_server.query import metrics as query_metrics
from aither_server.query import quality_groups as query_quality_groups
from aither_server.query import score_bins as query_score_bins
from aither_server.query import volume as query_volume
from aither_server.query.read_ahead import read_ahead
from aither_server.store.core_tables import models
from aither_server.store.engine import open_database, run
from aither_server.store.migrations import migrate

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


def _raw_split_days(lo: int, hi: int) -> tuple[None, list[tuple[int, int]], list[tuple[int, int]]]:
    return None, [], [(lo, hi)] if lo < hi else []


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
    # Every module that reads a metric's rollups, made to read the raw rows instead.
    monkeypatch.setattr(query_volume, "split", _raw_split)
    monkeypatch.setattr(query_latency, "split_days", _raw_split_days)
    monkeypatch.setattr(query_quality_groups, "split_days", _raw_split_days)
    raw = query_metrics.metrics(store.reader(), model, **case)
    assert fast is not None and raw is not None
    for a, b in ((fast["mae"], raw["mae"]), (fast["rmse"], raw["rmse"])):  # sums of floats, in another order
        assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9)
    assert {**fast, "mae": None, "rmse": None} == {**raw, "mae": None, "rmse": None}
    if not case.get("end_ns"):
        assert fast["predictions"] > 30 and fast["labels"] > 10
        assert (a if model == "reg" else fast["accuracy"]) is not None


def test_the_dashboard_rollups_hold_the_sums_of_what_they_roll_up(store: Store) -> None:
    """volume_hours and latency_days (kept by triggers) sum volume_minutes and latency_hours; score_hours and
    score_days (kept with quality_hours) count the labelled binary scores as the raw rows do, labels replaced and
    arriving before their predictions included."""
    conn = store.reader()
    assert sorted(conn.execute("SELECT model_id, hour, calls, errors, rows FROM volume_hours")) == sorted(
        conn.execute(
            "SELECT model_id, minute / 60, sum(calls), sum(errors), sum(rows) FROM volume_minutes GROUP BY 1, 2"
        )
    )
    assert sorted(conn.execute("SELECT model_id, day, bucket, calls FROM latency_days")) == sorted(
        conn.execute("SELECT model_id, hour / 24, bucket, sum(calls) FROM latency_hours GROUP BY 1, 2, 3")
    )
    assert_quality_days_sum_quality_hours(conn)
    raw: dict[tuple[Any, ...], list[float]] = {}
    for model_id, start_ns, score, label in conn.execute(
        "SELECT model_id, start_ns, score, label_key FROM prediction_rows"
        " WHERE kind = 2 AND label_kind = 0 AND score IS NOT NULL"
    ):
        for table, unit in (("score_hours", _H), ("score_days", DAY_NS)):
            cell = raw.setdefault((table, model_id, start_ns // unit, score_bin(score), label), [0, 0.0])
            cell[0] += 1
            cell[1] += score
    assert len(raw) > 20
    stored = {}
    for table, column in (("score_hours", "hour"), ("score_days", "day")):
        for model_id, at, index, label, rows, w_rows, total in conn.execute(
            f"SELECT model_id, {column}, bin, label_key, rows, w_rows, score_sum FROM {table}"
        ):
            assert w_rows == rows  # no span kept 1 in k here
            stored[(table, model_id, at, index, label)] = [rows, pytest.approx(total)]
    assert stored == raw


def assert_quality_days_sum_quality_hours(conn: Any) -> None:
    """quality_days (v0018) holds quality_hours's cells summed per UTC day, and no emptied cell."""
    key = "model_id, {}, kind, label_kind, pred_key, label_key, scored"
    sums = "sum(rows), sum(n_num), sum(sum_abs), sum(sum_sq), sum(w_rows), sum(w_num), sum(w_abs), sum(w_sq)"
    days = sorted(conn.execute(f"SELECT {key.format('day')}, {sums} FROM quality_days GROUP BY 1, 2, 3, 4, 5, 6, 7"))
    hours = sorted(
        conn.execute(f"SELECT {key.format('hour / 24')}, {sums} FROM quality_hours GROUP BY 1, 2, 3, 4, 5, 6, 7")
    )
    assert [r[:9] for r in days] == [r[:9] for r in hours]
    assert [pytest.approx(r[9:]) for r in days] == [r[9:] for r in hours]
    assert conn.execute("SELECT count(*) FROM quality_days WHERE rows <= 0").fetchone()[0] == 0


def test_revision_0018_sums_the_stored_quality_hours_into_quality_days(tmp_path: Path) -> None:
    # On SQLite alone: the PostgreSQL fixture's database cannot be stopped at 0017 here (it comes out at the
    # newest revision); the revision's one INSERT ... SELECT is plain SQL to both.
    database = tmp_path / "at-0017.db"
    migrate(database, "0017")
    cells = [
        (1, 24 * 100 + 1, 0, 0, '"a"', '"a"', 0, 2, 0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0),
        (1, 24 * 100 + 23, 0, 0, '"a"', '"a"', 0, 3, 0, 0.0, 0.0, 1.5, 0.0, 0.0, 0.0),
        (1, 24 * 101, 0, 0, '"a"', '"a"', 0, 1, 0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0),
        (2, 24 * 100 + 5, 1, 1, "", "", 0, 4, 4, 2.0, 3.0, 4.0, 4.0, 2.0, 3.0),
    ]
    conn = open_database(database).connect()
    try:
        columns = "model_id, hour, kind, label_kind, pred_key, label_key, scored, rows, n_num, sum_abs, sum_sq, w_rows"
        for cell in cells:
            conn.execute(
                f"INSERT INTO quality_hours ({columns}, w_num, w_abs, w_sq) VALUES ({', '.join(['?'] * 15)})", cell
            )
        if conn.in_transaction:
            conn.execute("COMMIT")
    finally:
        conn.close()
    migrate(database)
    conn = open_database(database).connect()
    try:
        assert sorted(conn.execute("SELECT model_id, day, pred_key, rows, w_rows, sum_sq FROM quality_days")) == [
            (1, 100, '"a"', 5, 3.5, 0.0),
            (1, 101, '"a"', 1, 1.0, 0.0),
            (2, 100, "", 4, 4.0, 3.0),
        ]
        assert_quality_days_sum_quality_hours(conn)
    finally:
        conn.close()


def test_score_bins_read_from_the_rollups_equal_those_of_the_raw_rows(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    conn = store.reader()
    ids = [i for (i,) in conn.execute("SELECT id FROM models WHERE name = 'clf'")]
    lo, hi = _T0 + 5 * _H + 17_000_000_123, _T0 + 70 * _H + 59_000_000_000  # days, hours and raw ends
    fast = query_score_bins.score_bins(conn, ids, lo, hi)
    monkeypatch.setattr(query_score_bins, "split_days", _raw_split_days)
    raw = query_score_bins.score_bins(conn, ids, lo, hi)
    assert fast.keys() == raw.keys() and len(fast) > 10
    for key, (rows, w_rows, total) in raw.items():
        assert fast[key] == [rows, w_rows, pytest.approx(total)]


def test_score_bins_read_ahead_for_a_chart_s_slices_equal_those_read_one_slice_at_a_time(store: Store) -> None:
    conn = store.reader()
    ids = [i for (i,) in conn.execute("SELECT id FROM models WHERE name = 'clf'")]
    for start, width, count in ((_T0 // DAY_NS * DAY_NS, DAY_NS, 4), (_T0 // _H * _H, 6 * _H, 14)):
        alone = [
            query_score_bins.score_bins(conn, ids, start + i * width, start + (i + 1) * width) for i in range(count)
        ]
        with query_score_bins.sliced(conn, ids, start, width, count):
            ahead = [
                query_score_bins.score_bins(conn, ids, start + i * width, start + (i + 1) * width) for i in range(count)
            ]
        assert sum(len(bins) for bins in alone) > 10
        for one, other in zip(alone, ahead, strict=True):
            assert one.keys() == other.keys()
            for key, (rows, w_rows, total) in one.items():
                assert other[key] == [rows, w_rows, pytest.approx(total)]


@pytest.mark.parametrize("model", ["clf", "reg"])
def test_metrics_of_slices_read_ahead_equal_those_read_one_slice_at_a_time(store: Store, model: str) -> None:
    conn = store.reader()
    ids = [i for (i,) in run(conn, select(models.c.id).where(models.c.name == model))]
    for start, width, count in ((_T0 // DAY_NS * DAY_NS, DAY_NS, 4), (_T0 // _H * _H, 6 * _H, 14)):
        # The dashboard's one volume bucket per slice (of whole hours: read from the hours read ahead) and the
        # automatic buckets.
        for approximate, bucket in ((False, None), (True, None), (True, f"{width // 10**9}s"), (True, "3600s")):
            bounds = [(start + i * width, start + (i + 1) * width) for i in range(count)]
            alone = [
                query_metrics.metrics(conn, model, start_ns=lo, end_ns=hi, approximate=approximate, bucket=bucket)
                for lo, hi in bounds
            ]
            with read_ahead(conn, ids, start, width, count):
                ahead = [
                    query_metrics.metrics(conn, model, start_ns=lo, end_ns=hi, approximate=approximate, bucket=bucket)
                    for lo, hi in bounds
                ]
            assert sum(found["labels"] for found in alone if found) > 10
            for one, other in zip(alone, ahead, strict=True):
                assert one is not None and other is not None
                for a, b in ((one["mae"], other["mae"]), (one["rmse"], other["rmse"])):  # sums in another order
                    assert (a is None and b is None) or a == pytest.approx(b, rel=1e-9)
                assert {**one, "mae": None, "rmse": None} == {**other, "mae": None, "rmse": None}


def test_the_charts_binned_auc_differs_from_the_exact_one_only_by_pairs_that_share_a_bin(
    database: Path | str,
) -> None:
    """The binary AUC of the dashboard's slices comes from the scores' 0.01 bins: ties within a bin count half,
    so it is within half the share of positive-negative pairs that share a bin of the exact one."""
    rng = random.Random(11)
    store = Store(database)
    try:
        preds, labels = [], []
        for _ in range(600):
            trace_id = os.urandom(16)
            p1 = round(rng.random(), 3)
            preds.append(_prediction(rng, trace_id, "binary", [[1 - p1, p1]], method="predict_proba"))
            labels.append(LabelSpan(trace_id, os.urandom(8), None, int(rng.random() < p1), _T0 + 80 * _H))
        store.ingest(preds, labels, count_call=False)
        conn = store.reader()
        exact = query_metrics.metrics(conn, "binary")
        approximate = query_metrics.metrics(conn, "binary", approximate=True)
        assert exact is not None and approximate is not None and exact["auc"] is not None
        ids = [i for (i,) in conn.execute("SELECT id FROM models WHERE name = 'binary'")]
        bins = query_score_bins.score_bins(conn, ids, 0, 2**62)
        positives = {b: rows for (b, label), (rows, _, _) in bins.items() if label == "1"}
        negatives = {b: rows for (b, label), (rows, _, _) in bins.items() if label == "0"}
        shared = sum(positives[b] * negatives.get(b, 0) for b in positives)
        bound = 0.5 * shared / (sum(positives.values()) * sum(negatives.values()))
        assert approximate["auc"] is not None and exact["auc"] is not None
        assert approximate["auc"] != exact["auc"]  # three decimals: ten scores to a bin
        assert abs(approximate["auc"] - exact["auc"]) <= bound + 1e-12
        assert bound < 0.02
    finally:
        store.close()
