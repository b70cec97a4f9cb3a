"""Estimated performance per time slice beside the realized figures, for the API, the dashboard and monitors.

A slice's estimate adds up the statistics of its hours (``estimate/cbpe.py`` for classifiers, ``estimate/dle.py``
for regressors): a closed hour (ended more than
:data:`SETTLE_NS` ago, so late spans have arrived) is read from the cache or computed once and cached; the open
hour and a window's partial hours are computed from the predictions each time. The realized figures come from
the labelled rows of the same slice (``estimate/realized.py``, closed hours cached too), with the same definitions
and the same classes as the estimate, so the two compare; a slice with predictions but no label yet is
``waiting_for_labels``.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

import numpy as np
from sqlalchemy import literal_column, select

from aither_server.estimate import cbpe, dle
from aither_server.estimate.calibration import Estimator, Floats
from aither_server.estimate.dle import LossModel
from aither_server.estimate.figures import Estimate, Realized
from aither_server.estimate.realized import realized_figures
from aither_server.estimate.store import AnyEstimator, EstimateStore
from aither_server.model.records import KIND_PROBA, InvalidJson, parse_prediction
from aither_server.model.rollup_keys import HOUR_NS
from aither_server.model.sampled_rows import sampled_rows
from aither_server.query.metric_filter import in_filter
from aither_server.query.models import model_ids
from aither_server.query.time import NS, iso
from aither_server.store.core_tables import predictions
from aither_server.store.database import Store
from aither_server.store.engine import Connection, run

__all__ = ["MAX_SLICES", "SETTLE_NS", "estimate_window", "performance"]

#: Slices one answer may hold (30 days of hours, with room).
MAX_SLICES = 1_000
#: An hour is closed, and its statistics cached, this long after its end: spans arrive within seconds, retried
#: ones within minutes.
SETTLE_NS = 15 * 60 * NS

_p = predictions.c
#: The answered calls of the model rows in [lo, hi) with an output.
_ANSWERED = (
    in_filter(predictions),
    _p.status == literal_column("0"),
    _p.prediction.is_not(None),
)
_SCORED_CALLS = select(_p.model_id, _p.start_ns, _p.prediction, _p.batch_size, _p.method, _p.sample_rate).where(
    *_ANSWERED
)
_SAMPLED_CALLS = select(
    _p.model_id, _p.start_ns, _p.features, _p.prediction, _p.batch_size, _p.method, _p.sample_rate, _p.n_rows
).where(*_ANSWERED, _p.features.is_not(None))


def _scores(
    estimator: Estimator, conn: Connection, ids: list[int], lo: int, hi: int
) -> dict[tuple[int, int], tuple[Floats, Floats]]:
    """Per (model id, hour): the raw class scores (n x K) and weights of the rows predicted in ``[lo, hi)``."""
    k = estimator.width
    found: dict[tuple[int, int], tuple[list[list[float]], list[float]]] = defaultdict(lambda: ([], []))
    cursor = run(conn, _SCORED_CALLS, {"ids": ids, "lo": lo, "hi": hi})
    for model_id, start_ns, text, batch_size, method, sample_rate in cursor:
        try:
            _, (_, values) = parse_prediction(text, batch_size, method)
        except InvalidJson:
            continue
        weight = 1.0 if not sample_rate else 1.0 / sample_rate
        scores, weights = found[(model_id, start_ns - start_ns % HOUR_NS)]
        for value in values:
            if value.kind != KIND_PROBA:
                continue
            if value.score is not None and k == 2:
                scores.append([1.0 - value.score, value.score])
            elif value.proba is not None:
                row = json.loads(value.proba)
                if len(row) != k:
                    continue
                scores.append(row)
            else:
                continue
            weights.append(weight)
    return {
        key: (np.asarray(s, dtype=np.float64).reshape(-1, k), np.asarray(w, dtype=np.float64))
        for key, (s, w) in found.items()
    }


def _loss_rows(
    model: LossModel, conn: Connection, ids: list[int], lo: int, hi: int
) -> dict[tuple[int, int], tuple[list[tuple[dict[str, object], float]], Floats]]:
    """Per (model id, hour): the sampled rows' (features, prediction) and weights, of calls in ``[lo, hi)``."""
    found: dict[tuple[int, int], tuple[list[tuple[dict[str, object], float]], list[float]]] = defaultdict(
        lambda: ([], [])
    )
    cursor = run(conn, _SAMPLED_CALLS, {"ids": ids, "lo": lo, "hi": hi})
    for model_id, start_ns, features_text, text, batch_size, method, sample_rate, n_rows in cursor:
        try:
            parsed, (_, values) = parse_prediction(text, batch_size, method)
            features = json.loads(features_text)
        except (InvalidJson, ValueError, RecursionError):
            continue
        numbers = {v.row: v.num for v in values if v.num is not None}
        sampled = [r for r in sampled_rows(features, parsed, {}) if isinstance(r["features"], dict)]
        if not sampled:
            continue
        # A sampled row stands for its call's rows over the rows sampled, and the call for 1 / sample_rate calls.
        weight = max(n_rows, len(sampled)) / len(sampled) / (sample_rate or 1.0)
        rows, weights = found[(model_id, start_ns - start_ns % HOUR_NS)]
        for row in sampled:
            number = numbers.get(row["row"])
            if number is not None:
                rows.append((row["features"], number))
                weights.append(weight)
    return {key: (rows, np.asarray(w, dtype=np.float64)) for key, (rows, w) in found.items()}


def _scan(
    estimator: AnyEstimator, conn: Connection, ids: list[int], lo: int, hi: int
) -> dict[tuple[int, int], tuple[int, Floats]]:
    """(rows, statistics) per (model id, hour) of the calls in ``[lo, hi)``."""
    if isinstance(estimator, LossModel):
        return {
            key: (len(rows), dle.statistics(estimator, rows, weights))
            for key, (rows, weights) in _loss_rows(estimator, conn, ids, lo, hi).items()
        }
    return {
        key: (len(scores), cbpe.statistics(estimator, scores, weights))
        for key, (scores, weights) in _scores(estimator, conn, ids, lo, hi).items()
    }


def _length(estimator: AnyEstimator) -> int:
    return dle.LENGTH if isinstance(estimator, LossModel) else cbpe.length(estimator)


def _estimate(estimator: AnyEstimator, stats: Floats) -> Estimate | None:
    if isinstance(estimator, LossModel):
        return dle.estimate(estimator, stats)
    return cbpe.estimate(estimator, stats)


def _slice_stats(
    estimates: EstimateStore,
    estimator: AnyEstimator,
    conn: Connection,
    ids: list[int],
    lo: int,
    hi: int,
    now_ns: int,
) -> dict[int, Floats]:
    """Statistics per hour start in ``[lo, hi)`` (summed over the model rows), the closed hours cached."""
    width = _length(estimator)
    out: dict[int, Floats] = {}

    def add(hour: int, stats: Floats) -> None:
        out[hour] = out[hour] + stats if hour in out else stats.copy()

    def scan(a: int, b: int, only: list[int]) -> dict[tuple[int, int], tuple[int, Floats]]:
        return _scan(estimator, conn, only, a, b)

    first = -(-lo // HOUR_NS) * HOUR_NS  # whole hours are [first, last)
    last = hi - hi % HOUR_NS
    if first >= last:
        for (_, hour), (_, stats) in scan(lo, hi, ids).items():
            add(hour, stats)
        return out
    for a, b in ((lo, first), (last, hi)):
        if a < b:
            for (_, hour), (_, stats) in scan(a, b, ids).items():
                add(hour, stats)
    settled = now_ns - SETTLE_NS
    closed_end = min(last, max(first, settled - settled % HOUR_NS))
    if closed_end < last:
        for (_, hour), (_, stats) in scan(closed_end, last, ids).items():
            add(hour, stats)
    if closed_end == first:
        return out
    cached = estimates.hours(ids, estimator.created_ns, first, closed_end)
    for (_, hour), (_, stats) in cached.items():
        if len(stats) == width:
            add(hour, stats)
    missing = {(m, h) for m in ids for h in range(first, closed_end, HOUR_NS) if (m, h) not in cached}
    if not missing:
        return out
    owners = sorted({m for m, _ in missing})
    hours = [h for _, h in missing]
    fresh = []
    for key, (rows, stats) in scan(min(hours), max(hours) + HOUR_NS, owners).items():
        if key in missing:
            add(key[1], stats)
            fresh.append((key[0], key[1], rows, stats))
    # An hour without predictions is cached too (as zeros), so it is not scanned again.
    found = {(m, h) for m, h, _, _ in fresh}
    zeros = np.zeros(width)
    fresh.extend((m, h, 0, zeros) for m, h in sorted(missing - found))
    estimates.put_hours(estimator.created_ns, fresh)
    return out


def performance(
    store: Store,
    estimates: EstimateStore,
    name: str,
    *,
    bucket_s: int,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    version: str | None = None,
    environment: str | None = None,
    realized: bool = True,
) -> dict[str, Any] | None:  # the route and ui/estimate_chart.py read it as the API's JSON
    """Estimated (and realized) performance per slice of ``[start_ns, end_ns)``; ``None`` when no model has this
    name. Without an estimator (no reference with scores and labels) the slices are empty and ``estimator`` null."""
    bucket_ns = bucket_s * NS
    first = start_ns - start_ns % bucket_ns
    if (end_ns - first) / bucket_ns > MAX_SLICES:
        raise ValueError(f"the bucket splits the window into more than {MAX_SLICES} slices")
    conn = store.reader()
    matching = model_ids(conn, name, version, environment)
    if matching is None:
        return None
    ids = [mid for mid, _, _ in matching]
    estimator = estimates.estimator(name, version)
    points: list[dict[str, object]] = []
    answer: dict[str, object] = {
        "model": name,
        "version": version,
        "environment": environment,
        "task": None if estimator is None else "regression" if isinstance(estimator, LossModel) else "classification",
        "estimator": None if estimator is None else _describe(estimator),
        "points": points,
    }
    if estimator is None or not ids:
        return answer
    sums: dict[int, Floats] = {}
    if bucket_ns % HOUR_NS == 0 and first % HOUR_NS == 0:
        for hour, stats in _slice_stats(estimates, estimator, conn, ids, first, end_ns, now_ns).items():
            slot = first + (hour - first) // bucket_ns * bucket_ns
            sums[slot] = sums[slot] + stats if slot in sums else stats
    else:  # slices that cut hours: each summed on its own (their whole hours still come from the cache)
        for slot in range(first, end_ns, bucket_ns):
            found = _slice_stats(estimates, estimator, conn, ids, slot, min(slot + bucket_ns, end_ns), now_ns)
            if found:
                sums[slot] = sum(found.values(), np.zeros(_length(estimator)))
    if not realized:
        labelled: dict[int, Realized] = {}
    else:
        labelled = realized_figures(
            estimates,
            estimator,
            conn,
            ids,
            first=first,
            end_ns=end_ns,
            bucket_ns=bucket_ns,
            closed_ns=now_ns - SETTLE_NS,
        )
    for slot in range(first, end_ns, bucket_ns):
        summed = sums.get(slot)
        estimated = None if summed is None else _estimate(estimator, summed)
        seen = labelled.get(slot)
        points.append(
            {
                "start": iso(slot),
                "end": iso(slot + bucket_ns),
                "rows": 0 if estimated is None else estimated["rows"],
                "labels": 0 if seen is None else seen["labels"],
                "waiting_for_labels": estimated is not None and seen is None,
                "estimated": estimated,
                "realized": seen,
            }
        )
    return answer


def estimate_window(
    store: Store,
    estimates: EstimateStore,
    name: str,
    *,
    start_ns: int,
    end_ns: int,
    now_ns: int,
    version: str | None = None,
    environment: str | None = None,
) -> Estimate | None:
    """The estimate of one window as a whole (monitors); ``None`` without a model, estimator or scored row."""
    conn = store.reader()
    matching = model_ids(conn, name, version, environment)
    estimator = estimates.estimator(name, version)
    if not matching or estimator is None:
        return None
    hours = _slice_stats(estimates, estimator, conn, [m for m, _, _ in matching], start_ns, end_ns, now_ns)
    if not hours:
        return None
    return _estimate(estimator, sum(hours.values(), np.zeros(_length(estimator))))


def _describe(estimator: AnyEstimator) -> dict[str, object]:
    if isinstance(estimator, LossModel):
        return {
            "method": estimator.method,
            "columns": [c.name for c in estimator.columns],
            "created_at": iso(estimator.created_ns),
            "reference": estimator.reference,
        }
    return {
        "method": estimator.method,
        "classes": [json.loads(c) for c in estimator.classes],
        "created_at": iso(estimator.created_ns),
        "reference": estimator.reference,
    }
