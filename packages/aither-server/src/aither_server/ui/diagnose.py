"""What a model page says about why a model fails: quality with its sampling error and label lag, the worst
segments, the task's diagnostics, data quality past its thresholds, and the findings that sum them up.

Thresholds (docs/dashboard.md states them): a column is flagged when its null rate is :data:`NULL_SURGE` above
the reference's, or when :data:`OUT_OF_RANGE` of its values lie outside the reference's range, or
:data:`UNSEEN` of them are categories the reference never had. A slice's labels are "still arriving" when it
is among the newest slices and its label coverage is under :data:`LAG_FRACTION` of the best coverage of the
window's slices.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal, TypedDict

from markupsafe import Markup

from aither_server.drift.store import DriftStore
from aither_server.model.cancellation import check
from aither_server.query.diagnostics import Diagnostics, diagnostics
from aither_server.query.intervals import mean_interval, wilson
from aither_server.query.metrics import MetricsOut
from aither_server.query.segments import (
    MAX_PREDICTIONS,
    Figures,
    RankedSegment,
    RankedSegments,
    ranked_segments,
)
from aither_server.query.segments import (
    Window as SegmentsWindow,
)
from aither_server.store.database import Store
from aither_server.ui.charts import line_chart, readable
from aither_server.ui.diagnostic_charts import bars, interval_bar, xy_chart
from aither_server.ui.window import Window

__all__ = [
    "Diagnosis",
    "Scope",
    "Finding",
    "Lag",
    "SegmentRow",
    "SegmentsView",
    "LAG_FRACTION",
    "NULL_SURGE",
    "OUT_OF_RANGE",
    "THRESHOLDS",
    "UNSEEN",
    "headline_interval",
    "diagnose",
    "flag_data_quality",
    "quality_series",
]

NULL_SURGE = 0.05
OUT_OF_RANGE = 0.05
UNSEEN = 0.05
LAG_FRACTION = 0.5
#: The thresholds, as the pages state them.
THRESHOLDS = {"null": NULL_SURGE, "out_of_range": OUT_OF_RANGE, "unseen": UNSEEN}
#: Worst segments listed on the model page (the segments page lists them all).
TOP_SEGMENTS = 5

_Slices = Sequence[tuple[int, MetricsOut]]


class _LagSlices(TypedDict):
    slices: int


class Lag(_LagSlices, total=False):
    """The newest slices whose labels are still arriving: how many, since when, their coverage and the best."""

    since_ns: int
    coverage: float
    best: float


class Finding(TypedDict):
    kind: str
    feature: str | None
    text: str


class SegmentRow(RankedSegment):
    strip: Markup


class _SegmentsViewFields(TypedDict):
    model: str
    version: str | None
    environment: str | None
    window: SegmentsWindow
    task: str | None
    metric: str
    predictions: int
    max_predictions: int
    overall: Figures
    min_rows: int
    kinds: dict[str, str]
    segments: list[RankedSegment]
    rows: list[SegmentRow]
    """The segments shown, each with its strip."""
    labelled_rows: int


class SegmentsView(_SegmentsViewFields, total=False):
    """Ranked segments as the pages show them; the segments page adds each feature's drift."""

    drift: dict[str, object]


class Diagnosis(TypedDict):
    worst: SegmentsView | None
    diagnostics: dict[str, object]


def lagging(slices: _Slices) -> list[int]:
    """The indexes of the newest slices whose labels are still arriving (see the module's docstring)."""
    coverage = [found["label_coverage"] for _, found in slices]
    best = max((c for c in coverage if c is not None), default=0.0)
    if best <= 0:
        return []
    out = []
    for index in range(len(slices) - 1, -1, -1):
        c = coverage[index]
        if c is None:
            continue  # no predictions: neither lagging nor the end of the lag
        if c >= LAG_FRACTION * best:
            break
        out.append(index)
    return sorted(out)


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def quality_series(slices: _Slices, window: Window, quality_name: str) -> tuple[Markup, Lag]:
    """The quality chart (each point with its label count and 95% interval, shaded where labels are still
    arriving) and what the page says under it."""
    lag = lagging(slices)
    half = window.slice_ns // 2
    shades = [(slices[i][0] - half, slices[i][0] + half, "labels still arriving") for i in lag]
    notes: list[str | None] = []
    band: list[tuple[int, float, float]] = []
    for index, (at, found) in enumerate(slices):
        labels = found["labels"] or 0
        value = found["mae"] if quality_name == "MAE" else found["accuracy"]
        interval = None
        if value is not None and labels:
            if quality_name == "MAE":
                rmse = found["rmse"] or 0.0
                interval = mean_interval(value * labels, rmse * rmse * labels, labels)
            else:
                interval = wilson(value * labels, labels)
        if interval is not None:
            band.append((at, interval[0], interval[1]))
        text = None
        if value is not None:
            shown = readable(interval[0]) if quality_name == "MAE" and interval else None
            if quality_name == "MAE":
                text = f"{labels:,} labels" + (
                    f", 95% interval {shown} to {readable(interval[1])}" if interval and shown else ""
                )
            else:
                text = f"{labels:,} labels" + (
                    f", 95% interval {_pct(interval[0])} to {_pct(interval[1])}" if interval else ""
                )
            if index in lag:
                text += ", labels still arriving"
        notes.append(text)
    picked: list[tuple[str, Literal["mae", "rmse", "accuracy", "f1", "auc"]]]
    if quality_name == "MAE":
        picked = [("MAE", "mae"), ("RMSE", "rmse")]
        unit = ""
    else:
        picked = [("accuracy", "accuracy"), ("F1", "f1"), ("AUC", "auc")]
        unit = "%"
    series = [(label, [(at, found[field]) for at, found in slices]) for label, field in picked]
    chart = line_chart(
        "Quality",
        series,
        unit=unit,
        start_ns=window.start_ns,
        end_ns=window.end_ns,
        slice_ns=window.slice_ns,
        notes={picked[0][0]: notes},
        bands=[(picked[0][0], band)] if band else [],
        shades=shades,
    )
    lag_info: Lag = {"slices": len(lag)}
    if lag:
        first = slices[lag[0]][0] - half
        coverage = [slices[i][1]["label_coverage"] or 0.0 for i in lag]
        earlier = [found["label_coverage"] for i, (_, found) in enumerate(slices) if i not in lag]
        lag_info["since_ns"] = first
        lag_info["coverage"] = sum(coverage) / len(coverage)
        lag_info["best"] = max((c for c in earlier if c is not None), default=0.0)
    return chart, lag_info


def flag_data_quality(answer: Mapping[str, object] | None) -> list[Finding]:
    """Mark each column's rates past their thresholds (``null_flag``...); the flagged columns' findings."""
    out: list[Finding] = []
    if answer is None:
        return out
    features = answer["features"]
    assert isinstance(features, list)
    for feature in features:
        nulls, reference = feature.get("null_rate"), feature.get("reference_null_rate") or 0.0
        feature["null_flag"] = nulls is not None and nulls - reference >= NULL_SURGE
        feature["out_of_range_flag"] = (feature.get("out_of_range_rate") or 0.0) >= OUT_OF_RANGE
        feature["unseen_flag"] = (feature.get("unseen_category_rate") or 0.0) >= UNSEEN
        feature["flagged"] = feature["null_flag"] or feature["out_of_range_flag"] or feature["unseen_flag"]
        if feature["null_flag"]:
            out.append(
                {
                    "kind": "nulls",
                    "feature": feature["name"],
                    "text": f"{feature['name']}: {_pct(nulls or 0.0)} nulls against {_pct(reference)} in the reference",
                }
            )
        if feature["out_of_range_flag"]:
            out.append(
                {
                    "kind": "out of range",
                    "feature": feature["name"],
                    "text": f"{feature['name']}: {_pct(feature['out_of_range_rate'])} of values outside the"
                    " reference's range",
                }
            )
        if feature["unseen_flag"]:
            out.append(
                {
                    "kind": "unseen categories",
                    "feature": feature["name"],
                    "text": f"{feature['name']}: {_pct(feature['unseen_category_rate'])} of values are categories"
                    " the reference never had",
                }
            )
    return out


def _segment_rows(found: RankedSegments, limit: int | None) -> list[SegmentRow]:
    """The ranked segments worse than the whole (all segments when ``limit`` is None), each with its strip."""
    overall = found["overall"]["value"]
    rows = found["segments"] if limit is None else [s for s in found["segments"] if s["ranked"] and s["gap"]]
    rows = rows if limit is None else [s for s in rows if (s["gap"] or 0.0) > 0][:limit]
    top = max([s["high"] or s["value"] or 0.0 for s in found["segments"]] + [overall or 0.0, 1e-9])
    if found["metric"] == "accuracy":
        top = 1.0
    return [{**s, "strip": interval_bar(s["value"], s["low"], s["high"], overall, top)} for s in rows]


def segments_view(found: RankedSegments | None, limit: int | None = TOP_SEGMENTS) -> SegmentsView | None:
    if found is None:
        return None
    return {
        "model": found["model"],
        "version": found["version"],
        "environment": found["environment"],
        "window": found["window"],
        "task": found["task"],
        "metric": found["metric"],
        "predictions": found["predictions"],
        "max_predictions": found["max_predictions"],
        "overall": found["overall"],
        "min_rows": found["min_rows"],
        "kinds": found["kinds"],
        "segments": found["segments"],
        "rows": _segment_rows(found, limit),
        "labelled_rows": found["rows"],
    }


class Scope(TypedDict):
    """The window and the model's rows a page shows, as the query functions take them."""

    start_ns: int
    end_ns: int
    version: str | None
    environment: str | None


def scope_of(window: Window, version: str | None, environment: str | None) -> Scope:
    return {"start_ns": window.start_ns, "end_ns": window.end_ns, "version": version, "environment": environment}


def window_segments(
    store: Store,
    drift_store: DriftStore,
    name: str,
    scope: Scope,
    *,
    feature: str | None = None,
    max_predictions: int = MAX_PREDICTIONS,
    limit: int | None = TOP_SEGMENTS,
) -> SegmentsView | None:
    """The window's ranked segments as the pages show them (with ``limit``, the first few worse than the whole);
    ``None`` when no such model."""
    found = ranked_segments(store, drift_store, name, **scope, feature=feature, max_predictions=max_predictions)
    return segments_view(found, limit)


def _diagnostic_charts(found: Diagnostics | None) -> dict[str, object]:
    charts: dict[str, object] = {}
    if found is None:
        return charts
    confusion = found["confusion"]
    if confusion:
        peak = max([max(row) for row in confusion["rows"]] + [1])
        heat = [[min(5, round(5 * cell / peak)) for cell in row] for row in confusion["rows"]]
        charts["confusion"] = {**confusion, "heat": heat}
    scores = found["scores"]
    if scores:
        labels = [f"{i / scores['bins']:.1f}-{(i + 1) / scores['bins']:.1f}" for i in range(scores["bins"])]
        series = []
        for name, counts in scores["by_class"].items():
            total = sum(counts) or 1
            series.append((f"actual {name}", [c / total for c in counts]))
        charts["scores"] = bars(
            "Score distribution by actual class",
            labels,
            series,
            y_label="share of the class",
            x_label=f"predicted probability of {scores['positive']}",
            percent=True,
        )
        curve = scores["calibration"]
        charts["calibration"] = xy_chart(
            "Calibration",
            [
                (
                    p["mean_score"],
                    p["positive_rate"],
                    f"scores {p['bin'][0]:.1f}-{p['bin'][1]:.1f}: mean score {p['mean_score']:.2f}, "
                    f"{_pct(p['positive_rate'])} actually {scores['positive']} ({p['rows']:,} rows, 95% interval "
                    f"{_pct(p['low'])} to {_pct(p['high'])})",
                )
                for p in curve
            ],
            x_label="mean predicted probability",
            y_label=f"share actually {scores['positive']}",
            whiskers=[(p["mean_score"], p["low"], p["high"]) for p in curve],
            bounds=(0.0, 1.0),
        )
        charts["calibration_rows"] = curve
    regression = found["regression"]
    if regression:
        charts["regression_rows"] = regression["rows"]
        charts["predicted_actual"] = xy_chart(
            "Predicted against actual",
            [(p, y, f"predicted {readable(p)}, actual {readable(y)}") for p, y in regression["points"]],
            x_label="predicted",
            y_label="actual",
        )
        residuals = regression["residuals"]
        charts["residuals"] = bars(
            "Mean residual by predicted value",
            [f"{readable(r['predicted'][0])}-{readable(r['predicted'][1])}" for r in residuals],
            [("mean residual (actual - predicted)", [r["mean_residual"] for r in residuals])],
            y_label="actual - predicted",
            x_label="predicted value (bins of equal rows)",
        )
        charts["residual_rows"] = residuals
    return charts


def diagnose(
    store: Store,
    drift_store: DriftStore,
    name: str,
    *,
    version: str | None,
    environment: str | None,
    window: Window,
    task: str | None,
) -> Diagnosis:
    """The worst segments and the task's diagnostics over the page's window."""
    scope = scope_of(window, version, environment)
    worst = window_segments(store, drift_store, name, scope)
    check()
    found = diagnostics(store.reader(), name, **scope, task=task)
    return {"worst": worst, "diagnostics": _diagnostic_charts(found)}


def findings(
    drift_answer: Mapping[str, object] | None,
    quality_findings: list[Finding],
    worst: SegmentsView | None,
    lag: Lag,
) -> list[Finding]:
    """What the page found, most telling first: drifted columns, data-quality surges, the worst segment, lag."""
    out: list[Finding] = []
    if drift_answer is not None:
        prediction = drift_answer.get("prediction")
        if isinstance(prediction, dict) and prediction.get("drifted"):
            out.append({"kind": "drift", "feature": None, "text": "the predictions' distribution drifted"})
        features = drift_answer["features"]
        assert isinstance(features, list)
        for feature in features:
            if feature["drifted"]:
                out.append(
                    {
                        "kind": "drift",
                        "feature": feature["name"],
                        "text": f"{feature['name']} drifted ({feature['method']} {feature['score']:.3g}"
                        f" against a threshold of {feature['threshold']:.3g})",
                    }
                )
    out.extend(quality_findings)
    if worst and worst["rows"]:
        top = worst["rows"][0]
        whole = worst["overall"]["value"]
        # A segment shown is worse than the whole by a gap: both have a value.
        assert top["value"] is not None and whole is not None
        value = _pct(top["value"]) if worst["metric"] == "accuracy" else readable(top["value"])
        overall = _pct(whole) if worst["metric"] == "accuracy" else readable(whole)
        out.append(
            {
                "kind": "segment",
                "feature": top["feature"],
                "text": f"worst segment: {top['feature']} = {top['segment']}, {worst['metric']} {value} against"
                f" {overall} overall ({top['rows']:,} labelled rows)",
            }
        )
    if lag.get("slices"):
        out.append(
            {
                "kind": "label lag",
                "feature": None,
                "text": f"labels still arriving for the newest {lag['slices']} slice(s): coverage"
                f" {_pct(lag['coverage'])} against {_pct(lag['best'])} at best; their quality is not final",
            }
        )
    return out


def headline_interval(accuracy: float | None, labels: int) -> str | None:
    """The 95% interval of the window's accuracy (Wilson), as the page writes it."""
    if accuracy is not None and labels:
        interval = wilson(accuracy * labels, labels)
        return None if interval is None else f"{_pct(interval[0])} to {_pct(interval[1])}"
    return None
