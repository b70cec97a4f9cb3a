"""The object ``aither.wrap`` returns for a Keras model."""

from __future__ import annotations

from typing import Any

from aither.integrations import Features, TrackedModel

from ._outputs import capture_returned, is_sampleable, unseen_features

__all__ = ["TrackedKerasModel"]

METHOD = "predict"

_NOTE = "a dataset, generator or PyDataset cannot be sampled without consuming it"


class TrackedKerasModel(TrackedModel):
    """A Keras model whose ``predict`` and direct calls are logged; everything else is the model's.

    ``tracked.predict(x, ...)`` calls ``model.predict`` exactly as given (your callbacks untouched, none added)
    and logs one ``predict`` span from what it can see: features sampled from ``x`` and the prediction from the
    returned arrays. ``tracked(x)`` logs a ``__call__`` span; ``tracked.predict_on_batch(x)`` a
    ``predict_on_batch`` span.
    """

    _logged_methods = frozenset({"predict_on_batch"})

    def predict(self, x: object = None, *args: object, **kwargs: object) -> Any:
        # Logged from the return value, not by injecting an aither Callback: any callback with
        # on_predict_batch_end turns off Keras' asynchronous dispatch and converts every batch to numpy, which
        # cost ~1.3 ms per call on a small MLP; predict's own numpy result already holds every row we keep.
        return self._aither.call(
            METHOD,
            self.model.predict,
            (x, *args),
            kwargs,
            inputs=x,
            capture_output=capture_returned,
            features=_features(x),
        )

    def __repr__(self) -> str:
        return f"<aither tracked {self._aither.identity.name!r} (keras): {self.model!r}>"


def _features(inputs: object) -> Features:
    """None when core samples ``x``; else (a dataset, a generator) its type and the rows predicted."""
    if is_sampleable(inputs):
        return None
    kind = type(inputs).__qualname__
    return lambda rows: unseen_features(kind, rows, _NOTE)
