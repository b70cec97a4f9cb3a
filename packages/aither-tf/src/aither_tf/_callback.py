"""``aither_tf.Callback``: a Keras callback that logs one ``predict`` span per ``model.predict`` call.

For hand-placed use: ``model.predict(x, callbacks=[aither_tf.Callback("name")])``. ``tracked.predict`` does not
use it (it logs from predict's return value, which keeps Keras' asynchronous dispatch). The prediction is
assembled from ``on_predict_batch_end``'s ``outputs``: each batch is sliced (on its device) and copied to numpy
only until the prediction row cap is reached; later batches are only counted. Importing this module imports keras.
"""

from __future__ import annotations

import time
from typing import TypeVar

import numpy as np
import numpy.typing as npt

from aither.integrations import (
    Captured,
    ModelLogger,
    TraceIdsMixin,
    WrapOptions,
    bounded_prediction,
    max_prediction_rows,
    render_as_is,
)

from ._integration import FRAMEWORK, require_keras
from ._outputs import render_structured, unseen_features

require_keras()  # a clear error naming the extra, before the import below fails

import keras  # noqa: E402

__all__ = ["Callback"]

METHOD = "predict"

_NOTE = (
    "the input was not visible to the aither callback; wrap the model with aither.wrap and call tracked.predict(x)"
    " to sample features"
)

_Leaf = TypeVar("_Leaf")


class Callback(keras.callbacks.Callback, TraceIdsMixin):  # type: ignore[misc]
    """Logs every ``model.predict`` it is passed to as one ``predict`` span.

    ``model.predict(x, callbacks=[aither_tf.Callback("churn")])``. A callback cannot see ``x``: ``ml.features``
    describes the input by its row and batch count only (``_meta.type`` ``"unavailable"``), and
    ``ml.batch_size`` is the number of rows predicted; ``aither.wrap(model).predict(x)`` samples ``x`` and needs
    no callback. A failing ``predict`` runs no ``on_predict_end`` and is not logged. One instance may be reused
    across calls, one call at a time.
    """

    def __init__(
        self,
        name: str,
        version: str | None = None,
        environment: str | None = None,
        *,
        sample_rows: int = 5,
        sample_columns: int = 10,
    ) -> None:
        super().__init__()
        options = WrapOptions(name, version, environment, sample_rows, sample_columns)
        self._aither = ModelLogger(options, FRAMEWORK)
        self._start_ns = 0
        self._reset()

    def _reset(self) -> None:
        self._structure: object = None
        self._chunks: list[list[npt.NDArray[np.generic]]] = []
        self._kept = 0
        self._total = 0
        self._batches = 0
        self._recorded = False

    # ------------------------------------------------------------------ keras hooks

    def on_predict_begin(self, logs: dict[str, object] | None = None) -> None:
        self._reset()
        self._start_ns = time.time_ns()

    def on_predict_batch_end(self, batch: int, logs: dict[str, object] | None = None) -> None:
        outputs = _batch_outputs(logs)
        if outputs is None:
            return
        try:
            leaves = [_rows_of(leaf) for leaf in keras.tree.flatten(outputs)]
            if not leaves:
                return
            rows = int(leaves[0].shape[0])
            self._batches += 1
            self._total += rows
            room = max_prediction_rows() - self._kept
            if room <= 0:
                return  # past the cap: only count
            if self._structure is None:
                self._structure = outputs
            # slice first (on the backend's device), then copy only the slice to numpy
            self._chunks.append([np.array(keras.ops.convert_to_numpy(leaf[:room]), copy=True) for leaf in leaves])
            self._kept += min(rows, room)
        except Exception:
            self._batches = -1  # mark: the prediction could not be assembled

    def on_predict_end(self, logs: dict[str, object] | None = None) -> None:
        self._record()

    # ------------------------------------------------------------------ recording

    def _prediction(self) -> Captured:
        if self._batches < 0 or self._structure is None:
            marker = {"_meta": {"error": "the outputs could not be assembled"}} if self._batches < 0 else None
            return Captured(render_as_is, marker, self._total, 64)
        leaves = [np.concatenate(parts) if len(parts) > 1 else parts[0] for parts in zip(*self._chunks, strict=True)]
        head = keras.tree.pack_sequence_as(self._structure, leaves)
        nbytes = sum(leaf.nbytes for leaf in leaves) + 64
        if isinstance(head, np.ndarray):  # one output
            return bounded_prediction(head, self._total, nbytes)
        return Captured(render_structured, (head, self._kept, self._total), self._total, nbytes)

    def _record(self) -> None:
        if self._recorded:
            return
        self._recorded = True
        features = unseen_features("unavailable", self._total, _NOTE, self._batches)
        self._aither.record(METHOD, None, self, self._start_ns, capture_output=_assembled, features=features)


def _assembled(callback: Callback, limit: int) -> Captured:
    """The prediction the callback assembled from its batches (already bounded by the row cap)."""
    return callback._prediction()


def _batch_outputs(logs: dict[str, object] | None) -> object:
    """The batch's outputs. Keras 3 flattens a dict of outputs into ``logs`` itself (its ``pythonify_logs``)."""
    if not logs:
        return None
    if "outputs" in logs:
        return logs["outputs"]
    return dict(logs)


def _rows_of(leaf: _Leaf) -> _Leaf | npt.NDArray[np.generic]:
    """A batch output with a row axis: Keras turns a one-element batch output into a Python float."""
    if isinstance(leaf, (bool, int, float, complex)) or getattr(leaf, "ndim", 1) == 0:
        return np.asarray([leaf])
    return leaf
