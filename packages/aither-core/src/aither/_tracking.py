"""Recording one model call as a span: what every wrapper, hook and callback calls on the caller's thread."""

from __future__ import annotations

import bisect
import collections
import contextvars
import dataclasses
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypedDict, TypeVar, Union

from . import _aggregates, _client
from ._aggregates import BOUNDS_NS, CALLS, DURATION_NS, ERRORS, FIRST_BUCKET, ROWS
from ._capture import Captured, capture_failed, capture_features, capture_prediction, render_as_is, set_turn
from ._capture._embeddings import with_embeddings
from ._capture._named import named_features
from ._capture._outputs import TASKS, interpreted_output
from ._capture._predictions import _prediction_capturers
from ._entity import ENTITY
from ._ids import LAST_TRACE_ID, _getrandbits, format_trace_id, new_span_id, new_trace_id
from ._records import ModelIdentity, SpanRecord
from ._sketches import profile_capture

__all__ = [
    "FROM_ARGUMENTS",
    "FeaturesFn",
    "NETWORK_FRAMEWORKS",
    "WRAP_OPTIONS",
    "Features",
    "ModelLogger",
    "OutputCapture",
    "TraceIdsMixin",
    "WrapOptions",
    "ALL_COLUMNS",
    "checked_feature_names",
    "current_otel_link",
    "inputs_of",
]

logger = logging.getLogger("aither")
_time_ns = time.time_ns
_bucket = bisect.bisect_left
_modules = sys.modules
_OTEL_TRACE = "opentelemetry.trace"

#: ``capture_output(output, max_rows)``: a bounded copy of a call's output, made on the caller's thread. A
#: plugin's capture takes its framework's output type, so the first parameter is its own to name.
OutputCapture = Callable[[Any, int], Captured]
#: ``wrap(..., features_fn=)``: the user's function of a call's inputs, annotated by its author (so its
#: parameter is the author's type to name); its result is sent as the features, only passed on.
FeaturesFn = Callable[[Any], object]
#: A plugin's own capture of the inputs; or, for inputs that cannot be sampled, a function of the rows predicted.
Features = Union[Captured, Callable[[int], Captured], None]  # noqa: UP007 - a runtime alias on Python 3.10
_T = TypeVar("_T")


class _FromArguments:
    def __repr__(self) -> str:
        return "FROM_ARGUMENTS"


#: ``ModelLogger.call``'s default ``inputs``: named from the call's arguments by :func:`inputs_of`.
FROM_ARGUMENTS = _FromArguments()


#: ``wrap(..., sample_columns=None)``: a window wider than any table, so every column of the sampled rows.
ALL_COLUMNS = 2**31 - 1


class _SampleColumns:
    """``WrapOptions.sample_columns``: given as ``wrap`` takes it (``None``: every column), read as the width
    of the column window the samplers take (always an int), so no caller converts it first."""

    def __set_name__(self, owner: type, name: str) -> None:
        self._attribute = f"_{name}"

    def __get__(self, instance: object, owner: type | None = None) -> int:
        if instance is None:
            return 10  # the option's default, as dataclasses and the signature checks read it on the class
        width: int = instance.__dict__[self._attribute]
        return width

    def __set__(self, instance: object, value: int | None) -> None:
        # Frozen: the dataclass's __init__ sets fields through object.__setattr__, which lands here.
        instance.__dict__[self._attribute] = ALL_COLUMNS if value is None else value


@dataclasses.dataclass(frozen=True)
class WrapOptions:
    """The options of ``aither.wrap`` (and ``@aither.track``), validated once."""

    name: str
    version: str | None = None
    environment: str | None = None
    sample_rows: int = 5
    #: Columns per sampled row: a window that rotates across calls over wider tables; ``None``, every column.
    sample_columns: _SampleColumns = _SampleColumns()
    features_fn: FeaturesFn | None = None
    #: Names of a table's columns, for inputs that have none (arrays, tensors): column ``i`` is named
    #: ``feature_names[i]`` instead of ``"i"``, as ``log_reference(..., feature_names=)`` names its columns.
    feature_names: Sequence[str] | None = None
    #: ``"classification"`` or ``"regression"``: what the model's output is, when its shape cannot say.
    task: str | None = None
    #: This model's column policies, over ``init()``'s (docs/privacy.md): ``{"email": "drop", ...}``.
    column_policies: Mapping[str, str] | None = None
    #: Capture each sampled row's pooled hidden state (torch models, transformers pipelines): True for the
    #: plugin's default layer, or the name of the layer (``"bert.pooler"``). docs/torch.md, transformers.md.
    embeddings: bool | str = False

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(f"name must be a non-empty string, got {self.name!r}")
        for field in ("version", "environment"):
            value = getattr(self, field)
            if value is not None and not isinstance(value, str):
                raise TypeError(f"{field} must be a string or None, got {type(value).__name__}")
        for field in ("sample_rows", "sample_columns"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"{field} must be a non-negative integer, got {value!r}")
        if self.features_fn is not None and not callable(self.features_fn):
            raise TypeError("features_fn must be callable")
        if self.feature_names is not None:
            object.__setattr__(self, "feature_names", checked_feature_names(self.feature_names))
        if self.task is not None and self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(map(repr, TASKS))} or None, got {self.task!r}")
        if self.column_policies is not None:
            from ._privacy import ColumnPolicies, hash_key_from_env

            ColumnPolicies(self.column_policies, hash_key=hash_key_from_env())  # a bad rule fails here, at once
        if not isinstance(self.embeddings, (bool, str)) or self.embeddings == "":
            raise TypeError(f"embeddings must be True, False or a layer's name, got {self.embeddings!r}")


def checked_feature_names(feature_names: object) -> tuple[str, ...]:
    """``feature_names`` as a tuple of distinct strings, or ``ValueError``/``TypeError`` saying what is wrong."""
    if isinstance(feature_names, (str, bytes)) or not isinstance(feature_names, Iterable):
        raise TypeError(f"feature_names must be a sequence of strings, got {type(feature_names).__name__}")
    names = tuple(feature_names)
    if not all(isinstance(name, str) for name in names):
        raise TypeError("feature_names must be strings")
    if len(set(names)) != len(names):
        raise ValueError("feature_names must be distinct")
    return names


#: The names of the wrap options, in order: every public signature that takes them spells exactly these.
WRAP_OPTIONS: tuple[str, ...] = tuple(field.name for field in dataclasses.fields(WrapOptions))


def current_otel_link() -> tuple[int, int] | None:
    """(trace id, span id) of the caller's active OpenTelemetry span, if OpenTelemetry is in use at all."""
    otel_trace = sys.modules.get(_OTEL_TRACE)  # never import it: no OTel, no cost
    if otel_trace is None:
        return None
    try:
        context = otel_trace.get_current_span().get_span_context()
    except Exception:
        return None
    if not context.is_valid:
        return None
    return (context.trace_id, context.span_id)


#: Frameworks whose models return raw arrays (logits, probabilities, regression values) from ``forward``/``predict``.
NETWORK_FRAMEWORKS = frozenset({"torch", "tensorflow", "tinygrad"})


class _LoggerState(TypedDict):
    """What a pickled :class:`ModelLogger` keeps: its identity's options, not its history."""

    options: WrapOptions
    framework: str
    limit: int | None


class ModelLogger:
    """Turns calls of one wrapped model into span records. Shared by every integration.

    Holds the model's identity and its trace-id history. ``record`` never raises: a telemetry failure is
    logged on the ``aither`` logger and counted in ``stats()["internal_errors"]``.
    """

    def __init__(self, options: WrapOptions, framework: str) -> None:
        self.options = options
        self.framework = framework
        self.identity = ModelIdentity(options.name, options.version, options.environment, framework)
        self._counts = _aggregates.counts_for(self.identity)
        self._init_history(_client.get_client().settings.max_trace_ids)
        self._init_reading()
        if options.column_policies:
            from ._privacy import ColumnPolicies, hash_key_from_env, register_model_policies

            register_model_policies(options.name, ColumnPolicies(options.column_policies, hash_key=hash_key_from_env()))

    def _init_reading(self) -> None:
        # Decided once per model: the hot path tests two attributes. A network's raw output (logits...) is
        # read as class probabilities or regression values (``_capture/_outputs.py``); any model's with task=.
        options = self.options
        self._names: tuple[str, ...] | None = tuple(options.feature_names) if options.feature_names else None
        self._interpret = options.task is not None or self.framework in NETWORK_FRAMEWORKS

    def _init_history(self, limit: int) -> None:
        # Integers, written as hex only when read: formatting costs on every prediction otherwise.
        self._trace_ids: collections.deque[int] = collections.deque(maxlen=limit)
        self._turn = 0
        self._last: contextvars.ContextVar[int | None] = contextvars.ContextVar("aither_model_trace_id", default=None)

    # Pickling (sklearn meta-estimators, torch.save of a whole module): keep identity, not the history.
    def __getstate__(self) -> _LoggerState:
        return {"options": self.options, "framework": self.framework, "limit": self._trace_ids.maxlen}

    def __setstate__(self, state: _LoggerState) -> None:
        self.options = state["options"]
        self.framework = state["framework"]
        self.identity = ModelIdentity(self.options.name, self.options.version, self.options.environment, self.framework)
        self._counts = _aggregates.counts_for(self.identity)
        self._init_history(state["limit"] or 10_000)
        self._init_reading()

    def __repr__(self) -> str:
        return f"<ModelLogger {self.identity.name!r} framework={self.framework!r}>"

    @property
    def last_trace_id(self) -> str | None:
        trace_id = self._last.get()
        return None if trace_id is None else format_trace_id(trace_id)

    @property
    def trace_ids(self) -> list[str]:
        return [format_trace_id(trace_id) for trace_id in self._trace_ids]

    def call(
        self,
        method: str,
        function: Callable[..., _T],
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
        *,
        inputs: object = FROM_ARGUMENTS,
        capture_output: OutputCapture | None = None,
        features: Features = None,
        embeddings: Callable[[], Captured | None] | None = None,
    ) -> _T:
        """Call ``function(*args, **kwargs)`` and record it as one span; its own exceptions pass through as they are.

        The one call path of every plugin. ``inputs``: what the call's features are, by default named from the
        arguments by :func:`inputs_of`. ``capture_output(output, max_rows)``: a plugin's bounded copy of the
        output (default: core's). ``features``: see :meth:`record`.
        """
        # Named before the clock starts: only references are packed, so the call's own time is not touched.
        named = inputs_of(args, kwargs) if inputs is FROM_ARGUMENTS else inputs
        start_ns = _time_ns()
        try:
            output = function(*args, **kwargs)
        except Exception as exc:
            self.record(method, named, None, start_ns, error=exc, features=features)
            raise
        hidden = None if embeddings is None else embeddings()
        self.record(
            method, named, output, start_ns, capture_output=capture_output, features=features, embeddings=hidden
        )
        return output

    async def call_async(
        self,
        method: str,
        function: Callable[..., Awaitable[_T]],
        args: tuple[object, ...],
        kwargs: Mapping[str, object],
    ) -> _T:
        """:meth:`call` for a coroutine function: the span covers the ``await``."""
        start_ns = _time_ns()
        try:
            output = await function(*args, **kwargs)
        except Exception as exc:
            self.record(method, inputs_of(args, kwargs), None, start_ns, error=exc)
            raise
        self.record(method, inputs_of(args, kwargs), output, start_ns)
        return output

    def record(
        self,
        method: str,
        inputs: object,
        output: object,
        start_ns: int,
        *,
        end_ns: int | None = None,
        error: BaseException | None = None,
        link: tuple[int, int] | None = None,
        capture_output: OutputCapture | None = None,
        features: Features = None,
        trace_id: int | None = None,
        embeddings: Captured | None = None,
    ) -> None:
        """Submit one prediction span of a call that started at ``start_ns`` (ended now, or at ``end_ns``).

        For hooks that see the start and the end of a call apart (torch's forward hooks); everything else goes
        through :meth:`call`. Never raises: a telemetry failure is logged and counted in
        ``stats()["internal_errors"]``. Its trace id (``trace_id``, else a new one) is then ``last_trace_id``.

        ``features``: a capture the plugin already made (its own sampler), or, for an input that cannot be
        sampled, a function of the rows predicted that describes it; else ``inputs`` is captured here.
        ``features_fn`` still wins over both. ``embeddings``: the sampled rows' hidden states a plugin's hook
        took (``_capture/_embeddings.py``), added to the features' ``_meta``. The output is captured (by
        ``capture_output``, else core's capture) only for a call that returned and that the exporter keeps; a
        capture that raises is recorded as a marker naming the exception.

        This runs on the caller's thread for every prediction: ids, a bounded copy of the sample, one queue
        put. Nothing here encodes, serialises or does I/O.
        """
        # Every step here runs once per prediction, usually right after the model's own code has evicted the
        # interpreter's caches: a Python call costs about a microsecond then, so the common case (a type seen
        # before, nothing dropped, no OpenTelemetry) makes as few of them as it can (docs/benchmarks.md).
        end = _time_ns() if end_ns is None else end_ns
        if trace_id is None:
            trace_id = _getrandbits(128) or new_trace_id()
        self._trace_ids.append(trace_id)
        self._last.set(trace_id)
        LAST_TRACE_ID.set(trace_id)
        client = _client._client or _client.get_client()
        try:
            settings = client.settings
            if settings.disabled:
                return
            exporter = client.exporter
            # Under overload the exporter keeps 1 call in k; a call it leaves out is counted, never sampled.
            keep = 1 if exporter.keep_every == 1 else exporter.admit()
            options = self.options
            if keep and error is None:
                try:
                    if capture_output is None:
                        capturer = _prediction_capturers.get(type(output))
                        if capturer is None:
                            prediction: Captured | None = capture_prediction(output, settings.max_prediction_rows)
                        else:
                            prediction = capturer(output, settings.max_prediction_rows)
                    else:
                        prediction = capture_output(output, settings.max_prediction_rows)
                except Exception as exc:  # never let telemetry break the prediction: record a marker
                    prediction = capture_failed(output, exc)
            else:
                prediction = None
            if prediction is not None and self._interpret:
                prediction = interpreted_output(prediction, options.task)
            if callable(features):  # described by the rows predicted: none when the call raised
                if prediction is not None:
                    features = features(prediction.rows)
                else:
                    features = features(0 if error is not None else batch_size_of(output))
            if not keep:
                rows = features.rows if features is not None else batch_size_of(inputs)
            elif options.sample_rows == 0 or settings.profile_only:
                # Profile-only: no row, not even a plugin's sample or features_fn's, goes into the span; the
                # worker sketches the whole input (_sketches.py).
                given = features.rows if features is not None else None
                features = profile_capture(inputs, self._names)
                rows = features.rows if given is None else given
            elif options.features_fn is not None:
                rows = features.rows if features is not None else batch_size_of(inputs)
                features = self._custom_features(inputs)
            else:
                if features is None:
                    set_turn(self._turn)  # this model's call count: which column window a wide input shows
                    self._turn += 1
                    features = capture_features(inputs, options.sample_rows, options.sample_columns)
                rows = features.rows
                if self._names is not None:
                    features = named_features(features, self._names)
            if embeddings is not None and keep and features is not None:
                features = with_embeddings(features, embeddings)
            # This thread's counters of the model (ModelCounts.cell, inline): a few integer adds and no lock.
            counts = self._counts
            try:
                cell = counts.local.cell
            except AttributeError:
                cell = counts.cell()
            duration = end - start_ns
            cell[CALLS] += 1
            cell[DURATION_NS] += duration
            cell[FIRST_BUCKET + _bucket(BOUNDS_NS, duration)] += 1
            if error is None:
                cell[ROWS] += rows  # rows predicted: a call that raised predicted none
            else:
                cell[ERRORS] += 1
            if not keep:
                exporter.skip(trace_id, self.identity)
                return
            if link is None and _OTEL_TRACE in _modules:
                link = current_otel_link()
            record = SpanRecord(
                trace_id,
                _getrandbits(64) or new_span_id(),
                method,
                start_ns,
                end,
                self.identity,
                method,
                features,
                prediction,
                rows,
                error,
                link,
            )
            if keep != 1:
                record.sample_rate = 1.0 / keep
            record.entity = ENTITY.get()
            exporter.submit(record)
        except Exception:
            client.internal_errors += 1
            logger.warning("aither: could not record a %s call of %r", method, self.identity.name, exc_info=True)

    def _custom_features(self, inputs: object) -> Captured:
        assert self.options.features_fn is not None
        try:
            value = self.options.features_fn(inputs)
        except Exception as exc:
            logger.warning("aither: features_fn of %r raised %s", self.identity.name, type(exc).__name__)
            value = {"_meta": {"error": f"features_fn raised {type(exc).__name__}"}}
        return Captured(render_as_is, value, 1, 1024)


def inputs_of(args: tuple[object, ...], kwargs: Mapping[str, object]) -> object:
    """A call's features, by the one rule every integration uses: its only argument; else its keyword
    arguments; else ``{"0": a, "1": b, **kwargs}``."""
    if len(args) == 1 and not kwargs:
        return args[0]
    if not args:
        return kwargs
    named: dict[str, object] = {str(i): arg for i, arg in enumerate(args)}
    named.update(kwargs)
    return named


def batch_size_of(value: object) -> int:
    """Rows in an input: the first dimension of arrays and frames, the length of lists, else 1."""
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) or (shape is not None and hasattr(shape, "__len__")):
        try:
            return int(shape[0]) if len(shape) else 1
        except (TypeError, ValueError, IndexError):
            return 1
    if isinstance(value, (list, tuple)):
        return len(value)
    return 1


class TraceIdsMixin:
    """``last_trace_id`` and ``trace_ids`` for any tracked model that keeps its ``ModelLogger`` in ``_aither``."""

    _aither: ModelLogger

    @property
    def last_trace_id(self) -> str | None:
        """Trace id of this model's last call in the current thread or asyncio task."""
        return self._aither.last_trace_id

    @property
    def trace_ids(self) -> list[str]:
        """Trace ids of this model's calls, oldest first (the last ``max_trace_ids``)."""
        return self._aither.trace_ids
