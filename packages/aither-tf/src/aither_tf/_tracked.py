"""The object ``aither.wrap`` returns for a Keras model."""

from __future__ import annotations

from typing import Any

import keras

from aither.integrations import TrackedModel

from ._callback import Callback

__all__ = ["TrackedKerasModel"]

#: ``Model.predict(x, batch_size, verbose, steps, callbacks)``: callbacks is the fifth positional parameter.
_CALLBACKS_POSITION = 3


class TrackedKerasModel(TrackedModel):
    """A Keras model whose ``predict`` and direct calls are logged; everything else is the model's.

    ``tracked.predict(x, ...)`` adds an aither :class:`~aither_tf.Callback` to ``callbacks`` (yours still run,
    and the list you pass is not modified) and logs one ``predict`` span with features sampled from ``x``.
    ``tracked(x)`` logs a ``__call__`` span; ``tracked.predict_on_batch(x)`` a ``predict_on_batch`` span.
    """

    _logged_methods = frozenset({"predict_on_batch"})

    def predict(self, x: Any = None, *args: Any, **kwargs: Any) -> Any:
        callback = Callback._injected(self._aither, x)
        if len(args) > _CALLBACKS_POSITION:
            args = (*args[:_CALLBACKS_POSITION], _with(args[_CALLBACKS_POSITION], callback, self.model), *args[4:])
        else:
            kwargs["callbacks"] = _with(kwargs.get("callbacks"), callback, self.model)
        try:
            return self.model.predict(x, *args, **kwargs)
        except Exception as exc:
            callback._record(exc)  # Keras runs no callback when predict fails
            raise
        finally:
            user = kwargs.get("callbacks") if len(args) <= _CALLBACKS_POSITION else args[_CALLBACKS_POSITION]
            if isinstance(user, keras.callbacks.CallbackList) and callback in user.callbacks:
                user.callbacks.remove(callback)

    def __repr__(self) -> str:
        return f"<aither tracked {self._aither.identity.name!r} (keras): {self.model!r}>"


def _with(callbacks: Any, callback: Callback, model: Any) -> Any:
    """The user's callbacks plus ours, without modifying what the user passed (except a CallbackList, restored)."""
    if callbacks is None:
        return [callback]
    if isinstance(callbacks, keras.callbacks.CallbackList):
        callbacks.callbacks.append(callback)  # configured already: give ours the model as Keras would
        callback.set_model(model)
        return callbacks
    if isinstance(callbacks, (list, tuple)):
        return [*callbacks, callback]
    return [callbacks, callback]
