"""What the SDK sends matches docs/wire-contract.md, the single written source of the contract."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import aither
from aither._export._resource import resource_attributes
from aither._export._span_encoder import SpanEncoder
from aither.testing import CapturedSpan, OTLPReceiver

CONTRACT = Path(__file__).resolve().parents[3] / "docs" / "wire-contract.md"


def _documented_names(section: str) -> set[str]:
    text = CONTRACT.read_text()
    start = text.index(section)
    end = text.find("\n## ", start + 1)
    return set(re.findall(r"^\| `([a-z_.]+)` \|", text[start:end], flags=re.MULTILINE))


class Model:
    def predict(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != 3:
            raise ValueError("expected 3 features")
        return np.asarray(X.sum(axis=1))


@pytest.fixture
def every_kind_of_span(monkeypatch: pytest.MonkeyPatch) -> list[CapturedSpan]:
    monkeypatch.setenv("AITHER_HASH_KEY", "contract-key")  # for ml.entity
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05, max_attribute_bytes=600)
        tracked = aither.wrap(Model(), name="contract", version="1", environment="test")
        tracked.predict(np.ones((2, 3)))
        with pytest.raises(ValueError):
            tracked.predict(np.ones((2, 4)))
        trace_id = tracked.trace_ids[0]
        aither.log_label(trace_id, [1.0, 2.0])
        aither.log_label(trace_id, 5.0, row=1)
        aither.log_prediction("manual", {"text": "x" * 1000}, 1, entity="customer-1")
        assert aither.flush(10)
        # Overload: the exporter keeps 1 prediction in 2, and the kept one says so in ml.sample_rate.
        aither._client.get_client().exporter.keep_every = 2
        aither.log_prediction("sampled", {"x": 1}, 1)
        aither.log_prediction("sampled", {"x": 2}, 2)
        aither.flush(10)
        assert aither.stats()["dropped"] == {"sampled": 1}
        return receiver.spans


def test_every_attribute_sent_is_documented(every_kind_of_span: list[CapturedSpan]) -> None:
    documented = _documented_names("### Attributes")
    sent = {key for span in every_kind_of_span for key in span.attributes}
    assert sent <= documented
    # and the documented ones are all exercised
    assert documented <= sent


def test_every_resource_key_is_documented(every_kind_of_span: list[CapturedSpan]) -> None:
    documented = _documented_names("## Resource and scope")
    for span in every_kind_of_span:
        assert set(span.resource) <= documented
        assert span.scope == ("aither", aither.__version__)


def test_span_shapes_follow_the_contract(every_kind_of_span: list[CapturedSpan]) -> None:
    ok, failed, labels, row_label, manual, sampled = every_kind_of_span
    assert sampled.attributes["ml.sample_rate"] == 0.5 and sampled.features["sample"] in ({"x": 1}, {"x": 2})
    assert "ml.sample_rate" not in ok.attributes  # absent means 1: every call sent
    assert [ok.name, failed.name, labels.name, manual.name] == ["predict", "predict", "label", "prediction"]
    assert all(span.kind == 1 for span in every_kind_of_span)
    assert len({span.resource["service.instance.id"] for span in every_kind_of_span}) == 1
    assert len(ok.trace_id) == 32 and len(ok.span_id) == 16
    assert ok.features["_meta"]["shape"] == [2, 3]
    assert ok.prediction == [3.0, 3.0]
    assert failed.is_error and failed.events[0][0] == "exception"
    assert labels.trace_id == ok.trace_id and labels.label == [1.0, 2.0]
    assert labels.start_ns == labels.end_ns
    assert row_label.attributes["ml.label.row"] == 1
    assert "ml.model.name" not in labels.attributes  # labels join by trace id only
    assert manual.attributes["aither.truncated"] == ["ml.features"]


def test_resource_honours_otel_variables() -> None:
    env = {
        "OTEL_SERVICE_NAME": "fraud-api",
        "OTEL_RESOURCE_ATTRIBUTES": "deployment.environment=prod,team=ml%20ops",
    }
    attributes = resource_attributes(None, env)
    assert attributes["service.name"] == "fraud-api"
    assert attributes["deployment.environment"] == "prod"
    assert attributes["team"] == "ml ops"
    assert attributes["telemetry.sdk.name"] == "aither"
    assert resource_attributes("from-init", {})["service.name"] == "from-init"
    assert resource_attributes(None, {})["service.name"] == "aither"


def test_the_encoder_is_what_the_contract_names() -> None:
    request = ExportTraceServiceRequest.FromString(SpanEncoder({"service.name": "x"}, 1000).request([]))
    assert request.resource_spans[0].scope_spans[0].scope.name == "aither"
