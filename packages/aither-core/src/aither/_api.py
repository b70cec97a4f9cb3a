"""The public functions: init, wrap, track, log_prediction, log_label, flush, close, stats."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from typing import Any, TypeVar, overload

from . import _aggregates, _client
from ._ids import LAST_TRACE_ID, format_trace_id, new_span_id, new_trace_id, parse_trace_id
from ._plugins import wrap_model
from ._records import ModelIdentity, SpanRecord
from ._sampling import capture_features, capture_prediction
from ._tracking import ModelLogger, WrapOptions, batch_size_of, count_call, current_otel_link

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

F = TypeVar("F", bound=Callable[..., Any])


def init(
    api_key: str | None = None,
    base_url: str | None = None,
    flush_interval: float = 1.0,
    batch_size: int = 100,
    **options: Any,
) -> None:
    """Configure aither. Arguments win over ``AITHER_*`` variables; unknown options raise ``TypeError``.

    Calling it again replaces the client, after flushing what the previous one had queued.
    """
    _client.init(api_key=api_key, base_url=base_url, flush_interval=flush_interval, batch_size=batch_size, **options)


def wrap(
    model: Any,
    name: str,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int = 10,
    features_fn: Callable[[Any], Any] | None = None,
) -> Any:
    """Wrap ``model`` so that each prediction is logged; the installed plugin for its framework does the work."""
    options = WrapOptions(name, version, environment, sample_rows, sample_columns, features_fn)
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
    sample_columns: int = 10,
    features_fn: Callable[[Any], Any] | None = None,
) -> Callable[[F], F]: ...
def track(
    name: Any,
    version: str | None = None,
    environment: str | None = None,
    sample_rows: int = 5,
    sample_columns: int = 10,
    features_fn: Callable[[Any], Any] | None = None,
) -> Any:
    """Decorator: log each call of a sync or ``async`` function as a prediction named ``name``.

    ``@aither.track`` without arguments uses the function's qualified name.
    """
    if callable(name) and not isinstance(name, str):
        return track(name.__qualname__)(name)
    options = WrapOptions(name, version, environment, sample_rows, sample_columns, features_fn)

    def decorate(function: F) -> F:
        model_logger = ModelLogger(options, "function")
        method = function.__name__

        import inspect

        if inspect.iscoroutinefunction(function):

            @functools.wraps(function)
            async def async_tracked(*args: Any, **kwargs: Any) -> Any:
                start_ns = time.time_ns()
                inputs = _function_inputs(args, kwargs)
                try:
                    output = await function(*args, **kwargs)
                except Exception as exc:
                    model_logger.record(method, inputs, None, start_ns, error=exc)
                    raise
                model_logger.record(method, inputs, output, start_ns)
                return output

            tracked: Any = async_tracked
        else:

            @functools.wraps(function)
            def sync_tracked(*args: Any, **kwargs: Any) -> Any:
                start_ns = time.time_ns()
                inputs = _function_inputs(args, kwargs)
                try:
                    output = function(*args, **kwargs)
                except Exception as exc:
                    model_logger.record(method, inputs, None, start_ns, error=exc)
                    raise
                model_logger.record(method, inputs, output, start_ns)
                return output

            tracked = sync_tracked
        tracked.aither = model_logger
        return tracked  # type: ignore[no-any-return]

    return decorate


def _function_inputs(args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args:
        return kwargs
    return {**{f"arg{i}": value for i, value in enumerate(args)}, **kwargs}


def log_prediction(
    model_name: str,
    features: Any,
    prediction: Any,
    version: str | None = None,
    environment: str | None = None,
    trace_id: str | None = None,
) -> str:
    """Log one prediction made outside a wrapped model; returns its trace id (``trace_id`` if given)."""
    options = WrapOptions(model_name, version, environment)
    trace = int(parse_trace_id(trace_id), 16) if trace_id is not None else new_trace_id()
    client = _client.get_client()
    now = time.time_ns()
    LAST_TRACE_ID.set(trace)
    if client.settings.disabled:
        return format_trace_id(trace)
    try:
        identity = ModelIdentity(options.name, options.version, options.environment, "manual")
        exporter = client.exporter
        keep = exporter.admit()
        captured = capture_features(features, options.sample_rows, options.sample_columns) if keep else None
        count_call(_aggregates.counts_for(identity), captured.rows if captured else batch_size_of(features), 0, None)
        if captured is None:
            exporter.skip(trace, identity)
            return format_trace_id(trace)
        record = SpanRecord(
            trace,
            new_span_id(),
            "prediction",
            now,
            now,
            identity,
            "prediction",
            captured,
            capture_prediction(prediction, client.settings.max_prediction_rows),
            captured.rows,
            None,
            current_otel_link(),
        )
        if keep != 1:
            record.sample_rate = 1.0 / keep
        exporter.submit(record)
    except Exception:
        client.internal_errors += 1
        logger.warning("aither: could not record a prediction of %r", model_name, exc_info=True)
    return format_trace_id(trace)


def _plain_label(label: Any) -> Any:
    """A label as plain Python data, taken now (the caller may reuse the array)."""
    if isinstance(label, (str, bool, int, float)) or label is None:
        return label
    for method in ("to_list", "tolist"):
        convert = getattr(label, method, None)
        if callable(convert):
            return convert()
    if isinstance(label, (list, tuple)):
        return [_plain_label(item) for item in label]
    item = getattr(label, "item", None)
    if callable(item):
        return item()
    return label


def _is_sequence(value: Any) -> bool:
    return isinstance(value, list)


def log_label(trace_id: str, label: Any, row: int | None = None) -> None:
    """Log the ground truth of a prediction: a scalar, a sequence aligned with its rows, or ``row=i`` for one row.

    A malformed ``trace_id`` or ``row`` raises ``ValueError`` at once.
    """
    trace = int(parse_trace_id(trace_id), 16)
    if row is not None and (isinstance(row, bool) or not isinstance(row, int) or row < 0):
        raise ValueError(f"row must be a non-negative integer or None, got {row!r}")
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


def stats() -> dict[str, Any]:
    """Delivery counters: queued, exported, dropped (by reason), retries, export_errors, last_error..."""
    return _client.get_client().stats()
