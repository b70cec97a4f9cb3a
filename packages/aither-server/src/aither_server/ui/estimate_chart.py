"""The model page's estimated-performance chart: the estimate per slice with its band, the realized figure
beside it, and the slices still waiting for labels shaded (docs/estimated-performance.md)."""

from __future__ import annotations

import time

from markupsafe import Markup

from aither_server.estimate.query import performance
from aither_server.estimate.store import EstimateStore
from aither_server.query.time import NS
from aither_server.store.database import Store
from aither_server.ui.charts import Band, Series, Shade, line_chart
from aither_server.ui.window import Window

__all__ = ["estimated_chart"]


def estimated_chart(
    store: Store, name: str, version: str | None, environment: str | None, window: Window
) -> Markup | None:
    """The chart, or ``None`` without an estimator for the model (no reference with scores and labels)."""
    try:
        found = performance(
            store,
            EstimateStore(store.engine),
            name,
            bucket_s=max(1, window.slice_ns // NS),
            start_ns=window.start_ns,
            end_ns=window.end_ns,
            now_ns=time.time_ns(),
            version=version,
            environment=environment,
        )
    except ValueError:  # more slices than an answer holds
        return None
    if found is None or found["estimator"] is None:
        return None
    regression = found["task"] == "regression"
    metric, label = ("mae", "MAE") if regression else ("accuracy", "accuracy")
    half = window.slice_ns // 2
    estimated: list[tuple[int, float | None]] = []
    realized: list[tuple[int, float | None]] = []
    band: list[tuple[int, float, float]] = []
    shades: list[Shade] = []
    notes: list[str | None] = []
    for index, point in enumerate(found["points"]):
        at = window.start_ns - window.start_ns % window.slice_ns + index * window.slice_ns + half
        figure = (point["estimated"] or {}).get(metric) or {}
        estimated.append((at, figure.get("value")))
        realized.append((at, (point["realized"] or {}).get(metric)))
        if figure.get("band"):
            band.append((at, figure["band"][0], figure["band"][1]))
        if point["waiting_for_labels"]:
            shades.append((at - half, at + half, "waiting for labels"))
        notes.append(f"{point['rows']:,} rows, {point['labels']:,} labels" if point["rows"] else None)
    series: list[Series] = [(f"estimated {label}", estimated), (f"realized {label}", realized)]
    bands: list[Band] = [(f"estimated {label}", band)]
    return line_chart(
        f"Estimated and realized {label}",
        series,
        unit="" if regression else "%",
        start_ns=window.start_ns,
        end_ns=window.end_ns,
        slice_ns=window.slice_ns,
        notes={f"estimated {label}": notes},
        bands=bands,
        shades=shades,
    )
