"""A model's metrics over a time range: volume, errors, latency, label coverage and quality.

SQL aggregates do the heavy lifting (the confusion matrix, sums of errors, volume buckets, latency ranks);
this module turns them into the numbers the API promises. It knows nothing of OTLP or protobuf.

Metric definitions (they match scikit-learn's, which the tests check):

- ``predictions`` / ``labels`` count rows; ``label_coverage`` = labelled rows / predicted rows.
- classification: ``accuracy``; ``precision``, ``recall``, ``f1`` macro-averaged over the classes seen in
  predictions or labels (a class never predicted has precision 0); ``auc`` from ``predict_proba`` rows:
  binary ROC AUC, or one-vs-rest macro AUC for three or more classes.
- regression (a prediction or label with a fractional part): ``mae``, ``rmse``.
- latency percentiles: nearest rank over calls, in milliseconds.

Aggregates come from the rollup tables (``model/rollup_keys.py``) for the whole minutes or hours of the time
range and from the raw rows for the partial ones at either end, so they are exact and cost the same for any number of
predictions.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import json
import math
from collections.abc import Iterable, Iterator, Sequence
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from aither_server.model.records import KIND_CLASS, KIND_NUMBER, KIND_PROBA
from aither_server.model.rollup_keys import (
    DAY_NS,
    HOUR_NS,
    MINUTE_NS,
    NO_KEY,
    NO_KIND,
    latency_bucket,
    latency_range,
    split,
    split_days,
)
from aither_server.query import aggregates as query_aggregates
from aither_server.query.models import model_ids
from aither_server.query.render import finite, stored_json
from aither_server.query.score_bins import score_bins
from aither_server.query.sums import add_sums
from aither_server.query.time import MAX_BUCKETS, MAX_NS, NS, BucketTooSmall, auto_bucket, iso, parse_bucket
from aither_server.store.engine import Connection, placeholders

__all__ = ["LatencyOut", "MetricsOut", "VolumeOut", "metrics", "no_metrics", "read_ahead"]

# The answers are TypedDicts of typing_extensions (pydantic validates them on Python < 3.12); the API document
# describes them as they are declared here (``api/schemas.py``).

#: Distinct (prediction, label) pairs beyond which the model is not treated as a classifier.
_MAX_PAIRS = 10_000
#: Labelled multiclass probability rows read for the one-vs-rest AUC.
_MAX_PROBA_ROWS = 200_000
#: Up to this many calls in a time range, latency percentiles are exact; past it, interpolated in their bucket.
_EXACT_PERCENTILE_CALLS = 1_000_000


_PERCENTILES = {"p50": 0.50, "p95": 0.95, "p99": 0.99}


def _percentile_ranks(n: int) -> dict[str, int]:
    return {name: max(0, math.ceil(q * n) - 1) for name, q in _PERCENTILES.items()}


def _sort_key(key: str) -> tuple[int, float | str]:
    value = stored_json(key)
    if isinstance(value, bool):
        return (0, value)
    if isinstance(value, (int, float)):
        return (1, value)
    return (2, str(value))


def _class_map(proba_labels: Iterable[str], width: int) -> dict[str, str] | None:
    """Map ``predict_proba`` column indexes to label keys, as scikit-learn orders ``classes_``: sorted.

    When every class appears among the labels, column i is the i-th smallest label. Otherwise integer labels
    0..width-1 are taken as column indexes (the common case of classes 0..k-1). Else the columns are unknown.
    """
    labels = sorted(set(proba_labels), key=_sort_key)
    if len(labels) == width:
        return {str(i): key for i, key in enumerate(labels)}
    if all(key.lstrip("-").isdigit() and 0 <= int(key) < width for key in labels):
        return {str(i): str(i) for i in range(width)}
    return None


def _binary_auc(groups: Iterable[tuple[float, float, float]]) -> float | None:
    """ROC AUC from (score, positives, negatives) sorted by score; ties count half (Mann-Whitney U)."""
    pos_total = neg_total = 0.0
    area = 0.0
    for _, pos, neg in groups:
        area += pos * (neg_total + 0.5 * neg)
        pos_total += pos
        neg_total += neg
    if not pos_total or not neg_total:
        return None
    return area / (pos_total * neg_total)


def _grouped(scores: list[tuple[float, bool, float]]) -> list[tuple[float, float, float]]:
    """(score, positive weight, negative weight) per distinct score, from (score, positive, weight) rows."""
    scores.sort(key=lambda item: item[0])
    out: list[tuple[float, float, float]] = []
    for score, positive, weight in scores:
        pos, neg = (weight, 0.0) if positive else (0.0, weight)
        if out and out[-1][0] == score:
            s, p, n = out[-1]
            out[-1] = (s, p + pos, n + neg)
        else:
            out.append((score, pos, neg))
    return out


@with_config(ConfigDict(extra="forbid"))
class LatencyOut(TypedDict):
    p50: float | None
    p95: float | None
    p99: float | None


@with_config(ConfigDict(extra="forbid"))
class VolumeOut(TypedDict):
    start: str | None
    predictions: int
    calls: int
    errors: int


@with_config(ConfigDict(extra="forbid"))
class MetricsOut(TypedDict):  # the metrics object of docs/management-api.md
    model: str
    version: str | None
    environment: str | None
    start: str | None
    end: str | None
    bucket: str
    predictions: int
    labels: int
    label_coverage: float | None
    calls: int
    errors: int
    error_rate: float | None
    latency_ms: LatencyOut
    task: Literal["classification", "regression"] | None
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    mae: float | None
    rmse: float | None
    volume: list[VolumeOut]
    dropped: Annotated[
        dict[str, int],
        Field(description="Prediction spans the SDK reported as not delivered (aither.spans.dropped), by reason."),
    ]


class _Filter:
    def __init__(self, ids: list[int], lo: int, hi: int, weighted: bool = False, approximate: bool = False) -> None:
        self.ids = ids
        self.sql = f"model_id IN ({placeholders(ids)}) AND start_ns >= ? AND start_ns < ?"
        self.params: tuple[int, ...] = (*ids, lo, hi)
        #: Some of these spans were kept 1 in k (``ml.sample_rate``): labelled rows count ``weight`` times.
        self.weighted = weighted
        self.count = "sum(coalesce(weight, 1.0))" if weighted else "count(*)"
        #: Latency percentiles from the hourly histograms alone (``metrics(approximate=True)``).
        self.approximate = approximate


#: (kind, label_kind, pred_key, label_key, scored, rows, n_num, sum_abs, sum_sq): a group of labelled rows' sums.
_GroupRow = tuple[int, int, str, str, int, float, float, float, float]


@dataclasses.dataclass
class _ReadAhead:
    """What :func:`read_ahead` read for these model rows' slices."""

    ids: tuple[int, ...]
    #: (first hour, last hour excluded, (hour, calls, errors, rows) of each hour with spans).
    volume_hours: tuple[int, int, list[tuple[int, int, int, int]]]
    #: Whether some spans were kept 1 in k; whether some instances send aggregates.
    sampled: bool
    aggregated: bool
    #: (start, end) of a slice -> its latency histogram (bucket -> calls).
    latency: dict[tuple[int, int], dict[int, int]]
    #: (start, end) of a slice -> its quality groups, each with its plain and its weighted sums (13 columns).
    quality: dict[
        tuple[int, int], list[tuple[int, int, str, str, int, float, float, float, float, float, float, float, float]]
    ]


_read_ahead: contextvars.ContextVar[_ReadAhead | None] = contextvars.ContextVar(
    "aither_metrics_read_ahead", default=None
)


@contextlib.contextmanager
def read_ahead(conn: Connection, ids: Sequence[int], start_ns: int, slice_ns: int, count: int) -> Iterator[None]:
    """Within it, :func:`metrics` of any of ``count`` slices of ``slice_ns`` from ``start_ns`` reads its latency
    histogram and quality groups from one query per table made here (a chart's 30 slices: two queries, not 60).
    Slices of whole hours (or days) only; else nothing is read ahead. The sums are those the slice's own
    queries would add up."""
    ahead: _ReadAhead | None = None
    if ids and count > 0 and slice_ns % HOUR_NS == 0 and start_ns % HOUR_NS == 0:
        marks = placeholders(ids)
        days = slice_ns % DAY_NS == 0 and start_ns % DAY_NS == 0
        table, unit, unit_ns = ("latency_days", "day", DAY_NS) if days else ("latency_hours", "hour", HOUR_NS)
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        histograms: list[dict[int, int]] = [{} for _ in range(count)]
        for index, bucket, calls in conn.execute(
            f"SELECT ({unit} - ?) / ?, bucket, sum(calls) FROM {table} WHERE model_id IN ({marks})"
            f" AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2",
            (first, per, *ids, first, first + per * count),
        ):
            histograms[int(index)][bucket] = calls
        table, unit = ("quality_days", "day") if days else ("quality_hours", "hour")
        per, first = slice_ns // unit_ns, start_ns // unit_ns
        groups: list[list[tuple[int, int, str, str, int, float, float, float, float, float, float, float, float]]] = [
            [] for _ in range(count)
        ]
        for index, *row in conn.execute(
            f"SELECT ({unit} - ?) / ?, kind, label_kind, pred_key, label_key, max(scored), sum(rows), sum(n_num),"
            " sum(sum_abs), sum(sum_sq), sum(w_rows), sum(w_num), sum(w_abs), sum(w_sq) FROM"
            f" {table} WHERE model_id IN ({marks}) AND {unit} >= ? AND {unit} < ? GROUP BY 1, 2, 3, 4, 5"
            " HAVING sum(rows) > 0",
            (first, per, *ids, first, first + per * count),
        ):
            groups[int(index)].append(tuple(row))
        # The window's volume per hour (a slice's buckets are sums of its hours), and what every slice of these
        # model rows asks alike: whether some spans were kept 1 in k, whether some instances send aggregates.
        first_hour = start_ns // HOUR_NS
        last_hour = first_hour + slice_ns // HOUR_NS * count
        ahead = _ReadAhead(
            ids=tuple(ids),
            volume_hours=(
                first_hour,
                last_hour,
                conn.execute(
                    "SELECT hour, sum(calls), sum(errors), sum(rows) FROM volume_hours"
                    f" WHERE model_id IN ({marks}) AND hour >= ? AND hour < ? GROUP BY 1",
                    (*ids, first_hour, last_hour),
                ).fetchall(),
            ),
            sampled=_sampled(conn, ids),
            aggregated=query_aggregates.uses_aggregates(conn, ids),
            latency={},
            quality={},
        )
        for i in range(count):
            bounds = (start_ns + i * slice_ns, start_ns + (i + 1) * slice_ns)
            ahead.latency[bounds] = histograms[i]
            if len(groups[i]) <= _MAX_PAIRS:
                ahead.quality[bounds] = groups[i]
    reset = _read_ahead.set(ahead)
    try:
        yield
    finally:
        _read_ahead.reset(reset)


def _ahead(ids: Sequence[int]) -> _ReadAhead | None:
    """What :func:`read_ahead` read for these model rows, if it did."""
    found = _read_ahead.get()
    return found if found is not None and found.ids == tuple(ids) else None


def _sampled(conn: Connection, ids: Sequence[int]) -> bool:
    """Whether some spans of these model rows were kept 1 in k (``ml.sample_rate``)."""
    found = conn.execute(f"SELECT 1 FROM models WHERE id IN ({placeholders(ids)}) AND sampled = 1 LIMIT 1", ids)
    return found.fetchone() is not None


def _volume_hours(
    conn: Connection, ids: Sequence[int], first: int, last: int, per: int
) -> Iterable[tuple[int, int, int, int]]:
    """(bucket of ``per`` hours, calls, errors, rows) of hours [first, last), from the hours read ahead when
    they cover them (the same sums: the bucket is the hour divided by ``per``, as in SQL)."""
    ahead = _ahead(ids)
    if ahead is not None and ahead.volume_hours[0] <= first and last <= ahead.volume_hours[1]:
        out: dict[int, list[int]] = {}
        for hour, calls, errors, rows in ahead.volume_hours[2]:
            if first <= hour < last:
                cell = out.setdefault(hour // per, [0, 0, 0])
                cell[0] += calls
                cell[1] += errors
                cell[2] += rows
        return [(b, c, e, r) for b, (c, e, r) in sorted(out.items())]
    return conn.execute(
        f"SELECT hour / {per}, sum(calls), sum(errors), sum(rows) FROM volume_hours"
        f" WHERE model_id IN ({placeholders(ids)}) AND hour >= ? AND hour < ? GROUP BY 1",
        (*ids, first, last),
    )


def _latency(conn: Connection, f: _Filter, lo: int, hi: int, calls: int) -> dict[str, float | None]:
    """Nearest-rank percentiles: the hourly latency histogram locates each rank's bucket, then one scan of the
    covering (model, time) index reads the latencies inside those few buckets (about 4% of the calls around
    the median, far fewer in the tail) to pick the exact value; past :data:`_EXACT_PERCENTILE_CALLS` calls, or
    for approximate metrics, the value is interpolated inside its bucket instead."""
    ids = f.ids
    histogram: dict[int, int] = {}
    # Whole days from latency_days (a 30-day range reads 30 of them, not 720 hours of buckets), whole hours
    # from latency_hours, the rest from the raw rows.
    days, hours, edges = split_days(lo, hi)
    rollups = ([("latency_days", "day", days)] if days is not None else []) + [
        ("latency_hours", "hour", h) for h in hours
    ]
    ahead = _ahead(ids)
    read = None if ahead is None else ahead.latency.get((lo, hi))
    if read is not None:
        histogram, rollups, edges = dict(read), [], []  # a slice of whole hours: all of it read ahead
    for table, unit, (first, last) in rollups:
        for bucket, count in conn.execute(
            f"SELECT bucket, sum(calls) FROM {table} WHERE model_id IN ({placeholders(ids)})"
            f" AND {unit} >= ? AND {unit} < ? GROUP BY bucket",
            (*ids, first, last),
        ):
            histogram[bucket] = histogram.get(bucket, 0) + count
    for a, b in edges:
        for (latency,) in conn.execute(
            f"SELECT latency_ns FROM predictions INDEXED BY predictions_model_time WHERE {f.sql}",
            (*ids, a, b),
        ):
            bucket = latency_bucket(latency)
            histogram[bucket] = histogram.get(bucket, 0) + 1
    # Which bucket holds each rank, and the rank's offset inside it.
    targets: dict[str, tuple[int, int]] = {}
    below = 0
    pending = sorted(_percentile_ranks(calls).items(), key=lambda item: item[1])
    for bucket in sorted(histogram):
        count = histogram[bucket]
        while pending and pending[0][1] < below + count:
            label, rank = pending.pop(0)
            targets[label] = (bucket, rank - below)
        below += count
        if not pending:
            break
    out: dict[str, float | None] = dict.fromkeys(_percentile_ranks(calls))
    if (f.approximate or calls > _EXACT_PERCENTILE_CALLS) and all(
        None not in latency_range(b) for b, _ in targets.values()
    ):
        # Past this many calls, the rank is placed inside its bucket (each 4% wider than the one before) by
        # geometric interpolation, as the aggregates' percentiles are: within about 2% of the exact value,
        # never more than the bucket's 4%. The exact pass below reads the whole time range of the covering
        # index, which grows with the data (about 0.15 s a million calls).
        for label, (bucket, offset) in targets.items():
            low, high = latency_range(bucket)
            assert low is not None and high is not None
            out[label] = low * (high / low) ** ((offset + 0.5) / histogram[bucket]) / 1e6
        return out
    # One pass over the covering (model, time) index reads just the latencies in those buckets.
    buckets = sorted({bucket for bucket, _ in targets.values()})
    ranges, params = [], []
    for bucket in buckets:
        low, high = latency_range(bucket)
        terms = []
        if low is not None:
            terms.append("latency_ns >= ?")
            params.append(low)
        if high is not None:
            terms.append("latency_ns < ?")
            params.append(high)
        ranges.append(" AND ".join(terms) or "1 = 1")
    values: dict[int, list[int]] = {bucket: [] for bucket in buckets}
    if buckets:
        for (latency,) in conn.execute(
            f"SELECT latency_ns FROM predictions INDEXED BY predictions_model_time WHERE {f.sql}"
            f" AND (({') OR ('.join(ranges)}))",
            (*ids, lo, hi, *params),
        ):
            values[latency_bucket(latency)].append(latency)
    for label, (bucket, offset) in targets.items():
        found = sorted(values[bucket])
        out[label] = found[offset] / 1e6 if offset < len(found) else None
    return out


def _volume(conn: Connection, f: _Filter, lo: int, hi: int, bucket_s: int) -> list[tuple[int, int, int, int]]:
    """(bucket, calls, errors, rows) per time bucket, from ``volume_minutes`` when buckets are whole minutes."""
    bucket_ns = bucket_s * NS
    out: dict[int, list[int]] = {}
    parts: list[Iterable[tuple[int, int, int, int]]] = []
    # Whole hours from volume_hours when buckets are whole hours (a day is 24 rows, not 1,440 minutes), whole
    # minutes from volume_minutes, the rest from the raw rows.
    hours, spans = split(lo, hi, HOUR_NS) if bucket_s % 3600 == 0 else (None, [(lo, hi)])
    if hours is not None:
        parts.append(_volume_hours(conn, f.ids, *hours, bucket_s // 3600))
    edges: list[tuple[int, int]] = []
    for span_lo, span_hi in spans:
        minutes, rest = split(span_lo, span_hi, MINUTE_NS) if bucket_s % 60 == 0 else (None, [(span_lo, span_hi)])
        edges.extend(rest)
        if minutes is not None:
            parts.append(
                conn.execute(
                    f"SELECT minute / {bucket_s // 60}, sum(calls), sum(errors), sum(rows) FROM volume_minutes"
                    f" WHERE model_id IN ({placeholders(f.ids)}) AND minute >= ? AND minute < ? GROUP BY 1",
                    (*f.ids, *minutes),
                )
            )
    for a, b in edges:
        parts.append(
            conn.execute(
                f"SELECT start_ns / {bucket_ns}, count(*), sum(status), sum(n_rows)"
                f" FROM predictions INDEXED BY predictions_model_time WHERE {f.sql} GROUP BY 1",
                (*f.ids, a, b),
            )
        )
    for part in parts:
        for b, calls, errors, rows in part:
            add_sums(out, b, calls, errors, rows)
    return [(b, *out[b]) for b in sorted(out)]  # type: ignore[misc]


def _merged_volume(
    volume: list[tuple[int, int, int, int]], adjustments: dict[int, list[int]]
) -> list[tuple[int, int, int, int]]:
    """(bucket, calls, errors, rows) of the spans plus ``adjustments``; buckets left empty are dropped."""
    merged = {b: [calls, errors, rows] for b, calls, errors, rows in volume}
    for b, (calls, errors, rows) in adjustments.items():
        cell = merged.setdefault(b, [0, 0, 0])
        cell[0] += calls
        cell[1] += errors
        cell[2] += rows
    return [(b, c, e, r) for b, (c, e, r) in sorted(merged.items()) if c or e or r]


@dataclasses.dataclass
class QualityGroup:
    """One group of labelled rows: their kinds and classes, and the sums the quality metrics come from."""

    kind: int | None
    label_kind: int
    pred: str | None
    """The predicted class (class-like rows only, else ``None``)."""
    label: str | None
    scored: int
    """1 when some rows carry a binary ``predict_proba`` score."""
    rows: float
    """Labelled rows (weighted: a span kept 1 in k counts k)."""
    n_num: float
    """Rows with a numeric prediction and label."""
    sum_abs: float
    sum_sq: float

    def add(self, scored: int, rows: float, n_num: float, sum_abs: float, sum_sq: float) -> None:
        self.scored = max(self.scored, scored)
        self.rows += rows
        self.n_num += n_num
        self.sum_abs += sum_abs or 0.0
        self.sum_sq += sum_sq or 0.0


def _quality_groups(conn: Connection, f: _Filter, lo: int, hi: int, classes: bool) -> list[QualityGroup]:
    """The groups of labelled rows; classes only for class-like rows and only when ``classes``. At most
    _MAX_PAIRS + 1 groups."""
    ids = f.ids
    pk, lk = ("pred_key", "label_key") if classes else (f"'{NO_KEY}'", f"'{NO_KEY}'")
    groups: dict[tuple[int, int, str, str], QualityGroup] = {}
    parts: list[Iterable[_GroupRow]] = []
    # Whole UTC days from quality_days, whole hours from quality_hours, the rest from the raw rows.
    days, hours_list, edges = split_days(lo, hi)
    rollups = ([("quality_days", "day", days)] if days is not None else []) + [
        ("quality_hours", "hour", h) for h in hours_list
    ]
    rollup_sums = (
        "sum(w_rows), sum(w_num), sum(w_abs), sum(w_sq)"
        if f.weighted
        else "sum(rows), sum(n_num), sum(sum_abs), sum(sum_sq)"
    )
    ahead = _ahead(ids) if classes else None
    read = None if ahead is None else ahead.quality.get((lo, hi))
    if read is not None:
        # A slice of whole hours, read ahead: (kind, label_kind, pred, label, scored, 4 sums, 4 weighted sums).
        parts.append([(*row[:5], *(row[9:] if f.weighted else row[5:9])) for row in read])
        rollups, edges = [], []
    for table, unit, (first, last) in rollups:
        parts.append(
            conn.execute(
                f"SELECT kind, label_kind, {pk}, {lk}, max(scored), {rollup_sums}"
                f" FROM {table} WHERE model_id IN ({placeholders(ids)}) AND {unit} >= ? AND {unit} < ?"
                f" GROUP BY 1, 2, 3, 4 HAVING sum(rows) > 0 LIMIT {_MAX_PAIRS + 1}",
                (*ids, first, last),
            )
        )
    class_like = f"label_kind = {KIND_CLASS} AND kind IN ({KIND_CLASS}, {KIND_PROBA})"
    pk, lk = (
        (f"CASE WHEN {class_like} THEN pred_key END", f"CASE WHEN {class_like} THEN label_key END")
        if classes
        else ("NULL", "NULL")
    )
    if f.weighted:
        w = "coalesce(weight, 1.0)"
        raw_sums = (
            f"sum({w}), coalesce(sum(CASE WHEN pred_num - label_num IS NOT NULL THEN {w} END), 0.0),"
            f" coalesce(sum({w} * abs(pred_num - label_num)), 0.0),"
            f" coalesce(sum({w} * (pred_num - label_num) * (pred_num - label_num)), 0.0)"
        )
    else:
        raw_sums = (
            "count(*), count(pred_num - label_num), coalesce(sum(abs(pred_num - label_num)), 0.0),"
            " coalesce(sum((pred_num - label_num) * (pred_num - label_num)), 0.0)"
        )
    for a, b in edges:
        parts.append(
            conn.execute(
                f"SELECT coalesce(kind, {NO_KIND}), label_kind, coalesce({pk}, '{NO_KEY}'),"
                f" coalesce({lk}, '{NO_KEY}'), max(CASE WHEN score IS NOT NULL THEN 1 ELSE 0 END), {raw_sums}"
                f" FROM prediction_rows INDEXED BY prediction_rows_labelled"
                f" WHERE {f.sql} AND label_kind IS NOT NULL GROUP BY 1, 2, 3, 4 LIMIT {_MAX_PAIRS + 1}",
                (*ids, a, b),
            )
        )
    for part in parts:
        for kind, label_kind, pred, label, scored, rows, n_num, sum_abs, sum_sq in part:
            group = groups.get((kind, label_kind, pred, label))
            if group is None:
                group = groups[(kind, label_kind, pred, label)] = QualityGroup(
                    None if kind == NO_KIND else kind, label_kind, pred or None, label or None, 0, 0, 0, 0.0, 0.0
                )
            group.add(scored, rows, n_num, sum_abs, sum_sq)
            if len(groups) > _MAX_PAIRS:
                return list(groups.values())
    return list(groups.values())


class _Scores(TypedDict):
    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float | None


def _classification(
    conn: Connection, f: _Filter, pairs: list[tuple[int, str, str, float]], binary_scores: bool, auc: bool = True
) -> _Scores | None:
    """Scores from (kind, predicted key, label key, rows) groups of the labelled class-like rows."""
    width = 0
    if any(kind == KIND_PROBA for kind, _, _, _ in pairs):
        if binary_scores:
            width = 2
        else:
            # Only multiclass probability rows are read from the table; everything else comes from the index.
            width = (
                conn.execute(
                    "SELECT max(json_array_length(proba)) FROM prediction_rows INDEXED BY prediction_rows_probas"
                    f" WHERE {f.sql}"
                    f" AND label_kind = {KIND_CLASS} AND kind = {KIND_PROBA} AND proba IS NOT NULL",
                    f.params,
                ).fetchone()[0]
                or 0
            )
    mapping = _class_map((label for kind, _, label, _ in pairs if kind == KIND_PROBA), width) if width else None
    confusion: dict[tuple[str, str], float] = {}
    for kind, pred, label, count in pairs:
        if kind == KIND_PROBA:
            if mapping is None or pred not in mapping:
                continue
            pred = mapping[pred]
        confusion[(pred, label)] = confusion.get((pred, label), 0) + count
    total = sum(confusion.values())
    if not total:
        return None
    classes = {c for pair in confusion for c in pair}
    predicted = dict.fromkeys(classes, 0.0)
    actual = dict.fromkeys(classes, 0.0)
    for (pred, label), count in confusion.items():
        predicted[pred] += count
        actual[label] += count
    precisions, recalls, f1s = [], [], []
    for c in classes:
        tp = confusion.get((c, c), 0)
        precisions.append(tp / predicted[c] if predicted[c] else 0.0)
        recalls.append(tp / actual[c] if actual[c] else 0.0)
        denominator = predicted[c] + actual[c]
        f1s.append(2 * tp / denominator if denominator else 0.0)
    k = len(classes)
    return {
        "accuracy": sum(confusion.get((c, c), 0) for c in classes) / total,
        "precision": sum(precisions) / k,
        "recall": sum(recalls) / k,
        "f1": sum(f1s) / k,
        "auc": _auc(conn, f, mapping, width) if mapping and auc else None,
    }


def _binned_auc(conn: Connection, f: _Filter, mapping: dict[str, str]) -> float | None:
    """The binary AUC of scores placed in their bin of ``score_hours`` / ``score_days`` (ties within a bin count
    half): the dashboard's per-slice figure, within a fraction of the pairs that share a bin of the exact one."""
    positive, negative = mapping["1"], mapping["0"]
    bins = score_bins(conn, f.ids, f.params[-2], f.params[-1])
    groups: dict[int, list[float]] = {}
    for (index, label), (rows, w_rows, _) in bins.items():
        if label != positive and label != negative:
            continue
        g = groups.setdefault(index, [0.0, 0.0])
        g[0 if label == positive else 1] += w_rows if f.weighted else rows
    return _binary_auc((float(i), p, n) for i, (p, n) in sorted(groups.items()))


def _auc(conn: Connection, f: _Filter, mapping: dict[str, str], width: int) -> float | None:
    if width == 2 and f.approximate:
        return _binned_auc(conn, f, mapping)
    if width == 2:
        positive = mapping["1"]
        groups: dict[float, list[float]] = {}
        for score, label, count in conn.execute(
            f"SELECT score, label_key, {f.count} FROM prediction_rows INDEXED BY prediction_rows_scores"
            f" WHERE {f.sql} AND label_kind = {KIND_CLASS} AND kind = {KIND_PROBA} AND score IS NOT NULL"
            " GROUP BY score, label_key",
            f.params,
        ):
            if label != positive and label != mapping["0"]:
                continue
            g = groups.setdefault(score, [0.0, 0.0])
            g[0 if label == positive else 1] += count
        return _binary_auc((s, p, n) for s, (p, n) in sorted(groups.items()))
    index = {key: int(col) for col, key in mapping.items()}
    rows = conn.execute(
        f"SELECT proba, label_key, {'coalesce(weight, 1.0)' if f.weighted else '1.0'}"
        " FROM prediction_rows INDEXED BY prediction_rows_probas"
        f" WHERE {f.sql} AND label_kind = {KIND_CLASS} AND kind = {KIND_PROBA} AND proba IS NOT NULL"
        f" LIMIT {_MAX_PROBA_ROWS + 1}",
        f.params,
    ).fetchall()
    if len(rows) > _MAX_PROBA_ROWS:
        return None
    decoded = [(json.loads(p), index[label], w) for p, label, w in rows if label in index]
    decoded = [(p, y, w) for p, y, w in decoded if len(p) == width]
    aucs = []
    for col in range(width):
        auc = _binary_auc(_grouped([(p[col], y == col, w) for p, y, w in decoded]))
        if auc is not None:
            aucs.append(auc)
    return sum(aucs) / len(aucs) if aucs else None


def no_metrics(
    name: str,
    *,
    version: str | None = None,
    environment: str | None = None,
    start: str | None = None,
    end: str | None = None,
    bucket: str = "",
) -> MetricsOut:
    """The metrics of a range without predictions: counts 0, figures ``None``."""
    return {
        "model": name,
        "version": version,
        "environment": environment,
        "start": start,
        "end": end,
        "bucket": bucket,
        "predictions": 0,
        "labels": 0,
        "label_coverage": None,
        "calls": 0,
        "errors": 0,
        "error_rate": None,
        "latency_ms": {"p50": None, "p95": None, "p99": None},
        "task": None,
        "accuracy": None,
        "precision": None,
        "recall": None,
        "f1": None,
        "auc": None,
        "mae": None,
        "rmse": None,
        "volume": [],
        "dropped": {},
    }


def metrics(
    conn: Connection,
    name: str,
    *,
    version: str | None = None,
    environment: str | None = None,
    start_ns: int | None = None,
    end_ns: int | None = None,
    bucket: str | None = None,
    approximate: bool = False,
    auc: bool = True,
) -> MetricsOut | None:
    """The metrics object of docs/management-api.md; ``None`` when no model has this name.

    ``approximate`` (the dashboard's charts, one call per slice): latency percentiles placed inside their
    histogram bucket, as past :data:`_EXACT_PERCENTILE_CALLS` calls (within about 2%, never more than the
    bucket's 4%), without reading the raw latencies around each rank; a binary AUC from the scores' 0.01-wide
    bins (``score_hours``), ties within a bin counted half, without reading each labelled score. Without
    ``auc`` (a table that shows none), the AUC is not computed and is ``None``."""
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    lo = max(0, start_ns if start_ns is not None else 0)
    hi = min(MAX_NS, end_ns if end_ns is not None else MAX_NS)
    ids = [m[0] for m in models]
    first = max(lo, min((m[1] for m in models), default=lo))
    last = min(hi, max((m[2] for m in models), default=lo))
    if bucket is None:
        bucket = auto_bucket(first, last)
    bucket_s = parse_bucket(bucket)
    if last > first and (last - first) / (bucket_s * NS) > MAX_BUCKETS:
        raise BucketTooSmall(f"bucket {bucket} splits the range into more than {MAX_BUCKETS} buckets")

    result = no_metrics(
        name,
        version=version,
        environment=environment,
        start=iso(lo) if start_ns is not None else None,
        end=iso(hi) if end_ns is not None else None,
        bucket=bucket,
    )
    if not ids or lo >= hi:
        return result
    # Every stored start time of these model rows lies in [first seen, last seen]: narrowing the range to it
    # leaves the answer unchanged and the raw edges small.
    qlo = max(lo, min(m[1] for m in models))
    qhi = min(hi, max(m[2] for m in models) + 1)
    if qlo >= qhi:
        return result
    ahead = _ahead(ids)
    f = _Filter(
        ids, qlo, qhi, weighted=_sampled(conn, ids) if ahead is None else ahead.sampled, approximate=approximate
    )
    bucket_ns = bucket_s * NS

    volume = _volume(conn, f, qlo, qhi, bucket_s)
    # Instances that send aggregates (/v1/metrics) count every call, sent as a span or not: their counts and
    # latencies replace those of their spans.
    aggregated = query_aggregates.uses_aggregates(conn, ids) if ahead is None else ahead.aggregated
    if aggregated:
        volume = _merged_volume(volume, query_aggregates.volume_adjustments(conn, ids, qlo, qhi, bucket_s))
    calls = sum(v[1] for v in volume)
    errors = sum(v[2] for v in volume)
    predictions = sum(v[3] for v in volume)
    result["volume"] = [
        {"start": iso(b * bucket_ns), "predictions": p, "calls": c, "errors": e} for b, c, e, p in volume
    ]
    result["predictions"], result["calls"], result["errors"] = predictions, calls, errors
    if calls:
        result["error_rate"] = errors / calls
        latency = (
            query_aggregates.latency_from_histograms(conn, ids, qlo, qhi, _PERCENTILES)
            if aggregated
            else _latency(conn, f, qlo, qhi, calls)
        )
        result["latency_ms"] = {"p50": latency["p50"], "p95": latency["p95"], "p99": latency["p99"]}
    result["dropped"] = query_aggregates.dropped_spans(conn, ids, qlo, qhi)

    # The labelled rows' counts, regression sums and confusion matrix: class keys are grouped only for
    # class-like rows, so regression rows collapse into a handful of groups.
    groups = _quality_groups(conn, f, qlo, qhi, classes=True)
    too_many = len(groups) > _MAX_PAIRS
    if too_many:
        # Integer-valued "classes" with thousands of distinct pairs: not a classifier; keep the sums only.
        groups = _quality_groups(conn, f, qlo, qhi, classes=False)
    # Weighted (spans kept 1 in k count k times), the labelled rows are a float sum; the API counts rows.
    labels = sum(g.rows for g in groups)
    result["labels"] = round(labels)
    if predictions:
        result["label_coverage"] = labels / predictions
    numbers = (KIND_CLASS, KIND_NUMBER)
    numeric = [g for g in groups if g.kind in numbers and g.label_kind in numbers]
    n_num = sum(g.n_num for g in numeric)
    pairs = [
        (g.kind, g.pred, g.label, g.rows)
        for g in groups
        if g.kind is not None and g.pred is not None and g.label is not None
    ]
    if n_num and any(KIND_NUMBER in (g.kind, g.label_kind) for g in numeric if g.n_num):
        result["task"] = "regression"
        result["mae"] = finite(sum(g.sum_abs for g in numeric) / n_num)
        mse = sum(g.sum_sq for g in numeric) / n_num
        result["rmse"] = finite(math.sqrt(mse)) if math.isfinite(mse) else None
    elif pairs and not too_many:
        binary = any(g.scored for g in groups if g.kind == KIND_PROBA)
        scores = _classification(conn, f, pairs, binary, auc)
        if scores is not None:
            result["task"] = "classification"
            result["accuracy"], result["precision"], result["recall"] = (
                scores["accuracy"],
                scores["precision"],
                scores["recall"],
            )
            result["f1"], result["auc"] = scores["f1"], scores["auc"]
    return result
