"""The tracked tinygrad model: the generic wrapper, logging ``__call__`` and ``predict`` with tinygrad sampling."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from aither.integrations import Captured, ModelLogger, TrackedModel

from ._sampling import capture_output

__all__ = ["TrackedTinygradModel"]

_T = TypeVar("_T")


class TrackedTinygradModel(TrackedModel):
    """A model (or function) on tinygrad Tensors: ``tracked(x)`` and ``tracked.predict(x)`` log one span each.

    Every other attribute is the model's own (``tracked.l1.weight``); ``tracked.model`` is the model itself.
    Only these two calls log: core's generic logging of ``transform``/``predict_proba`` would read tinygrad
    outputs on aither's worker thread, which tinygrad does not allow.
    """

    _logged_methods = frozenset()
    _aither_realize: bool

    def __init__(self, model: object, logger: ModelLogger, realize_output: bool = False) -> None:
        super().__init__(model, logger)
        object.__setattr__(self, "_aither_realize", realize_output)

    # The model's own output (lazy Tensors, or anything a function returns): the caller reads it, so it stays
    # untyped.
    def __call__(self, *args: object, **kwargs: object) -> Any:
        model = self.model
        if not callable(model):
            raise TypeError(f"{type(model).__name__!r} object is not callable")
        return self._aither_call("__call__", model, args, kwargs)

    def predict(self, *args: object, **kwargs: object) -> Any:
        """The model's own ``predict`` if it has one, else the model's call; logged as ``predict``."""
        predict = getattr(self.model, "predict", None)
        return self._aither_call("predict", predict if callable(predict) else self.model, args, kwargs)

    def _aither_call(
        self, method: str, function: Callable[..., _T], args: tuple[object, ...], kwargs: dict[str, object]
    ) -> _T:
        capture = _capture_realized if self._aither_realize else _capture_as_is
        return self._aither.call(method, function, args, kwargs, capture_output=capture)

    def __repr__(self) -> str:
        return f"<aither tracked {self._aither.identity.name!r} (tinygrad): {self.model!r}>"

    def __reduce__(self) -> tuple[type[TrackedModel], tuple[object, ...]]:
        return (type(self), (self.model, self._aither, self._aither_realize))


def _capture_as_is(output: object, limit: int) -> Captured:
    return capture_output(output, limit, False)


def _capture_realized(output: object, limit: int) -> Captured:
    return capture_output(output, limit, True)
