"""What the server stores, in plain Python: decoded spans and the per-row values metrics are built from.

This module is the meeting point of ingestion and storage: the OTLP decoder produces these records, the store
consumes them. It knows neither protobuf nor SQL.

Row values are reduced to a *key* (canonical JSON, so ``1`` and ``1.0`` compare equal), a number when the
value is numeric, and a *kind* that lets the query layer tell classification from regression with SQL alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
from collections.abc import Sequence
from typing import TypeGuard

from aither_server.model.json_value import JsonValue

__all__ = [
    "AggregatePoint",
    "KIND_CLASS",
    "KIND_NUMBER",
    "KIND_OTHER",
    "KIND_PROBA",
    "InvalidJson",
    "MAX_CLAIMED_ROWS",
    "MAX_NUMBER",
    "MAX_ROWS_PER_SPAN",
    "LabelSpan",
    "PoisonValue",
    "PredictionSpan",
    "RowValue",
    "ValueKey",
    "label_keys",
    "label_rows",
    "parse_label",
    "parse_prediction",
    "prediction_rows",
    "value_key",
]

#: An integer, string or boolean (a class label), or a float with an integral value.
KIND_CLASS = 0
#: A float with a fractional part: regression output or target.
KIND_NUMBER = 1
#: A row of class probabilities from ``predict_proba``: the key is the arg-max column.
KIND_PROBA = 2
#: Anything else (lists, dicts, null): stored and counted, but no quality metric applies.
KIND_OTHER = 3

#: Row values of one prediction stored for label joins: only values the span carries are stored, so a span
#: costs storage in proportion to its size, whatever it claims.
MAX_ROWS_PER_SPAN = 10_000
#: Rows one span may claim (``_meta.total_rows`` of a truncated list) for volume and usage: a claim is not
#: checkable, so it is bounded; no batch a span describes is larger in practice.
MAX_CLAIMED_ROWS = 1_000_000
#: The largest magnitude of a number used in metrics. Squared errors of such numbers, and sums of as many of
#: them as any table can hold, stay finite, so the rollups never hold inf (nor NaN from inf - inf).
MAX_NUMBER = 1e100

_PROBA_METHODS = frozenset({"predict_proba", "predict_log_proba"})
#: How a row is read, by the span's method or the SDK's ``_meta.output``: these as class probabilities.
_PROBA_READINGS = frozenset({"predict_proba", "predict_log_proba", "logits"})
#: ``_meta.output`` of a prediction -> how its rows are read.
_OUTPUT_READINGS = {"probabilities": "predict_proba", "logits": "logits", "regression": "regression"}


# The span records are built once per span by the decoder and only read after, but not frozen: a frozen
# dataclass sets each field through object.__setattr__, and that made a PredictionSpan cost 6 us against 1.2.
@dataclasses.dataclass(slots=True)
class PredictionSpan:
    """One prediction call, as decoded from a span carrying ``ml.model.name``."""

    trace_id: bytes
    span_id: bytes
    model: str
    version: str
    environment: str
    name: str
    method: str | None
    framework: str | None
    start_ns: int
    end_ns: int
    error: str | None
    batch_size: int | None
    features: str | None
    prediction: JsonValue
    """The parsed ``ml.prediction`` JSON, or ``None`` when absent (an errored call)."""
    prediction_json: str | None
    service_name: str | None
    reduced: tuple[int, Sequence[RowValue]] | None = dataclasses.field(default=None, repr=False, compare=False)
    """``prediction_rows(self)`` when the decoder already computed it (from its cache); else ``None``."""
    instance: str | None = None
    """The resource's ``service.instance.id``: which process sent it (its counts may come as aggregates)."""
    sample_rate: float | None = None
    """``ml.sample_rate``: this span stands for ``1 / sample_rate`` calls; ``None`` means 1."""
    link: tuple[bytes, bytes] | None = None
    """(trace id, span id) of the span's first link: the caller's OpenTelemetry span, when there was one."""
    entity: str | None = None
    """``ml.entity``: the keyed hash of the entity (a customer, a user) the call was about, for erasure
    (docs/privacy.md); a clear value is hashed by the server's privacy step before it is stored."""


@dataclasses.dataclass(slots=True)
class LabelSpan:
    """One ``log_label`` call: a label for one row, or for every row of the prediction with this trace id."""

    trace_id: bytes
    span_id: bytes
    row: int | None
    label: JsonValue
    time_ns: int
    label_json: str | None = None
    """``ml.label`` as received (valid JSON for ``label``), stored as is; ``None``: stored as ``label`` dumped."""
    keys: tuple[ValueKey, ...] | None = dataclasses.field(default=None, repr=False, compare=False)
    """``label_keys(label, row)`` when the decoder already computed it; else ``None``."""


@dataclasses.dataclass(frozen=True, slots=True)
class AggregatePoint:
    """One data point of an ``aither.*`` metric (docs/wire-contract.md, "/v1/metrics"): what one process
    counted for one model over ``(start_ns, end_ns]``."""

    instance: str
    metric: str
    """``calls``, ``rows``, ``errors``, ``dropped`` or ``duration``."""
    model: str
    version: str
    environment: str
    reason: str
    """``aither.drop.reason`` of a ``dropped`` point; ``""`` for the others."""
    start_ns: int
    end_ns: int
    value: int
    """The sum, or the histogram's count."""
    buckets: tuple[int, ...] | None = None
    """``duration`` only: counts per bucket of ``_rollup.AGGREGATE_BOUNDS_MS``."""


@dataclasses.dataclass(frozen=True, slots=True)
class ValueKey:
    kind: int
    key: str | None
    num: float | None


@dataclasses.dataclass(frozen=True, slots=True)
class RowValue:
    """The predicted value of one row, reduced for SQL aggregates."""

    row: int
    kind: int | None
    key: str | None
    num: float | None
    score: float | None
    """Probability of the second class, for two-column ``predict_proba`` rows (binary AUC)."""
    proba: str | None
    """All class probabilities as JSON, for ``predict_proba`` rows of 3+ classes (one-vs-rest AUC)."""


class InvalidJson(ValueError):
    """An attribute that should hold JSON does not."""


class PoisonValue(InvalidJson):
    """A value that is valid JSON but cannot be used in metrics (a number too large); the span is refused."""


_POISON = f"holds a number beyond +-{MAX_NUMBER:g}"


def _bounded(number: float | int) -> float:
    """``number`` as a float, or :class:`PoisonValue` when its magnitude is over :data:`MAX_NUMBER`."""
    if isinstance(number, int) and (number > MAX_NUMBER or number < -MAX_NUMBER):
        raise PoisonValue(_POISON)  # before float(), which raises OverflowError past 1e308
    value = float(number)
    if abs(value) > MAX_NUMBER:
        raise PoisonValue(_POISON)
    return value


_dumps = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=True).encode


def value_key(value: object) -> ValueKey:
    """Reduce a JSON value to its comparison key, number and kind; :class:`PoisonValue` for a number over
    :data:`MAX_NUMBER`."""
    if isinstance(value, bool):
        return ValueKey(KIND_CLASS, "true" if value else "false", None)
    if isinstance(value, int):
        return ValueKey(KIND_CLASS, str(value), _bounded(value))
    if isinstance(value, float):
        if not math.isfinite(value):
            return ValueKey(KIND_OTHER, None, None)
        _bounded(value)
        if value.is_integer() and abs(value) < 2**53:
            return ValueKey(KIND_CLASS, str(int(value)), value)
        return ValueKey(KIND_NUMBER, repr(value), value)
    if isinstance(value, str):
        return ValueKey(KIND_CLASS, _dumps(value), None)
    if isinstance(value, dict) and "label" in value and isinstance(value["label"], (str, int, bool)):
        # transformers pipelines answer [{"label": "POSITIVE", "score": 0.99}]: the class is the label.
        return value_key(value["label"])
    if isinstance(value, list) and len(value) > 1 and all(_scored_label(v) for v in value):
        # A top-k list of one input's classes ([{"label", "score"}, ...]): the class scored highest.
        return value_key(max(value, key=lambda v: v["score"])["label"])
    if isinstance(value, list) and len(value) == 1:
        # A one-column output ([[0.93]] from a Keras sigmoid, [[3.1]] from a one-target regressor).
        return value_key(value[0])
    if value is None:
        return ValueKey(KIND_OTHER, None, None)
    try:
        return ValueKey(KIND_OTHER, _dumps(value), None)
    except (TypeError, ValueError, RecursionError):
        return ValueKey(KIND_OTHER, None, None)


def _scored_label(value: object) -> bool:
    return isinstance(value, dict) and isinstance(value.get("label"), (str, int)) and _is_number(value.get("score"))


def _is_number(value: object) -> TypeGuard[int | float]:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _all_numbers(values: Sequence[object]) -> TypeGuard[Sequence[int | float]]:
    return all(_is_number(v) for v in values)


def _proba_row(row: int, values: Sequence[object], reading: str) -> RowValue | None:
    """A row of class probabilities (``reading``: ``predict_proba``), log-probabilities (``predict_log_proba``)
    or logits (``logits``: the SDK's reading of a network's output, turned into probabilities by a softmax)."""
    if len(values) < 2 or not _all_numbers(values):
        return None
    bounded = [_bounded(v) for v in values]
    if reading == "logits":
        top = max(bounded)
        exps = [math.exp(v - top) for v in bounded]
        total = sum(exps)
        probs = [e / total for e in exps]
    elif reading == "predict_log_proba":
        probs = [math.exp(v) if v < 700 else math.inf for v in bounded]
    else:
        probs = bounded
    if not all(math.isfinite(p) for p in probs):
        return None
    best = max(range(len(probs)), key=probs.__getitem__)
    if len(probs) == 2:
        return RowValue(row, KIND_PROBA, str(best), None, probs[1], None)
    return RowValue(row, KIND_PROBA, str(best), None, None, _dumps(probs))


def _row_value(row: int, value: object, reading: str | None) -> RowValue:
    if reading in _PROBA_READINGS and isinstance(value, list):
        proba = _proba_row(row, value, reading)
        if proba is not None:
            return proba
    if reading == "regression" and _is_number(value) and math.isfinite(value):
        number = _bounded(value)
        return RowValue(row, KIND_NUMBER, repr(number), number, None, None)
    key = value_key(value)
    return RowValue(row, key.kind, key.key, key.num, None, None)


def _nonneg_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def prediction_rows(span: PredictionSpan) -> tuple[int, Sequence[RowValue]]:
    """The number of rows the call predicted, and the value of each row that can be joined to a label.

    Follows docs/wire-contract.md: a list is one value per row (unless ``ml.batch_size`` is 1, then the whole
    list is the single row's output); ``{"values": [...], "_meta": {"total_rows": N}}`` is a truncated list;
    a truncated attribute (``{"_meta": {"truncated": true}, "preview": ...}``) has rows but no values. An
    errored call predicted nothing.
    """
    if span.reduced is not None:
        return span.reduced
    if span.error is not None or span.prediction_json is None:
        return 0, []
    return _reduce(span.prediction, span.batch_size, span.method)


def _reduce(pred: object, batch: int | None, method: str | None) -> tuple[int, list[RowValue]]:
    values: list[object]
    reading = method if method in _PROBA_METHODS else None
    if isinstance(pred, dict) and isinstance(pred.get("_meta"), dict):
        meta = pred["_meta"]
        listed = pred.get("values")
        values = listed if isinstance(listed, list) else []
        total = _nonneg_int(meta.get("total_rows"))
        if total is None:
            total = len(values) if isinstance(listed, list) else (batch or 1)
        # The SDK's reading of a network's output (docs/wire-contract.md, "ml.prediction"): rows of class
        # probabilities or logits are scored as predict_proba's; regression values as numbers, integral ones too.
        output = meta.get("output")
        if output in _OUTPUT_READINGS:
            reading = _OUTPUT_READINGS[output]
    elif isinstance(pred, list) and not (batch == 1 and len(pred) != 1):
        values = pred
        total = len(values)
    else:
        values = [pred]
        total = 1
    total = min(max(total, len(values)), max(MAX_CLAIMED_ROWS, len(values)))
    rows = [_row_value(i, values[i], reading) for i in range(min(len(values), MAX_ROWS_PER_SPAN))]
    return total, rows


def label_keys(label: object, row: int | None) -> tuple[ValueKey, ...]:
    """The comparison key of each row this label sets, in :func:`label_rows`' order; :class:`PoisonValue` if
    one cannot be used in metrics (the decoder checks this before the label is stored, and keeps the keys)."""
    if row is None and isinstance(label, list):
        return tuple(value_key(value) for value in label[:MAX_ROWS_PER_SPAN])
    return (value_key(label),)


def label_rows(span: LabelSpan) -> list[tuple[int, JsonValue]]:
    """The (row, label) pairs one label span sets, per the contract's "Labels and rows" rules."""
    if span.row is not None:
        return [(span.row, span.label)]
    if isinstance(span.label, list):
        return list(enumerate(span.label[:MAX_ROWS_PER_SPAN]))
    return [(0, span.label)]


# Most spans carry one of a few short values ("[0]", "[1]", "0.5", "\"cat\""): their parse and reduction are
# cached by text, so a typical span costs a dict lookup here. Only short texts are cached (bounded memory), and
# the cached values are shared, never mutated. Dict operations are atomic, so threads may share the caches.
_CACHE_TEXT = 64
_CACHE_ENTRIES = 4096
_prediction_cache: dict[tuple[str, int | None, str | None], tuple[JsonValue, tuple[int, tuple[RowValue, ...]]]] = {}
_label_cache: dict[str, JsonValue] = {}


def parse_prediction(
    text: str, batch_size: int | None, method: str | None
) -> tuple[JsonValue, tuple[int, Sequence[RowValue]]]:
    """``ml.prediction`` parsed, and :func:`prediction_rows` of it; raises :class:`InvalidJson` if it is not JSON."""
    key = (text, batch_size, method)
    cached = _prediction_cache.get(key)
    if cached is not None:
        return cached
    try:
        value = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(str(exc)) from None
    total, rows = _reduce(value, batch_size, method)
    result = (value, (total, tuple(rows)))
    if len(text) <= _CACHE_TEXT:
        if len(_prediction_cache) >= _CACHE_ENTRIES:
            _prediction_cache.clear()
        _prediction_cache[key] = result
    return result


def parse_label(text: str) -> JsonValue:
    """``ml.label`` parsed; raises :class:`InvalidJson` if it is not JSON. The value must not be mutated."""
    try:
        return _label_cache[text]
    except KeyError:
        pass
    try:
        value: JsonValue = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise InvalidJson(str(exc)) from None
    if len(text) <= _CACHE_TEXT:
        if len(_label_cache) >= _CACHE_ENTRIES:
            _label_cache.clear()
        _label_cache[text] = value
    return value
