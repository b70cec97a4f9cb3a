"""The public functions: init, wrap, track, log_prediction, log_label, flush, close, stats."""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

from . import _client
from ._entity import entity as entity_context
from ._ids import LAST_TRACE_ID, format_trace_id, new_span_id, new_trace_id, parse_trace_id
from ._plugins import wrap_model
from ._records import SpanRecord
from ._stats import Stats
from ._tracking import FeaturesFn, ModelLogger, WrapOptions

__all__ = [
    "close",
    "flush",
    "init",
    "last_trace_id",
    "log_label",
    "log_prediction",
    "stats",
    "track",
    "wrap",
]

logger = logging.getLogger("aither")

F = TypeVar("F", bound=Callable[..., object])


def init(
    api_key: str | None = None,
    base_url: str | None = None,
    flush_interval: float = 1.0,
    batch_size: int = 100,
    **options: object,
) -> None:
    """Configure aither. Arguments win over ``AITHER_*`` variables; unknown options raise ``TypeError``.

    Calling it again replaces the client, after flushing what the previous one had queued.
    """
    _client.init(api_key=api_key, base_url=base_url, flush_interval=flush_interval, batch_size=batch_size, **options)


def wrap(
    model: object,
    name: str,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int | None = 10,
    features_fn: FeaturesFn | None = None,
    feature_names: Sequence[str] | None = None,
    task: str | None = None,
    column_policies: Mapping[str, str] | None = None,
    embeddings: bool | str = False,
) -> Any:  # the tracked model stands in for the user's: its attributes are the model's own
    """Wrap ``model`` so that each prediction is logged; the installed plugin for its framework does the work.

    ``sample_columns=None`` samples every column of the sampled rows instead of a rotating window of 10."""
    options = WrapOptions(
        name,
        version,
        environment,
        sample_rows,
        sample_columns,
        features_fn,
        feature_names,
        task,
        column_policies,
        embeddings,
    )
    return wrap_model(model, options)


def last_trace_id() -> str | None:
    """Trace id of the last prediction made in the current thread or asyncio task, by any model."""
    trace_id = LAST_TRACE_ID.get()
    return None if trace_id is None else format_trace_id(trace_id)


@overload
def track(name: F) -> F: ...
@overload
def track(
    name: str,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int | None = 10,
    features_fn: FeaturesFn | None = None,
    feature_names: Sequence[str] | None = None,
    task: str | None = None,
    column_policies: Mapping[str, str] | None = None,
    embeddings: bool | str = False,
) -> Callable[[F], F]: ...
def track(
    name: str | F,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int | None = 10,
    features_fn: FeaturesFn | None = None,
    feature_names: Sequence[str] | None = None,
    task: str | None = None,
    column_policies: Mapping[str, str] | None = None,
    embeddings: bool | str = False,
) -> F | Callable[[F], F]:
    """Decorator: log each call of a sync or ``async`` function as a prediction named ``name``.

    ``@aither.track`` without arguments uses the function's qualified name.
    """
    if not isinstance(name, str):
        return track(name.__qualname__)(name)
    options = WrapOptions(
        name,
        version,
        environment,
        sample_rows,
        sample_columns,
        features_fn,
        feature_names,
        task,
        column_policies,
        embeddings,
    )

    def decorate(function: F) -> F:
        model_logger = ModelLogger(options, "function")
        method = function.__name__

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_tracked(*args: object, **kwargs: object) -> object:
                return await model_logger.call_async(method, function, args, kwargs)

            tracked: Callable[..., object] = async_tracked
        else:

            @functools.wraps(function)
            def sync_tracked(*args: object, **kwargs: object) -> object:
                return model_logger.call(method, function, args, kwargs)

            tracked = sync_tracked
        tracked.__dict__["aither"] = model_logger
        # functools.wraps made it ``function``'s stand-in: the same parameters, the same result.
        return cast(F, tracked)

    return decorate


def log_prediction(
    model_name: str,
    features: object,
    prediction: object,
    version: str | None = None,
    environment: str | None = None,
    trace_id: str | None = None,
    entity: str | int | None = None,
) -> str:
    """Log one prediction made outside a wrapped model; returns its trace id (``trace_id`` if given). ``entity``
    (a customer's id) is sent as its hashed key, as in ``with aither.entity(...)``."""
    model_logger = _manual_logger(model_name, version, environment)
    trace = int(parse_trace_id(trace_id), 16) if trace_id is not None else new_trace_id()
    now = time.time_ns()
    if entity is None:
        model_logger.record("prediction", features, prediction, now, end_ns=now, trace_id=trace)
    else:
        with entity_context(entity):
            model_logger.record("prediction", features, prediction, now, end_ns=now, trace_id=trace)
    return format_trace_id(trace)


_manual_loggers: dict[tuple[str, str | None, str | None], ModelLogger] = {}


def _manual_logger(name: str, version: str | None, environment: str | None) -> ModelLogger:
    """The logger of ``log_prediction``'s model (framework ``manual``), built once per identity."""
    key = (name, version, environment)
    model_logger = _manual_loggers.get(key)
    if model_logger is None:
        if len(_manual_loggers) >= 1024:  # a runaway set of names must not grow memory
            _manual_loggers.clear()
        model_logger = _manual_loggers[key] = ModelLogger(WrapOptions(name, version, environment), "manual")
    return model_logger


def _plain_label(label: object) -> object:
    """A label as plain Python data, taken now (the caller may reuse the array)."""
    if isinstance(label, (str, bool, int, float)) or label is None:
        return label
    for method in ("to_list", "tolist"):
        convert = getattr(label, method, None)
        if callable(convert):
            return convert()
    as_numpy = getattr(label, "numpy", None)  # a TensorFlow tensor (or anything else that converts to numpy)
    if callable(as_numpy) and hasattr(label, "shape"):
        return _plain_label(as_numpy())
    if isinstance(label, (list, tuple)):
        return [_plain_label(item) for item in label]
    item = getattr(label, "item", None)
    if callable(item):
        return item()
    return label


def _is_sequence(value: object) -> bool:
    return isinstance(value, list)


_ROW_LIMIT = 1 << 63


def log_label(trace_id: str, label: object, row: int | None = None) -> None:
    """Log the ground truth of a prediction: a scalar, a sequence aligned with its rows, or ``row=i`` for one row.

    A malformed ``trace_id`` or ``row`` raises ``ValueError`` at once.
    """
    trace = int(parse_trace_id(trace_id), 16)
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or not 0 <= row < _ROW_LIMIT):
        raise ValueError(f"row must be an integer from 0 to 2**63 - 1 (an int64 on the wire) or None, got {row!r}")
    value = _plain_label(label)
    if row is not None and _is_sequence(value):
        raise ValueError("with row=, label must be the single label of that row, not a sequence")
    client = _client.get_client()
    if client.settings.disabled:
        return
    now = time.time_ns()
    try:
        client.submit(SpanRecord.for_label(trace, new_span_id(), now, value, row))
    except Exception:
        client.internal_errors += 1
        logger.warning("aither: could not record a label", exc_info=True)


def flush(timeout: float | None = None) -> bool:
    """Block until everything queued so far is delivered (True) or ``timeout`` seconds pass (False)."""
    return _client.get_client().exporter.flush(timeout)


def close(timeout: float = 5.0) -> bool:
    """Flush within ``timeout`` seconds and stop the background worker. Later records are dropped and counted."""
    return _client.get_client().exporter.close(timeout)


def stats() -> Stats:
    """Delivery counters: queued, exported, dropped (by reason), retries, export_errors, last_error..."""
    return _client.get_client().stats()
