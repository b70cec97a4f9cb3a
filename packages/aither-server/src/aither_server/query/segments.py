"""Where is the model worst: the segments of every feature, ranked by how much worse the model does on them.

The rows are the labelled sampled rows of a window's newest labelled predictions (at most ``max_predictions``
of them: only sampled rows carry feature values), each joined by ``_meta.rows`` to its stored output row, whose
outcome (right or wrong, or the absolute error) is the one the metrics count (probabilities by their arg-max).
Every feature is cut as the segments endpoint cuts one (``query/quality.py``): a categorical column by its
:data:`~aither_server.query.quality.TOP_CATEGORIES` most frequent values, a numeric one by the reference's
quartiles; a missing value is a segment of its own, ``(missing)``. Each segment has its labelled-row count, its
``value``: accuracy (classification, with a Wilson interval) or MAE (regression, with a normal interval), and
its gap to the whole window's figure on the same rows: positive is worse. Segments with at least
:data:`MIN_ROWS` labelled rows are ranked by gap; smaller ones follow, as too few to rank.
"""

from __future__ import annotations

import bisect
import functools
import json
from collections import Counter, defaultdict
from collections.abc import Sequence
from typing import Literal, TypedDict, cast

from sqlalchemy import BigInteger, bindparam, select

from aither.profile import Profile
from aither_server.drift.store import DriftStore
from aither_server.model.cancellation import check
from aither_server.model.records import KIND_CLASS, KIND_NUMBER, KIND_PROBA
from aither_server.query.intervals import mean_interval, wilson
from aither_server.query.models import model_ids
from aither_server.query.quality import TOP_CATEGORIES, _bin_label, _is_number, quartile_edges
from aither_server.query.time import iso
from aither_server.store.core_tables import prediction_rows, predictions
from aither_server.store.database import Store
from aither_server.store.engine import PerDialect, among, indexed_by, run
from aither_server.store.lookups import each_chunk

__all__ = ["MAX_PREDICTIONS", "MIN_ROWS", "MISSING", "Figures", "RankedSegment", "RankedSegments", "ranked_segments"]

#: Labelled predictions read by default (the model page's top few): with the SDK's default sample of rows, enough
#: for a segment of a few percent to show, and about a tenth of a second of reading.
MAX_PREDICTIONS = 1000
#: Labelled rows a segment needs to be ranked: below it, one wrong label moves it by several points.
MIN_ROWS = 20
MISSING = "(missing)"
#: Labelled rows read per prediction wanted, at most (a prediction's sampled rows: 20 by the SDK's default).
_ROWS_PER_PREDICTION = 50

#: (features of the row, its outcome: 1.0 right or 0.0 wrong for a class, the absolute error for a number).
_Row = tuple[dict[str, object], float]
_Outcome = tuple[int | None, int, str | None, str | None, float | None, float | None]


class Figures(TypedDict):
    """A group of rows' accuracy or MAE (``value``) and its 95% interval."""

    rows: int
    value: float | None
    low: float | None
    high: float | None


class RankedSegment(Figures):
    feature: str
    kind: str
    segment: str
    order: int
    gap: float | None
    """Positive is worse than the whole."""
    ranked: bool


class Window(TypedDict):
    start: str | None
    end: str | None


class RankedSegments(TypedDict):
    model: str
    version: str | None
    environment: str | None
    window: Window
    task: Literal["classification", "regression"] | None
    metric: Literal["MAE", "accuracy"]
    predictions: int
    max_predictions: int
    rows: int
    overall: Figures
    min_rows: int
    kinds: dict[str, str]
    segments: list[RankedSegment]


_r = prediction_rows.c
#: A model row's labelled rows in [lo, hi), newest first, by the labelled rows' index.
_NEWEST_LABELLED = indexed_by(
    select(_r.start_ns, _r.pred_id)
    .where(
        _r.model_id == bindparam("model_id"),
        _r.start_ns >= bindparam("lo"),
        _r.start_ns < bindparam("hi"),
        _r.label_kind.is_not(None),
    )
    .order_by(_r.start_ns.desc())
    .limit(bindparam("limit")),
    prediction_rows,
    "prediction_rows_labelled",
)
_FEATURES = PerDialect(
    lambda dialect: select(predictions.c.id, predictions.c.features).where(
        among(predictions.c.id, "ids", dialect, BigInteger())
    )
)
_OUTCOMES = PerDialect(
    lambda dialect: select(
        _r.pred_id, _r.row, _r.kind, _r.label_kind, _r.pred_key, _r.label_key, _r.pred_num, _r.label_num
    ).where(among(_r.pred_id, "ids", dialect, BigInteger()), _r.label_kind.is_not(None))
)


@functools.lru_cache(maxsize=4 * MAX_PREDICTIONS)
def _features(text: str | None) -> object:
    """The decoded sample, shared between calls: read, never changed. Keyed by the stored text itself, so a
    page viewed again decodes only the predictions that are new since (a quarter of the model page's time
    was decoding the same 1,000 samples on every view)."""
    # Plain json: the sample is only looked into here, never rendered (stored_json's depth guard is for that).
    try:
        return json.loads(text, parse_constant=str) if text else None
    except (ValueError, RecursionError):
        return None


def _labelled_rows(
    store: Store,
    name: str,
    version: str | None,
    environment: str | None,
    start_ns: int,
    end_ns: int,
    limit: int,
) -> tuple[list[_Row], int, bool] | None:
    """The labelled sampled rows of the window's newest labelled predictions with their outcomes, how many
    predictions, and whether they are a regressor's. Outcomes come from the stored rows' keys and numbers, so
    no output or label is decoded."""
    conn = store.reader()
    models = model_ids(conn, name, version, environment)
    if models is None:
        return None
    newest: list[tuple[int, int]] = []
    # Per model row, walking its labelled rows' index backwards and stopping at ``limit`` predictions: a
    # version without labels costs nothing (walking its predictions for labelled ones read the whole window).
    for model_id, _, _ in models:
        seen: set[int] = set()
        # The cap bounds what a client that reads every row (PostgreSQL's) transfers.
        span = {"model_id": model_id, "lo": start_ns, "hi": end_ns, "limit": limit * _ROWS_PER_PREDICTION}
        for at, pred_id in run(conn, _NEWEST_LABELLED, span):
            if pred_id not in seen:
                seen.add(pred_id)
                newest.append((at, pred_id))
                if len(seen) >= limit:
                    break
    newest.sort(reverse=True)
    newest = newest[:limit]
    wanted = [pred_id for _, pred_id in newest]
    texts: dict[int, str] = dict(each_chunk(conn, _FEATURES, "ids", wanted)) if wanted else {}
    found = [(at, pred_id, texts.get(pred_id)) for at, pred_id in newest]
    outcomes: dict[tuple[int, int], _Outcome] = {}
    if wanted:
        for pred_id, row, *outcome in each_chunk(conn, _OUTCOMES, "ids", wanted):
            outcomes[(pred_id, row)] = tuple(outcome)
    regression = any(
        KIND_NUMBER in (kind, label_kind) and pred_num is not None and label_num is not None
        for kind, label_kind, _, _, pred_num, label_num in outcomes.values()
    )
    rows: list[_Row] = []
    for _, pred_id, text in found:
        features = _features(text)
        if not isinstance(features, dict):
            continue
        meta, sample = features.get("_meta"), features.get("sample")
        indices = meta.get("rows") if isinstance(meta, dict) else None
        if not isinstance(indices, list) or not isinstance(sample, list) or len(indices) != len(sample):
            continue
        for index, record in zip(indices, sample, strict=True):
            found_outcome = outcomes.get((pred_id, index)) if isinstance(index, int) else None
            if found_outcome is None or not isinstance(record, dict):
                continue
            kind, label_kind, pred_key, label_key, pred_num, label_num = found_outcome
            if regression:
                if pred_num is not None and label_num is not None:
                    rows.append((record, abs(float(pred_num) - float(label_num))))
            elif label_kind == KIND_CLASS and kind in (KIND_CLASS, KIND_PROBA):
                rows.append((record, 1.0 if pred_key == label_key else 0.0))
    return rows, len(found), regression


class _Score:
    """A group of rows' accuracy (classification) or MAE (regression), with its interval."""

    def __init__(self, regression: bool) -> None:
        self.regression = regression
        self.rows = 0
        self.total = 0.0
        self.total_sq = 0.0

    def add(self, outcome: float) -> None:
        self.rows += 1
        self.total += outcome
        self.total_sq += outcome * outcome

    def value(self) -> float | None:
        return self.total / self.rows if self.rows else None

    def figures(self) -> Figures:
        if self.regression:
            interval = mean_interval(self.total, self.total_sq, self.rows)
        else:
            interval = wilson(self.total, self.rows)
        return {
            "rows": self.rows,
            "value": self.value(),
            "low": None if interval is None else interval[0],
            "high": None if interval is None else interval[1],
        }


def _feature_groups(
    rows: Sequence[_Row], feature: str, reference: dict[str, Profile]
) -> tuple[str, list[tuple[str, list[float]]]]:
    """The feature's kind and its segments in their natural order (bins low to high, categories by count)."""
    values = [(features.get(feature), outcome) for features, outcome in rows if feature in features]
    present = [v for v, _ in values if v is not None]
    numbers = [float(v) for v in present if _is_number(v)]
    kind = "numeric" if present and len(numbers) == len(present) else "categorical"
    groups: dict[tuple[int, str], list[float]] = defaultdict(list)
    if kind == "numeric":
        edges = quartile_edges(numbers, reference.get(feature))
        by_bin: dict[int, list[float]] = defaultdict(list)
        # Every present value is a number: that is what makes the kind numeric.
        for value, outcome in values:
            by_bin[len(edges) + 1 if value is None else bisect.bisect_right(edges, cast(float, value))].append(outcome)
        for index, outcomes in by_bin.items():
            groups[(index, MISSING if index > len(edges) else _bin_label(edges, index))] = outcomes
    else:
        top = Counter(str(v) for v in present).most_common(TOP_CATEGORIES)
        rank = {value: i for i, (value, _) in enumerate(top)}
        for value, outcome in values:
            if value is None:
                key = (len(rank) + 1, MISSING)
            else:
                key = (rank[str(value)], str(value)) if str(value) in rank else (len(rank), "(other)")
            groups[key].append(outcome)
    return kind, [(key[1], outcomes) for key, outcomes in sorted(groups.items())]


def ranked_segments(
    store: Store,
    drift: DriftStore,
    name: str,
    *,
    start_ns: int,
    end_ns: int,
    version: str | None = None,
    environment: str | None = None,
    feature: str | None = None,
    max_predictions: int = MAX_PREDICTIONS,
) -> RankedSegments | None:
    """Every feature's segments (or ``feature``'s alone) ranked by quality gap; ``None`` when no such model."""
    found = _labelled_rows(store, name, version, environment, start_ns, end_ns, max_predictions)
    if found is None:
        return None
    rows, predictions, regression = found
    overall = _Score(regression)
    for _, outcome in rows:
        overall.add(outcome)
    overall_value = overall.value()
    names = sorted({f for features, _ in rows for f in features}) if feature is None else [feature]
    segments: list[RankedSegment] = []
    kinds: dict[str, str] = {}
    # The reference read once: a model of 30 columns would otherwise read and decode it 30 times.
    stored = drift.reference(name, version, None) if rows else None
    reference = {} if stored is None else stored.features
    for column in names:
        check()
        kind, groups = _feature_groups(rows, column, reference)
        kinds[column] = kind
        if len(groups) < 2 and feature is None:
            continue  # one value: nothing to compare
        for order, (value, outcomes) in enumerate(groups):
            score = _Score(regression)
            for outcome in outcomes:
                score.add(outcome)
            figures = score.figures()
            gap = None
            if figures["value"] is not None and overall_value is not None:
                gap = figures["value"] - overall_value if regression else overall_value - figures["value"]
            segments.append(
                {
                    "feature": column,
                    "kind": kind,
                    "segment": value,
                    "order": order,
                    "rows": figures["rows"],
                    "value": figures["value"],
                    "low": figures["low"],
                    "high": figures["high"],
                    "gap": gap,
                    "ranked": score.rows >= MIN_ROWS,
                }
            )
    segments.sort(key=lambda s: (not s["ranked"], -(s["gap"] or 0.0), s["feature"], s["order"]))
    return {
        "model": name,
        "version": version,
        "environment": environment,
        "window": {"start": iso(start_ns), "end": iso(end_ns)},
        "task": "regression" if regression else ("classification" if rows else None),
        "metric": "MAE" if regression else "accuracy",
        "predictions": predictions,
        "max_predictions": max_predictions,
        "rows": len(rows),
        "overall": overall.figures(),
        "min_rows": MIN_ROWS,
        "kinds": kinds,
        "segments": segments,
    }
