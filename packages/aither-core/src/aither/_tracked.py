"""The generic tracked model: attribute passthrough plus logging of the usual prediction methods.

Used for any model no plugin claims, and as the base of plugins whose framework has no native hook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from ._tracking import ModelLogger, TraceIdsMixin

__all__ = ["LOGGED_METHODS", "TrackedModel"]

_T = TypeVar("_T")

#: Methods logged when the model has them (``__call__`` is handled by the class itself).
LOGGED_METHODS = frozenset({"predict", "predict_proba", "predict_log_proba", "decision_function", "transform"})


class TrackedModel(TraceIdsMixin):
    """Wraps ``model``: logged methods record a span per call; every other attribute is the model's own."""

    _logged_methods: frozenset[str] = LOGGED_METHODS

    def __init__(self, model: object, logger: ModelLogger) -> None:
        object.__setattr__(self, "model", model)
        object.__setattr__(self, "_aither", logger)

    #: The user's model, used through the wrapper as its own type: its attributes and outputs are the model's.
    model: Any

    def __getattr__(self, name: str) -> Any:
        # Only reached for names the wrapper itself does not define: everything else is the model's.
        if name.startswith("__") or name in ("model", "_aither"):
            raise AttributeError(name)
        attribute = getattr(self.model, name)
        if name in self._logged_methods and callable(attribute):
            logged = self._logged(name, attribute)
            object.__setattr__(self, name, logged)  # cache: later calls skip __getattr__
            return logged
        return attribute

    def __setattr__(self, name: str, value: object) -> None:
        setattr(self.model, name, value)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(dir(self.model)))

    def __repr__(self) -> str:
        return f"<aither tracked {self._aither.identity.name!r}: {self.model!r}>"

    def __call__(self, *args: object, **kwargs: object) -> Any:
        model = self.model
        if not callable(model):
            raise TypeError(f"{type(model).__name__!r} object is not callable")
        return self._aither.call("__call__", model, args, kwargs)

    def _logged(self, method: str, function: Callable[..., _T]) -> Callable[..., _T]:
        call = self._aither.call

        @functools.wraps(function)
        def logged(*args: object, **kwargs: object) -> _T:
            return call(method, function, args, kwargs)

        return logged

    def unwrap(self) -> Any:  # the user's model, as ``model``
        """The original model (the same object as ``tracked.model``)."""
        return self.model

    # Pickle the wrapper as (model, logger): the cached bound methods are rebuilt on first use.
    def __reduce__(self) -> tuple[type[TrackedModel], tuple[object, ...]]:
        return (type(self), (self.model, self._aither))
