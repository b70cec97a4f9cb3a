"""What the segments and feature pages show beyond one query: a model's segments with each feature's drift, and
one column's data quality with its flags."""

from __future__ import annotations

from aither_server.drift.query import NotFound, data_quality, drift
from aither_server.drift.store import DriftStore
from aither_server.model.cancellation import check
from aither_server.store.database import Store
from aither_server.ui.diagnose import SegmentsView, flag_data_quality, scope_of, window_segments
from aither_server.ui.window import Window

__all__ = ["SEGMENT_PREDICTIONS", "feature_quality", "segments_page"]

#: Labelled predictions the segments page reads (the model page reads fewer, for its top few).
SEGMENT_PREDICTIONS = 3000


def segments_page(
    store: Store,
    drift_store: DriftStore,
    model: str,
    *,
    feature: str | None,
    version: str | None,
    environment: str | None,
    period: Window,
) -> SegmentsView | None:
    """Every feature's segments ranked by gap (or one feature's, in their natural order), with each feature's
    drift status over the same window; ``None`` when no such model."""
    scope = scope_of(period, version, environment)
    view = window_segments(
        store, drift_store, model, scope, feature=feature, max_predictions=SEGMENT_PREDICTIONS, limit=None
    )
    if view is None:
        return None
    if feature is not None:
        view["rows"].sort(key=lambda s: s["order"])
    check()
    try:
        answer = drift(
            drift_store, model, version=version, environment=environment, window=(period.start_ns, period.end_ns)
        )
        view["drift"] = {f["name"]: f for f in answer["features"]}
    except NotFound:
        view["drift"] = {}
    return view


def feature_quality(
    drift_store: DriftStore, model: str, feature: str, version: str | None, environment: str | None, period: Window
) -> dict[str, object] | None:
    """One column's data quality over the window (nulls, out of range, unseen), flagged past the thresholds."""
    try:
        answer = data_quality(
            drift_store, model, version=version, environment=environment, window=(period.start_ns, period.end_ns)
        )
    except NotFound:
        return None
    flag_data_quality(answer)
    return next((f for f in answer["features"] if f["name"] == feature), None)
