"""Drift and data-quality answers: merge the window's hourly profiles, pick the reference, compare per column.

A reference is a named one (``aither.log_reference``; default: the latest of the model and version) or
``window:<start>/<end>``, a past window of the model's own traffic merged the same way as the current one.
"""

from __future__ import annotations

import datetime
from collections import defaultdict
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from aither.profile import Profile, merge
from aither_server.drift.embeddings import embedding_drift
from aither_server.drift.sketches import HOUR_NS, PREDICTION
from aither_server.drift.stats import DriftEntry, applies, compare, out_of_range_rate, unseen_category_rate
from aither_server.drift.store import DriftStore, SketchRow, profiles_of_rows
from aither_server.model.cancellation import check

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = [
    "MethodQuestion",
    "NotFound",
    "Question",
    "ReferenceInfo",
    "SeriesAnswer",
    "SeriesPoint",
    "Window",
    "data_quality",
    "drift",
    "drift_series",
    "drift_series_all",
    "parse_reference",
]


class NotFound(LookupError):
    """No such model, or no such reference."""


Window = tuple[int | None, int | None]  # [start, end) in nanoseconds


class Question(TypedDict, total=False):
    """What a drift or data-quality question reads, and against what: the keyword arguments of :func:`drift`,
    :func:`data_quality`, :func:`drift_series` and :func:`drift_series_all`, each optional."""

    version: str | None
    environment: str | None
    window: Window
    """The current window; the model's whole history by default."""
    reference: str | None
    """:func:`parse_reference`'s text; the latest named reference by default."""


class MethodQuestion(Question, total=False):
    method: str | None
    """One of ``drift.stats.METHODS``; by default the reference's size decides."""


class ReferenceInfo(TypedDict):
    """The reference an answer was computed against (a ``window:`` one has no version, time or rows)."""

    name: str | None
    version: str | None
    created_at: str | None
    rows: int | None


class SeriesPoint(TypedDict):
    start: str | None
    end: str | None
    method: str | None
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    current_count: int


class SeriesAnswer(TypedDict):
    model: str
    feature: str
    reference: ReferenceInfo
    points: list[SeriesPoint]


def _iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    try:
        moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    except (OverflowError, OSError, ValueError):  # a window edge past what datetime can write: open-ended
        return None
    return moment.isoformat().replace("+00:00", "Z")


def _hours(window: Window) -> tuple[int | None, int | None]:
    start, end = window
    # Hours that overlap the window: its first (floor) up to its last (ceiling).
    return (None if start is None else start // HOUR_NS, None if end is None else -(-end // HOUR_NS))


def parse_reference(text: str | None) -> tuple[str | None, Window | None]:
    """``None`` -> latest named; ``name`` -> that one; ``window:<start>/<end>`` (ISO 8601) -> a past window."""
    if text is None or not text.startswith("window:"):
        return text, None
    start_text, sep, end_text = text[len("window:") :].partition("/")
    if not sep:
        raise ValueError("a window reference is window:<start>/<end>, both ISO 8601")
    return None, (_parse_ns(start_text), _parse_ns(end_text))


def _parse_ns(text: str) -> int:
    moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "+"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return int(moment.timestamp()) * 1_000_000_000 + moment.microsecond * 1000


def _merged(rows: list[SketchRow]) -> dict[tuple[str, str], dict[str, Profile]]:
    """(role, column) -> kind -> the merged profile of those rows."""
    groups: dict[tuple[str, str, str], list[SketchRow]] = defaultdict(list)
    for row in rows:
        groups[(row.role, row.feature, row.kind)].append(row)
    out: dict[tuple[str, str], dict[str, Profile]] = defaultdict(dict)
    for (role, feature, kind), found in groups.items():
        profile = merge(profiles_of_rows(found))
        if profile is not None:
            out[(role, feature)][kind] = profile
    return out


class _Sides:
    """The reference and current profiles of one question, by column."""

    def __init__(
        self,
        store: DriftStore,
        model: str,
        version: str | None,
        environment: str | None,
        window: Window,
        reference: str | None,
    ) -> None:
        self._store, self._model, self._version, self._environment = store, model, version, environment
        name, past = parse_reference(reference)
        current = _merged(self.rows(window))
        self.reference_features: dict[str, dict[str, Profile]] = {}
        self.reference_prediction: dict[str, Profile] = {}
        if past is not None:
            merged = _merged(self.rows(past))
            if not merged:
                raise NotFound(f"no traffic of model {model!r} in the reference window")
            self.reference_features = {f: kinds for (role, f), kinds in merged.items() if role == "feature"}
            self.reference_prediction = merged.get(("prediction", PREDICTION), {})
            self.reference: ReferenceInfo = {"name": reference, "version": version, "created_at": None, "rows": None}
            self.reference_dtypes = {f: next(iter(k.values())).dtype for f, k in self.reference_features.items()}
        else:
            stored = store.reference(model, version, name)
            if stored is None:
                if name is not None or store.has_model(model):
                    raise NotFound(f"model {model!r} has no reference" + (f" named {name!r}" if name else ""))
                raise NotFound(f"no model named {model!r} has drift data")
            self.reference_features = {f: {p.kind: p} for f, p in stored.features.items()}
            if stored.prediction is not None:
                self.reference_prediction = {stored.prediction.kind: stored.prediction}
            self.reference = {
                "name": stored.name,
                "version": stored.version or None,
                "created_at": _iso(stored.created_ns),
                "rows": stored.rows,
            }
            self.reference_dtypes = {f: p.dtype for f, p in stored.features.items()}
        self.current_features = {f: kinds for (role, f), kinds in current.items() if role == "feature"}
        self.current_prediction = current.get(("prediction", PREDICTION), {})
        self.declared = store.declared_columns(model, version, environment, *_hours(window))

    def rows(self, window: Window, features: Sequence[str] | None = None, *, hourly: bool = False) -> list[SketchRow]:
        """The stored profiles of the model's hours that overlap ``window`` (``DriftStore.hour_rows``)."""
        start_hour, end_hour = _hours(window)
        return self._store.hour_rows(
            self._model, self._version, self._environment, start_hour, end_hour, features, hourly=hourly
        )


def _window(question: Question) -> Window:
    return question.get("window", (None, None))


def _sides(store: DriftStore, model: str, question: Question) -> _Sides:
    version, environment = question.get("version"), question.get("environment")
    return _Sides(store, model, version, environment, _window(question), question.get("reference"))


def _pair(reference: dict[str, Profile], current: dict[str, Profile]) -> tuple[Profile, Profile | None]:
    """The reference's profile and the current one of the same kind (the reference's main kind first)."""
    ref = max(reference.values(), key=lambda p: p.count)
    return ref, current.get(ref.kind)


def _drift_entry(
    name: str, reference: dict[str, Profile], current: dict[str, Profile], method: str | None
) -> DriftEntry:
    ref, cur = _pair(reference, current)
    entry: DriftEntry = {
        "name": name,
        "kind": ref.kind,
        "reference_count": ref.count,
        "current_count": 0 if cur is None else cur.count,
        "method": method,
        "score": None,
        "p_value": None,
        "threshold": None,
        "drifted": False,
        "statistics": {},
    }
    if method is not None and not applies(method, ref.kind):
        # One column the method cannot compare costs that column: it is named, the others are answered.
        entry["skipped"] = f"method {method!r} does not apply to a {ref.kind} column"
        return entry
    if cur is None or cur.count == 0 or ref.count == 0:
        return entry
    result = compare(ref, cur, method)
    entry["method"] = result.method
    entry["score"] = result.score
    entry["p_value"] = result.p_value
    entry["threshold"] = result.threshold
    entry["drifted"] = result.drifted
    entry["statistics"] = result.statistics
    return entry


# drift() and data_quality() answer untyped dicts, as the dashboard (ui/data.py, ui/diagnose.py, ui/views.py)
# annotates them; drift()'s rows are DriftEntry.
def drift(store: DriftStore, model: str, **question: Unpack[MethodQuestion]) -> dict[str, Any]:
    sides, window, method = _sides(store, model, question), _window(question), question.get("method")
    version, environment, reference = question.get("version"), question.get("environment"), question.get("reference")
    features: list[DriftEntry] = []
    for name, kinds in sorted(sides.reference_features.items()):
        check()
        features.append(_drift_entry(name, kinds, sides.current_features.get(name, {}), method))
    prediction = None
    if sides.reference_prediction:
        prediction = _drift_entry(PREDICTION, sides.reference_prediction, sides.current_prediction, method)
    past = parse_reference(reference)[1]
    return {
        "model": model,
        "reference": sides.reference,
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "features": features,
        "prediction": prediction,
        # One row beside the columns' verdicts, by its own method (drift/embeddings.py); None without embeddings.
        "embeddings": embedding_drift(
            store.engine, model, version, environment, _hours(window), sides.reference, past and _hours(past)
        ),
    }


def data_quality(store: DriftStore, model: str, **question: Unpack[Question]) -> dict[str, Any]:
    sides, window = _sides(store, model, question), _window(question)
    current_names = set(sides.current_features) | set(sides.declared)
    out: list[dict[str, object]] = []
    for name in sorted(set(sides.reference_features) | current_names):
        check()
        reference_kinds = sides.reference_features.get(name, {})
        current = sides.current_features.get(name, {})
        declared = sorted(sides.declared.get(name, set()))
        dtype = declared[-1] if len(declared) == 1 else (", ".join(declared) or _dtype_of(current))
        ref = max(reference_kinds.values(), key=lambda p: p.count) if reference_kinds else None
        cur_total = sum(p.count + p.nulls for p in current.values())
        nulls = sum(p.nulls for p in current.values())
        out.append(
            {
                "name": name,
                "dtype": dtype or None,
                "reference_dtype": sides.reference_dtypes.get(name),
                "dtype_changed": ref is not None
                and bool(dtype)
                and sides.reference_dtypes.get(name) not in (None, "", dtype),
                "null_rate": None if cur_total == 0 else nulls / cur_total,
                "reference_null_rate": None if ref is None else _null_rate(ref),
                "out_of_range_rate": None
                if ref is None or ref.kind not in current
                else out_of_range_rate(ref, current[ref.kind]),
                "unseen_category_rate": None
                if ref is None or ref.kind not in current
                else unseen_category_rate(ref, current[ref.kind]),
                "current_count": cur_total,
            }
        )
    return {
        "model": model,
        "reference": sides.reference,
        "window": {"start": _iso(window[0]), "end": _iso(window[1])},
        "features": out,
        "new_columns": sorted(current_names - set(sides.reference_features)),
        "missing_columns": sorted(set(sides.reference_features) - current_names),
    }


def _dtype_of(current: dict[str, Profile]) -> str:
    return next((p.dtype for p in current.values() if p.dtype), "")


def _null_rate(profile: Profile) -> float | None:
    total = profile.count + profile.nulls
    return None if total == 0 else profile.nulls / total


def drift_series(
    store: DriftStore, model: str, feature: str, *, bucket_ns: int, **question: Unpack[MethodQuestion]
) -> SeriesAnswer:
    """One column's drift score per time bucket (whole hours) against the reference."""
    sides, window, method = _sides(store, model, question), _window(question), question.get("method")
    if feature == PREDICTION and sides.reference_prediction:
        reference_kinds, role = sides.reference_prediction, "prediction"
    elif feature in sides.reference_features:
        reference_kinds, role = sides.reference_features[feature], "feature"
    else:
        raise NotFound(f"the reference has no column {feature!r}")
    rows = [r for r in sides.rows(window, [feature], hourly=True) if r.role == role]
    points = _series_points(feature, reference_kinds, role, rows, bucket_ns, method)
    return {"model": model, "feature": feature, "reference": sides.reference, "points": points}


def drift_series_all(
    store: DriftStore, model: str, *, bucket_ns: int, **question: Unpack[MethodQuestion]
) -> dict[str, list[SeriesPoint]]:
    """Every reference column's :func:`drift_series` points, by column name, from one reading of the reference
    and one of the window's hourly profiles: the work grows with the columns once, not once per column."""
    sides, window, method = _sides(store, model, question), _window(question), question.get("method")
    by_column: dict[str, list[SketchRow]] = defaultdict(list)
    for row in sides.rows(window, hourly=True):
        if row.role == "feature":
            by_column[row.feature].append(row)
    out: dict[str, list[SeriesPoint]] = {}
    for name, kinds in sorted(sides.reference_features.items()):
        check()
        out[name] = _series_points(name, kinds, "feature", by_column.get(name, []), bucket_ns, method)
    return out


def _series_points(
    feature: str,
    reference_kinds: dict[str, Profile],
    role: str,
    rows: list[SketchRow],
    bucket_ns: int,
    method: str | None,
) -> list[SeriesPoint]:
    """One column's drift per bucket of whole hours, from its hourly rows in the window."""
    hours_per_bucket = max(1, bucket_ns // HOUR_NS)
    buckets: dict[int, list[SketchRow]] = defaultdict(list)
    for row in rows:
        buckets[row.hour // hours_per_bucket].append(row)
    points: list[SeriesPoint] = []
    for index in sorted(buckets):
        merged = _merged(buckets[index]).get((role, feature), {})
        entry = _drift_entry(feature, reference_kinds, merged, method)
        start_ns = index * hours_per_bucket * HOUR_NS
        points.append(
            {
                "start": _iso(start_ns),
                "end": _iso(start_ns + hours_per_bucket * HOUR_NS),
                "method": entry["method"],
                "score": entry["score"],
                "p_value": entry["p_value"],
                "threshold": entry["threshold"],
                "drifted": entry["drifted"],
                "current_count": entry["current_count"],
            }
        )
    return points
