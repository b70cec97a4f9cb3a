"""The record handed from the calling thread to the export worker: the only type plugins and exporter share."""

from __future__ import annotations

from typing import NamedTuple

from ._capture import Captured

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
        "entity",
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
        "sample_rate",
        "span_id",
        "start_ns",
        "trace_id",
    )

    def __init__(
        self,
        trace_id: int,
        span_id: int,
        name: str,
        start_ns: int,
        end_ns: int,
        model: ModelIdentity | None,
        method: str | None,
        features: Captured | None,
        prediction: Captured | None,
        batch_size: int | None,
        error: BaseException | None = None,
        link: tuple[int, int] | None = None,
    ) -> None:
        # Positional on purpose: keyword passing of a dozen arguments costs measurably per prediction.
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
        #: ``1/k`` when this span was kept as 1 in ``k`` calls under overload (``ml.sample_rate``); None for 1.
        self.sample_rate: float | None = None
        #: ``ml.entity``: the hashed key of the entity the call was about (``aither.entity``); None for none.
        self.entity: str | None = None
        self.label: object = None
        self.has_label = False
        self.label_row: int | None = None
        # What the record keeps alive while queued, for max_queue_bytes: about 800 bytes of Python objects
        # (this record, its ids, two captures, their tuples; measured with tracemalloc) plus the captured data.
        self.nbytes = 800 + (features.nbytes if features else 0) + (prediction.nbytes if prediction else 0)

    @classmethod
    def for_label(cls, trace_id: int, span_id: int, time_ns: int, label: object, row: int | None) -> SpanRecord:
        """A label span: zero duration, no model attributes, joined to its prediction by trace id."""
        record = cls(trace_id, span_id, "label", time_ns, time_ns, None, None, None, None, None)
        record.label = label
        record.has_label = True
        record.label_row = row
        return record

    def __repr__(self) -> str:
        kind = "label" if self.has_label else "prediction"
        model = self.model.name if self.model else None
        return f"<SpanRecord {kind} {self.name!r} model={model!r} trace_id={self.trace_id:032x}>"
