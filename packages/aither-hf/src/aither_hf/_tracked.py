"""The tracked pipeline: an instance of a subclass of the pipeline's own class.

``aither.wrap(pipe, name=...)`` returns ``TrackedTextClassificationPipeline`` (for example), a class created once
per pipeline class with :class:`TrackedPipeline` in front of the original class in its MRO. The new instance is
a shallow copy of the pipeline: its ``__dict__`` holds the same model, tokenizer and processors (nothing is
reloaded or copied deeply), so every attribute and method of the pipeline keeps working, ``isinstance(tracked,
type(pipe))`` holds, and the original ``pipe`` stays as it was (calls made on it are not logged).
"""

from __future__ import annotations

import contextvars
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, cast

from aither.integrations import Captured, ModelLogger, Tokenize, TraceIdsMixin

from . import _embeddings
from ._sampling import capture_inputs_safely, output_capture, worker_tokenize

if TYPE_CHECKING:
    from transformers import Pipeline

__all__ = ["TrackedPipeline", "rebuild", "tracked_class"]

# A pipeline whose own code calls ``self(...)`` (a custom subclass, a chunked pipeline) must log the outer call
# only: this flag is set while a tracked call runs in the current thread or task.
_inside_call: contextvars.ContextVar[bool] = contextvars.ContextVar("aither_hf_inside_call", default=False)

#: Keys of the instance ``__dict__`` that belong to aither, not to the pipeline.
_TOKENIZE = "_aither_tokenize_texts"
_EMBEDDINGS = "_aither_embeddings"
_OWN_KEYS = frozenset({"_aither", _TOKENIZE, _EMBEDDINGS})

logger_ = logging.getLogger("aither")
# Parameters of ``Pipeline.__call__`` that are not inputs.
_CALL_PARAMETERS = frozenset({"batch_size", "num_workers"})


class TrackedPipeline(TraceIdsMixin):
    """Mixin placed in front of the pipeline's class: logs ``__call__``, one span per call."""

    _aither: ModelLogger
    #: The pipeline class this tracked class derives from.
    _aither_base: type[Pipeline]

    def __call__(self, *args: object, **kwargs: object) -> Any:
        call = super().__call__  # type: ignore[misc]  # the pipeline's own __call__, next in the MRO
        if _inside_call.get():
            return call(*args, **kwargs)
        logger = self._aither
        if args:
            value = args[0]
        elif "inputs" in kwargs:
            value = kwargs["inputs"]
        else:  # keyword inputs: question=..., context=... (question answering), text=...
            value = {k: v for k, v in kwargs.items() if k not in _CALL_PARAMETERS}
        task = getattr(self, "task", None)
        features: Captured | None = None
        options = logger.options
        if options.features_fn is None:  # sampled before the call: some pipelines pop keys from an input dict
            rate = getattr(getattr(self, "feature_extractor", None), "sampling_rate", None)
            tokenize = self._aither_tokenize()
            features = capture_inputs_safely(value, task, rate, options.sample_rows, options.sample_columns, tokenize)
        capture = output_capture(task, isinstance(value, (list, tuple)))
        collector: _embeddings.EmbeddingCollector | None = self.__dict__.get(_EMBEDDINGS)
        embeddings = None
        if collector is not None:
            collector.start()
            rows = options.sample_rows

            def embeddings() -> Captured | None:
                return collector.take(rows)

        token = _inside_call.set(True)
        try:
            return logger.call(
                "__call__",
                call,
                args,
                kwargs,
                inputs=value,
                capture_output=capture,
                features=features,
                embeddings=embeddings,
            )
        finally:
            _inside_call.reset(token)
            if collector is not None:
                collector.stop()

    def _aither_tokenize(self) -> Tokenize | None:
        """The worker's token counter (a copy of this pipeline's tokenizer), made at the first call."""
        state = self.__dict__
        if _TOKENIZE not in state:
            state[_TOKENIZE] = worker_tokenize(getattr(self, "tokenizer", None))
        found: Tokenize | None = state[_TOKENIZE]
        return found

    def unwrap(self) -> Pipeline:
        """A plain pipeline of the original class sharing this one's model, tokenizer and settings."""
        plain = object.__new__(self._aither_base)
        plain.__dict__.update(_pipeline_state(self))
        return plain

    def __repr__(self) -> str:
        base = self._aither_base
        return f"<aither tracked {self._aither.identity.name!r}: {base.__module__}.{base.__qualname__} object>"

    # The class is created at run time, so pickle rebuilds it from the original class (which pickles by name).
    def __reduce__(self) -> tuple[object, ...]:
        return (rebuild, (self._aither_base, _pipeline_state(self), self._aither))


def _pipeline_state(pipe: object) -> dict[str, object]:
    return {k: v for k, v in vars(pipe).items() if k not in _OWN_KEYS}


_classes: weakref.WeakKeyDictionary[type[Pipeline], type[TrackedPipeline]] = weakref.WeakKeyDictionary()
_classes_lock = threading.Lock()


def tracked_class(base: type[Pipeline]) -> type[TrackedPipeline]:
    """The tracked subclass of ``base`` (created once per pipeline class)."""
    with _classes_lock:
        cls = _classes.get(base)
        if cls is None:
            namespace = {
                "__module__": __name__,
                "__qualname__": f"Tracked{base.__qualname__}",
                "__doc__": f"{base.__qualname__} whose calls are logged by aither.\n\n{base.__doc__ or ''}",
                "_aither_base": base,
            }
            # type(base)(...): pipelines are ABCs, so the subclass is built by their own metaclass.
            metaclass: type[type] = type(base)
            cls = cast(
                "type[TrackedPipeline]", metaclass(f"Tracked{base.__name__}", (TrackedPipeline, base), namespace)
            )
            _classes[base] = cls
        return cls


def rebuild(base: type[Pipeline], state: dict[str, object], logger: ModelLogger) -> TrackedPipeline:
    """A tracked instance of ``base`` from a pipeline's state (no ``__init__``: nothing is loaded again)."""
    tracked = object.__new__(tracked_class(base))
    tracked.__dict__.update(state)
    tracked.__dict__["_aither"] = logger
    model = state.get("model")
    _embeddings.detach(model)  # wrapping again replaces an earlier wrap's embedding hook
    choice = logger.options.embeddings
    if choice:
        try:
            tracked.__dict__[_EMBEDDINGS] = _embeddings.attach(tracked, choice, logger.options.sample_rows)
        except (ValueError, AttributeError) as exc:  # no torch model, no such layer: logged without embeddings
            logger_.warning("aither: %r is logged without embeddings: %s", logger.identity.name, exc)
    return tracked
