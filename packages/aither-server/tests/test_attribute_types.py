"""What hand-instrumented OpenTelemetry senders set is taken for what it means, or refused with the reason.

``span.set_attribute("ml.prediction", 0.87)`` is a number, not "invalid JSON"; ``ml.batch_size = "1"`` is 1;
spans of other libraries (no ``ml.*`` attribute) are ignored, counted and said so.
"""

from __future__ import annotations

import logging

import pytest
from conftest import Server
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from otlp_builders import KEY, new_trace_id, parse_response, span_with

from aither_server.ingest.refusal_log import RefusalLog


def _prediction(server: Server, trace_id: bytes) -> dict[str, object]:
    return server.get(f"/api/v1/predictions/{trace_id.hex()}")  # type: ignore[no-any-return]


def test_native_numbers_bools_and_arrays_are_predictions_and_labels(server: Server) -> None:
    ids = [new_trace_id() for _ in range(4)]
    spans = [
        span_with({"ml.model.name": "typed", "ml.prediction": 0.87}, trace_id=ids[0]),
        span_with({"ml.model.name": "typed", "ml.prediction": 1}, trace_id=ids[1]),
        span_with({"ml.model.name": "typed", "ml.prediction": True}, trace_id=ids[2]),
        span_with({"ml.model.name": "typed", "ml.prediction": [0, 1, 1]}, trace_id=ids[3]),
        span_with({"ml.label": [0, 1, 0]}, trace_id=ids[3], name="label"),
        span_with({"ml.label": 1.0}, trace_id=ids[0], name="label"),
    ]
    response = server.ingest(spans)
    assert not parse_response(response.content).HasField("partial_success"), response.content
    assert [_prediction(server, t)["prediction"] for t in ids] == [0.87, 1, True, [0, 1, 1]]
    assert _prediction(server, ids[3])["labels"] == {"0": 0, "1": 1, "2": 0}
    assert _prediction(server, ids[0])["labels"] == {"0": 1.0}
    assert server.metrics("typed")["predictions"] == 6


def test_batch_size_as_a_numeric_string_is_that_number(server: Server) -> None:
    trace_id = new_trace_id()
    span = span_with({"ml.model.name": "m", "ml.batch_size": "1", "ml.prediction": "[0.1, 0.9]"}, trace_id=trace_id)
    server.ingest([span])
    found = _prediction(server, trace_id)
    assert (found["batch_size"], found["rows"]) == (1, 1)


@pytest.mark.parametrize(
    ("attributes", "reason"),
    [
        ({"ml.batch_size": "many"}, "ml.batch_size must be a non-negative integer, got string_value 'many'"),
        ({"ml.batch_size": 2.5}, "ml.batch_size must be a non-negative integer, got double_value 2.5"),
    ],
)
def test_values_that_cannot_be_used_are_rejected_with_the_exact_reason(
    server: Server, attributes: dict[str, object], reason: str
) -> None:
    response = server.ingest([span_with({"ml.model.name": "m", "ml.prediction": 1, **attributes})])
    partial = parse_response(response.content).partial_success
    assert partial.rejected_spans == 1
    assert partial.error_message.startswith(f"1 spans rejected: {reason}")
    assert "not valid JSON" not in partial.error_message
    assert server.get("/api/v1/org/usage")["rejected_spans"] == 1


def test_bytes_are_refused_as_bytes(server: Server) -> None:
    span = span_with({"ml.model.name": "m"})
    span.attributes.append(KeyValue(key="ml.prediction", value=AnyValue(bytes_value=b"\x00\x01")))
    partial = parse_response(server.ingest([span]).content).partial_success
    assert "ml.prediction is bytes" in partial.error_message


def test_spans_without_ml_attributes_are_ignored_counted_and_logged(
    server: Server, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="aither_server")
    other = span_with({"http.route": "/users", "http.status_code": 200}, name="GET /users")
    response = server.ingest([other, other, span_with({"ml.model.name": "m", "ml.prediction": 1})])
    partial = parse_response(response.content).partial_success
    assert partial.rejected_spans == 2
    assert partial.error_message == "2 spans ignored: no ml.* attribute (not a prediction or label span)"
    usage = server.get("/api/v1/org/usage")
    assert (usage["ignored_spans"], usage["rejected_spans"], usage["predictions"]) == (2, 0, 1)
    logged = [r.getMessage() for r in caplog.records if r.name == "aither_server"]
    assert any("2 spans not stored" in m and "no ml.* attribute" in m for m in logged), logged


def test_the_refusal_log_says_each_reason_at_most_once_per_interval_with_the_count_since() -> None:
    now = [0.0]
    logger = logging.getLogger("test_refusal_log")
    log = RefusalLog(logger, interval_s=60.0, clock=lambda: now[0])
    assert log.report(2, "a", "2 spans rejected: a")
    assert not log.report(3, "a", "3 spans rejected: a")
    assert log.report(1, "b", "1 spans rejected: b")  # another reason is not held back
    now[0] = 61.0
    with _Capture(logger) as records:
        assert log.report(4, "a", "4 spans rejected: a")
    assert records[0].getMessage().startswith("7 spans not stored")


class _Capture:
    """Collects the records of one logger inside a with block."""

    def __init__(self, logger: logging.Logger) -> None:
        self.logger = logger
        self.records: list[logging.LogRecord] = []
        self.handler = logging.Handler()
        self.handler.emit = self.records.append  # type: ignore[method-assign,assignment]

    def __enter__(self) -> list[logging.LogRecord]:
        self.logger.addHandler(self.handler)
        return self.records

    def __exit__(self, *_: object) -> None:
        self.logger.removeHandler(self.handler)


def test_the_opentelemetry_sdk_setting_native_attributes_is_stored_as_sent(server: Server) -> None:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(resource=Resource.create({"service.name": "hand-instrumented"}))
    exporter = OTLPSpanExporter(endpoint=f"{server.url}/v1/traces", headers={"Authorization": f"Bearer {KEY}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("my-app")
    try:
        with tracer.start_as_current_span("predict") as span:
            span.set_attribute("ml.model.name", "hand-made")
            span.set_attribute("ml.prediction", 0.87)
            span.set_attribute("ml.batch_size", 1)
            trace_id = span.get_span_context().trace_id.to_bytes(16, "big")
            with tracer.start_as_current_span("label") as label:
                label.set_attribute("ml.label", 1.0)
        with tracer.start_as_current_span("GET /health"):
            pass
    finally:
        provider.shutdown()
    found = _prediction(server, trace_id)
    assert found["prediction"] == 0.87
    assert found["labels"] == {"0": 1.0}
    m = server.metrics("hand-made")
    assert (m["task"], m["mae"]) == ("regression", pytest.approx(0.13))
    assert server.get("/api/v1/org/usage")["ignored_spans"] == 1
