"""In-memory capture: what the SDK would send, with no network, for users' own tests."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from .._client import Client, KeepEverything, replace_exporter, restore
from .._export._resource import resource_attributes
from .._records import SpanRecord
from .._stats import ExporterStats, stats_dict
from ._spans import CapturedSpan, decode_request

__all__ = ["SpanCapture", "capture"]


class SpanCapture(KeepEverything):
    """An exporter that keeps records in memory and encodes them with the real OTLP encoder on demand.

    ``spans`` goes through the same encoding as the network path (JSON attributes, truncation, protobuf), then
    decodes it back, so assertions see exactly what a backend would receive.
    """

    def __init__(self, max_attribute_bytes: int = 64 * 1024, service_name: str | None = None) -> None:
        self._records: list[SpanRecord] = []
        self._lock = threading.Lock()
        self._resource = resource_attributes(service_name)
        self._max_attribute_bytes = max_attribute_bytes

    # Exporter protocol
    def submit(self, record: SpanRecord) -> None:
        with self._lock:
            self._records.append(record)

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def close(self, timeout: float | None = 5.0, *, reason: str = "shutdown") -> bool:
        return True

    def stats(self) -> ExporterStats:
        with self._lock:
            count = len(self._records)
        return stats_dict(queued=count, exported=count)

    # Assertions
    @property
    def records(self) -> list[SpanRecord]:
        with self._lock:
            return list(self._records)

    @property
    def spans(self) -> list[CapturedSpan]:
        """Every span captured so far, in submission order."""
        from .._export._span_encoder import SpanEncoder

        records = self.records
        if not records:
            return []
        encoder = SpanEncoder(self._resource, self._max_attribute_bytes)
        return decode_request(encoder.request([encoder.encode(record) for record in records]))

    def predictions(self, model: str | None = None) -> list[CapturedSpan]:
        return [s for s in self.spans if s.name != "label" and (model is None or s.model_name == model)]

    def labels(self) -> list[CapturedSpan]:
        return [s for s in self.spans if s.name == "label"]

    def clear(self) -> None:
        with self._lock:
            self._records.clear()


@contextmanager
def capture() -> Iterator[SpanCapture]:
    """Capture everything the SDK records inside the block instead of sending it::

    with aither.testing.capture() as captured:
        tracked.predict(X)
    assert captured.spans[0].attributes["ml.model.name"] == "fraud"
    """
    from .._client import get_client

    settings = get_client().settings
    sink = SpanCapture(settings.max_attribute_bytes, settings.service_name)
    previous: Client = replace_exporter(sink)
    try:
        yield sink
    finally:
        restore(previous)
