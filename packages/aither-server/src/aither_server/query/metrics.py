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

import math
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, with_config
from typing_extensions import TypedDict

from aither_server.model.records import KIND_CLASS, KIND_NUMBER, KIND_PROBA
from aither_server.query import aggregates as query_aggregates
from aither_server.query import latency as latency_query
from aither_server.query import volume as volume_query
from aither_server.query.classification import classification
from aither_server.query.metric_filter import MAX_PAIRS, Filter
from aither_server.query.models import model_ids
from aither_server.query.quality_groups import quality_groups
from aither_server.query.read_ahead import ahead_for, sampled
from aither_server.query.render import finite
from aither_server.query.time import MAX_BUCKETS, MAX_NS, NS, BucketTooSmall, auto_bucket, iso, parse_bucket
from aither_server.store.engine import Connection

__all__ = ["LatencyOut", "MetricsOut", "VolumeOut", "metrics", "no_metrics"]

# The answers are TypedDicts of typing_extensions (pydantic validates them on Python < 3.12); the API document
# describes them as they are declared here (``api/schemas.py``).


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
    histogram bucket, as past :data:`~aither_server.query.latency.EXACT_PERCENTILE_CALLS` calls (within about 2%,
    never more than the bucket's 4%), without reading the raw latencies around each rank; a binary AUC from the
    scores' 0.01-wide bins (``score_hours``), ties within a bin counted half, without reading each labelled score.
    Without ``auc`` (a table that shows none), the AUC is not computed and is ``None``."""
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
    ahead = ahead_for(ids)
    f = Filter(ids, qlo, qhi, weighted=sampled(conn, ids) if ahead is None else ahead.sampled, approximate=approximate)
    bucket_ns = bucket_s * NS

    volume = volume_query.volume(conn, f, qlo, qhi, bucket_s)
    # Instances that send aggregates (/v1/metrics) count every call, sent as a span or not: their counts and
    # latencies replace those of their spans.
    aggregated = query_aggregates.uses_aggregates(conn, ids) if ahead is None else ahead.aggregated
    if aggregated:
        volume = volume_query.merged_volume(volume, query_aggregates.volume_adjustments(conn, ids, qlo, qhi, bucket_s))
    calls = sum(v[1] for v in volume)
    errors = sum(v[2] for v in volume)
    predictions = sum(v[3] for v in volume)
    result["volume"] = [
        {"start": iso(b * bucket_ns), "predictions": p, "calls": c, "errors": e} for b, c, e, p in volume
    ]
    result["predictions"], result["calls"], result["errors"] = predictions, calls, errors
    if calls:
        result["error_rate"] = errors / calls
        percentiles = (
            query_aggregates.latency_from_histograms(conn, ids, qlo, qhi, latency_query.PERCENTILES)
            if aggregated
            else latency_query.latency(conn, f, qlo, qhi, calls)
        )
        result["latency_ms"] = {"p50": percentiles["p50"], "p95": percentiles["p95"], "p99": percentiles["p99"]}
    result["dropped"] = query_aggregates.dropped_spans(conn, ids, qlo, qhi)

    # The labelled rows' counts, regression sums and confusion matrix: class keys are grouped only for
    # class-like rows, so regression rows collapse into a handful of groups.
    groups = quality_groups(conn, f, qlo, qhi, classes=True)
    too_many = len(groups) > MAX_PAIRS
    if too_many:
        # Integer-valued "classes" with thousands of distinct pairs: not a classifier; keep the sums only.
        groups = quality_groups(conn, f, qlo, qhi, classes=False)
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
        scores = classification(conn, f, pairs, binary, auc)
        if scores is not None:
            result["task"] = "classification"
            result["accuracy"], result["precision"], result["recall"] = (
                scores["accuracy"],
                scores["precision"],
                scores["recall"],
            )
            result["f1"], result["auc"] = scores["f1"], scores["auc"]
    return result
