"""What the dashboard's pages show, gathered from the query code the API answers with (``query/metrics.py``,
``drift/query.py``, the monitor store): the pages and the API never disagree."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Literal, TypedDict

from markupsafe import Markup

from aither_server.drift.query import NotFound, data_quality, drift, drift_series_all
from aither_server.drift.sketches import HOUR_NS
from aither_server.drift.store import DriftStore
from aither_server.model.cancellation import check
from aither_server.monitors.store import MonitorStore
from aither_server.query import metrics as query_metrics
from aither_server.query import models as query_models
from aither_server.query import time as query_time
from aither_server.query.metrics import MetricsOut, no_metrics
from aither_server.query.models import ModelOut
from aither_server.query.read_ahead import read_ahead
from aither_server.query.score_bins import sliced
from aither_server.query.time import NS
from aither_server.store.database import Store
from aither_server.store.engine import Connection
from aither_server.ui.charts import Series, line_chart
from aither_server.ui.diagnose import diagnose, findings, flag_data_quality, headline_interval, quality_series
from aither_server.ui.estimate_chart import estimated_chart
from aither_server.ui.window import Window

__all__ = ["ModelRow", "Totals", "VersionSegment", "model_page", "models_page"]


class ModelRow(ModelOut):
    """A row of the models page: the model and its last 24 hours."""

    calls_24h: int
    error_rate_24h: float | None
    label_coverage: float | None
    quality_name: str
    quality: float | None
    quality_window: str
    drift: str
    drifted: list[str]
    monitors: int
    alerts: int


class Totals(TypedDict):
    """A window's headline figures, from its slices."""

    calls: int
    predictions: int
    labels: int
    error_rate: float | None
    label_coverage: float | None
    task: Literal["classification", "regression"] | None
    accuracy: float | None
    mae: float | None


class VersionSegment(TypedDict):
    """One version x environment's figures over the window."""

    version: str | None
    environment: str | None
    calls: int
    error_rate: float | None
    labels: int
    quality_name: str
    quality: float | None


def _quality(found: MetricsOut | Totals) -> tuple[str, float | None]:
    """The headline quality figure: accuracy for a classifier, MAE for a regressor."""
    if found["task"] == "regression":
        return "MAE", found["mae"]
    if found["task"] == "classification":
        return "accuracy", found["accuracy"]
    return "", None


def _drift_status(drift_store: DriftStore, name: str, start_ns: int, end_ns: int) -> tuple[str, list[str]]:
    try:
        answer = drift(drift_store, name, window=(start_ns, end_ns))
    except NotFound:
        return "no reference", []
    drifted = [f["name"] for f in answer["features"] if f["drifted"]]
    return ("drifted" if drifted else "ok"), drifted


def models_page(store: Store, drift_store: DriftStore, monitors: MonitorStore, sort: str) -> list[ModelRow]:
    """One row per model: its last 24 hours (calls, error rate, label coverage, quality), drift, monitors."""
    now = time.time_ns()
    start = now - 86400 * NS
    conn = store.reader()
    states: dict[str, list[str]] = {}
    for monitor in monitors.all():
        states.setdefault(monitor.model, []).append(monitor.state)
    rows: list[ModelRow] = []
    for model in query_models.list_models(conn):
        check()
        found = query_metrics.metrics(conn, model["name"], start_ns=start, end_ns=now, bucket="1d") or no_metrics(
            model["name"]
        )
        quality_name, quality = _quality(found)
        quality_window = "24 h"
        if quality is None and found["predictions"]:
            # Labels arrive late: the last week's figure, said as such, rather than a bare "-".
            week = query_metrics.metrics(conn, model["name"], start_ns=now - 7 * 86400 * NS, end_ns=now, bucket="7d")
            quality_name, quality = _quality(week or no_metrics(model["name"]))
            quality_window = "7 d, no labels in 24 h yet"
        drift_state, drifted = _drift_status(drift_store, model["name"], start, now)
        model_states = states.get(model["name"], [])
        rows.append(
            {
                **model,
                "calls_24h": found["calls"],
                "error_rate_24h": found["error_rate"],
                "label_coverage": found["label_coverage"],
                "quality_name": quality_name,
                "quality": quality,
                "quality_window": quality_window,
                "drift": drift_state,
                "drifted": drifted,
                "monitors": len(model_states),
                "alerts": model_states.count("ALERT"),
            }
        )
    keys: dict[str, Callable[[ModelRow], str | float]] = {
        "name": lambda r: r["name"],
        "calls": lambda r: -r["calls_24h"],
        "errors": lambda r: -(r["error_rate_24h"] or 0),
        "coverage": lambda r: r["label_coverage"] or 0,
        "quality": lambda r: r["quality"] if r["quality"] is not None else float("inf"),
        "alerts": lambda r: -r["alerts"],
    }
    return sorted(rows, key=keys.get(sort, keys["name"]))


def _bucketed(
    store: Store, name: str, version: str | None, environment: str | None, start_ns: int, end_ns: int, points: int
) -> list[tuple[int, MetricsOut]]:
    """The metrics of each of ``points`` equal slices of the range, by the metrics endpoint's own function."""
    conn = store.reader()
    width = (end_ns - start_ns) // points
    models = query_models.model_ids(conn, name, version, environment) or []
    ids = [m[0] for m in models]
    # The slices' rollups (scores for their AUC, latency histograms, quality groups) in one query per table, not
    # one per slice.
    with sliced(conn, ids, start_ns, width, points), read_ahead(conn, ids, start_ns, width, points):
        return _each_slice(conn, name, version, environment, start_ns, width, points)


def _each_slice(
    conn: Connection, name: str, version: str | None, environment: str | None, start_ns: int, width: int, points: int
) -> list[tuple[int, MetricsOut]]:
    out = []
    for i in range(points):
        check()
        lo = start_ns + i * width
        # One volume bucket per slice: the page reads no finer volume.
        found = query_metrics.metrics(
            conn,
            name,
            version=version,
            environment=environment,
            start_ns=lo,
            end_ns=lo + width,
            bucket=f"{max(1, width // NS)}s",
            approximate=True,
        )
        out.append((lo + width // 2, found or no_metrics(name)))
    return out


def _weighted(slices: list[MetricsOut], field: Literal["accuracy", "mae"]) -> float | None:
    """A per-label mean over the slices (exact for accuracy and MAE: each slice's is a mean over its labels)."""
    pairs = [(value, f["labels"]) for f in slices if (value := f[field]) is not None and f["labels"]]
    weight = sum(w for _, w in pairs)
    return sum(v * w for v, w in pairs) / weight if weight else None


def _totals(slices: list[MetricsOut]) -> Totals:
    """The range's headline figures from its slices' metrics: a second pass over the whole range would cost
    as much as all the slices together (latency and AUC read raw rows)."""
    calls = sum(f["calls"] for f in slices)
    predictions = sum(f["predictions"] for f in slices)
    labels = sum(f["labels"] for f in slices)
    errors = sum(f["errors"] for f in slices)
    return {
        "calls": calls,
        "predictions": predictions,
        "labels": labels,
        "error_rate": errors / calls if calls else None,
        "label_coverage": labels / predictions if predictions else None,
        "task": next((f["task"] for f in slices if f["task"]), None),
        "accuracy": _weighted(slices, "accuracy"),
        "mae": _weighted(slices, "mae"),
    }


def segments(
    store: Store, name: str, versions: list[str], environments: list[str], start_ns: int, end_ns: int
) -> list[VersionSegment]:
    """Quality by segment: each version x environment's figures over the range, when there is more than one."""
    version_options: list[str | None] = list(versions) or [None]
    environment_options: list[str | None] = list(environments) or [None]
    pairs = [(v, e) for v in version_options for e in environment_options]
    if len(pairs) < 2:
        return []
    conn = store.reader()
    out: list[VersionSegment] = []
    for version, environment in pairs:
        check()
        # Approximate, without AUC: a segment shows neither latency nor AUC, and exact percentiles would read the
        # whole range's raw rows.
        found = query_metrics.metrics(
            conn,
            name,
            version=version,
            environment=environment,
            start_ns=start_ns,
            end_ns=end_ns,
            bucket=f"{max(1, min(366 * 86400, (end_ns - start_ns) // NS))}s",
            approximate=True,
            auc=False,
        )
        if not found or not found["calls"]:
            continue
        quality_name, quality = _quality(found)
        out.append(
            {
                "version": version,
                "environment": environment,
                "calls": found["calls"],
                "error_rate": found["error_rate"],
                "labels": found["labels"],
                "quality_name": quality_name,
                "quality": quality,
            }
        )
    return out


def model_page(
    store: Store,
    drift_store: DriftStore,
    name: str,
    *,
    version: str | None,
    environment: str | None,
    period: Window,
    versions: list[str] | None = None,
    environments: list[str] | None = None,
) -> dict[str, object]:
    """What the model page shows (its template's context ``data``)."""
    start, end = period.start_ns, period.end_ns
    slices = _bucketed(store, name, version, environment, start, end, period.slices)
    total = _totals([found for _, found in slices])
    quality_name, _ = _quality(total)

    def series(label: str, pick: Callable[[MetricsOut], float | None]) -> Series:
        return (label, [(at, pick(found)) for at, found in slices])

    def chart(title: str, lines: list[Series], unit: str) -> Markup:
        return line_chart(title, lines, unit=unit, start_ns=start, end_ns=end, slice_ns=period.slice_ns)

    charts = {
        "volume": chart(
            "Predictions and calls",
            [series("predictions", lambda f: f["predictions"]), series("calls", lambda f: f["calls"])],
            "",
        ),
        "latency": chart(
            "Latency",
            [series("p50", lambda f: f["latency_ms"]["p50"]), series("p95", lambda f: f["latency_ms"]["p95"])],
            "ms",
        ),
        "errors": chart("Error rate", [series("error rate", lambda f: f["error_rate"])], "%"),
        "coverage": chart("Label coverage", [series("label coverage", lambda f: f["label_coverage"])], "%"),
    }
    charts["quality"], lag = quality_series(slices, period, quality_name)
    estimated = estimated_chart(store, name, version, environment, period)
    if estimated is not None:
        charts["estimated"] = estimated
    window = (start, end)
    try:
        drift_answer: Mapping[str, object] | None = drift(
            drift_store, name, version=version, environment=environment, window=window
        )
        quality_answer: Mapping[str, object] | None = data_quality(
            drift_store, name, version=version, environment=environment, window=window
        )
    except NotFound:
        drift_answer = quality_answer = None
    check()
    sparks: dict[str, list[float | None]] = {}
    if drift_answer is not None:
        bucket = max(HOUR_NS, (end - start) // 24 // HOUR_NS * HOUR_NS)
        every = drift_series_all(
            drift_store, name, bucket_ns=bucket, version=version, environment=environment, window=window
        )
        sparks = {column: [p["score"] for p in points] for column, points in every.items()}
    check()
    quality_findings = flag_data_quality(quality_answer)
    diagnosed = diagnose(
        store, drift_store, name, version=version, environment=environment, window=period, task=total["task"]
    )
    return {
        **diagnosed,
        "findings": findings(drift_answer, quality_findings, diagnosed["worst"], lag),
        "lag": lag,
        "total_interval": headline_interval(total["accuracy"], total["labels"]),
        "window": period,
        "total": total,
        "quality_name": quality_name,
        "charts": charts,
        "drift": drift_answer,
        "data_quality": quality_answer,
        "sparks": sparks,
        "segments": segments(
            store,
            name,
            [version] if version else versions or [],
            [environment] if environment else environments or [],
            start,
            end,
        ),
        "start": query_time.iso(start),
        "end": query_time.iso(end),
    }
