"""End to end: a hooked module's calls arrive at a real OTLP receiver as the wire contract says."""

from __future__ import annotations

import pytest
import torch
from torch_helpers import make_mlp

import aither
from aither.testing import OTLPReceiver


def test_module_calls_arrive_at_the_receiver_as_forward_spans(aither_receiver: OTLPReceiver) -> None:
    model = make_mlp()
    aither.wrap(model, name="scorer", version="7", environment="prod", sample_rows=2)
    x = torch.randn(6, 4)
    with torch.inference_mode():
        out = model(x)
        with pytest.raises(RuntimeError):
            model(torch.randn(2, 99))
    assert aither.flush(timeout=10)
    spans = aither_receiver.wait_for_spans(2)
    assert len(spans) == 2
    ok, failed = sorted(spans, key=lambda s: s.is_error)
    assert ok.name == "forward" and ok.kind == 1
    assert ok.attributes["ml.model.name"] == "scorer"
    assert ok.attributes["ml.model.version"] == "7"
    assert ok.attributes["ml.environment"] == "prod"
    assert ok.attributes["ml.framework"] == "torch"
    assert ok.attributes["ml.method"] == "forward"
    assert ok.attributes["ml.batch_size"] == 6
    rows = ok.features["_meta"]["rows"]
    assert ok.features["_meta"] == {
        "type": "torch.Tensor",
        "shape": [6, 4],
        "dtype": "float32",
        "device": "cpu",
        "rows": rows,
        "columns": ["0", "1", "2", "3"],
        "dtypes": dict.fromkeys(["0", "1", "2", "3"], "float32"),
        "truncated": True,
    }
    assert ok.features["sample"] == [dict(zip("0123", x[i].tolist(), strict=True)) for i in rows]
    assert ok.prediction == {"values": out.tolist(), "_meta": {"output": "logits", "total_rows": 6, "truncated": False}}
    assert ok.resource["telemetry.sdk.name"] == "aither"
    assert failed.is_error and failed.status_message.startswith("RuntimeError")
    assert "ml.prediction" not in failed.attributes
    (request,) = {r.headers.get("authorization") for r in aither_receiver.requests}
    assert request == "Bearer aith_test_key"
