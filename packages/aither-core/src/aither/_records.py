"""The record handed from the calling thread to the export worker: the only type plugins and exporter share."""

from __future__ import annotations

from typing import Any, NamedTuple

from ._sampling import Captured

__all__ = ["ModelIdentity", "SpanRecord"]


class ModelIdentity(NamedTuple):
    """Who made a prediction; shared by every record of one wrapped model."""

    name: str
    version: str | None
    environment: str | None
    framework: str


class SpanRecord:
    """One span to export: a prediction (``features``/``prediction`` set) or a label (``label`` set).

    A plain slotted class: it is built once per prediction on the caller's thread, so it must be cheap.
    Everything costly (JSON, protobuf) happens later from these fields, on the worker.
    """

    __slots__ = (
        "batch_size",
        "end_ns",
        "error",
        "features",
        "has_label",
        "label",
        "label_row",
        "link",
        "method",
        "model",
        "name",
        "nbytes",
        "prediction",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(
        self,
        *,
        trace_id: str,
        span_id: bytes,
        name: str,
        start_ns: int,
        end_ns: int,
        model: ModelIdentity | None = None,
        method: str | None = None,
        features: Captured | None = None,
        prediction: Captured | None = None,
        batch_size: int | None = None,
        error: BaseException | None = None,
        link: tuple[int, int] | None = None,
        label: Any = None,
        has_label: bool = False,
        label_row: int | None = None,
    ) -> None:
        self.trace_id = trace_id
        self.span_id = span_id
        self.name = name
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.model = model
        self.method = method
        self.features = features
        self.prediction = prediction
        self.batch_size = batch_size
        self.error = error
        self.link = link
        self.label = label
        self.has_label = has_label
        self.label_row = label_row
        self.nbytes = 256 + (features.nbytes if features else 0) + (prediction.nbytes if prediction else 0)

    def __repr__(self) -> str:
        kind = "label" if self.has_label else "prediction"
        model = self.model.name if self.model else None
        return f"<SpanRecord {kind} {self.name!r} model={model!r} trace_id={self.trace_id}>"
