"""Wrapping tinygrad models and functions: what arrives at a real OTLP receiver."""

from __future__ import annotations

import importlib.metadata
import logging
import re
import warnings
from typing import Any

import numpy as np
import pytest
from tg_models import Doubler, RealizingNet, TinyNet, rows, softmax_scores
from tinygrad import Tensor, TinyJit

import aither
import aither_tinygrad
from aither.testing import OTLPReceiver
from aither_tinygrad import TrackedTinygradModel


def _spans(receiver: OTLPReceiver, count: int) -> list[Any]:
    assert aither.flush(5.0)
    spans = receiver.wait_for_spans(count)
    assert len(spans) == count
    return spans


# ------------------------------------------------------------------------------------------------ calls


def test_call_and_predict_each_log_one_span(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(TinyNet(), name="tiny")
    tracked(Tensor(rows(4)))
    tracked.predict(Tensor(rows(6)))
    first, second = _spans(aither_receiver, 2)
    assert (first.name, second.name) == ("__call__", "predict")
    assert first.attributes["ml.framework"] == "tinygrad"
    assert (first.attributes["ml.batch_size"], second.attributes["ml.batch_size"]) == (4, 6)
    assert tracked.last_trace_id == second.trace_id


def _table(sample: list[dict[str, float]]) -> list[list[float]]:
    """A sampled table's rows as lists, in column order ("0", "1", ...)."""
    return [[row[str(j)] for j in range(len(row))] for row in sample]


def _values(prediction: Any) -> Any:
    """A logged output's values: rows of class scores come as ``{"values", "_meta": {"output"}}``."""
    if isinstance(prediction, dict) and "output" in prediction.get("_meta", {}):
        return prediction["values"]
    return prediction


def test_features_are_the_first_rows_with_shape_and_dtype(aither_receiver: OTLPReceiver) -> None:
    data = rows(100)
    aither.wrap(TinyNet(), name="tiny")(Tensor(data))
    (span,) = _spans(aither_receiver, 1)
    names = [str(j) for j in range(8)]
    assert span.features["_meta"] == {
        "type": "tinygrad.Tensor", "shape": [100, 8], "dtype": "float32", "device": "CPU",
        "rows": [0, 1, 2, 3, 4], "columns": names, "dtypes": dict.fromkeys(names, "float32"), "truncated": True,
    }  # fmt: skip
    # A 2-D Tensor is a table: its first rows (read from the buffer), one column per feature.
    np.testing.assert_allclose([[row[n] for n in names] for row in span.features["sample"]], data[:5], rtol=1e-6)


def test_rows_of_image_inputs_are_described_per_channel(aither_receiver: OTLPReceiver) -> None:
    images = np.random.default_rng(1).random((10, 2, 2, 2), dtype=np.float32)
    tracked = aither.wrap(TinyNet(), name="tiny", sample_rows=3, sample_columns=5)
    tracked(Tensor(images))
    (span,) = _spans(aither_receiver, 1)
    sample = span.features["sample"]
    assert len(sample) == 3 and span.features["_meta"]["rows"] == [0, 1, 2]
    np.testing.assert_allclose([row["pixel_mean[1]"] for row in sample], images[:3, 1].mean(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose([row["pixel_max[0]"] for row in sample], images[:3, 0].max(axis=(1, 2)), rtol=1e-6)
    assert span.features["_meta"]["shape"] == [10, 2, 2, 2]


def test_a_lazy_input_is_realised_only_for_the_sampled_rows(aither_receiver: OTLPReceiver) -> None:
    data = rows(50)
    lazy = Tensor(data) * 3 + 1  # a computation, not a buffer: sampling must run a kernel on x[:rows] only
    aither.wrap(TinyNet(), name="tiny", sample_rows=2)(lazy)
    assert not lazy.uop.is_realized  # the whole input was never realised
    (span,) = _spans(aither_receiver, 1)
    np.testing.assert_allclose(_table(span.features["sample"]), data[:2] * 3 + 1, rtol=1e-6)


def test_the_output_is_the_models_own_tensor_and_stays_lazy(aither_receiver: OTLPReceiver) -> None:
    model = TinyNet()
    tracked = aither.wrap(model, name="tiny")
    out = tracked(Tensor(rows(4)))
    assert out is model.last and out is not None
    assert not out.uop.is_realized
    (span,) = _spans(aither_receiver, 1)
    assert span.prediction == {
        "_meta": {"type": "tinygrad.Tensor", "shape": [4, 3], "dtype": "float32", "device": "CPU", "realized": False}
    }
    np.testing.assert_allclose(out.numpy(), TinyNet()(Tensor(rows(4))).numpy(), rtol=1e-5)


def test_a_realised_output_is_logged_with_its_values(aither_receiver: OTLPReceiver) -> None:
    out = aither.wrap(RealizingNet(), name="tiny")(Tensor(rows(4)))
    (span,) = _spans(aither_receiver, 1)
    np.testing.assert_allclose(_values(span.prediction), out.numpy(), rtol=1e-6)


def test_tinyjit_outputs_are_logged_with_their_values(aither_receiver: OTLPReceiver) -> None:
    model = TinyNet()
    jitted = TinyJit(lambda x: model(x).realize())
    tracked = aither_tinygrad.wrap(jitted, name="jit")
    outputs = [tracked(Tensor(rows(4, seed=i)).realize()).numpy() for i in range(3)]  # capture, then replay
    spans = _spans(aither_receiver, 3)
    for span, out in zip(spans, outputs, strict=True):
        np.testing.assert_allclose(_values(span.prediction), out, rtol=1e-6)


def test_realize_output_logs_values_and_returns_the_same_tensor(aither_receiver: OTLPReceiver) -> None:
    model = TinyNet()
    tracked = aither_tinygrad.wrap(model, name="tiny", realize_output=True)
    out = tracked(Tensor(rows(4)))
    assert out is model.last and out is not None
    assert out.uop.is_realized  # realised once, in place: the caller's .numpy() reuses the buffer
    (span,) = _spans(aither_receiver, 1)
    np.testing.assert_allclose(_values(span.prediction), out.numpy(), rtol=1e-6)


def test_tuple_outputs_are_logged_item_by_item(aither_receiver: OTLPReceiver) -> None:
    def two_heads(x: Tensor) -> tuple[Tensor, Tensor]:
        return (x * 2).realize(), x.sum(axis=1)

    data = rows(3)
    aither_tinygrad.wrap(two_heads, name="heads")(Tensor(data))
    (span,) = _spans(aither_receiver, 1)
    np.testing.assert_allclose(span.prediction[0], data * 2, rtol=1e-6)
    assert span.prediction[1]["_meta"]["realized"] is False


def test_a_failing_call_is_an_error_span_and_raises_as_before(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(TinyNet(), name="tiny")
    with pytest.raises(RuntimeError, match="cannot dot"):
        tracked(Tensor.ones(2, 99))
    (span,) = _spans(aither_receiver, 1)
    assert span.is_error
    assert span.features["_meta"]["shape"] == [2, 99]


def test_export_on_the_worker_never_disturbs_tinygrad_on_the_caller_thread(aither_receiver: OTLPReceiver) -> None:
    # Realising tinygrad Tensors on two threads at once corrupts tinygrad's state; all reads happen here.
    model = RealizingNet()
    tracked = aither.wrap(model, name="tiny")
    expected = []
    for i in range(60):
        out = tracked(Tensor(rows(4, seed=i)) + 0)  # lazy inputs: sampled by a kernel on this thread
        expected.append(out.numpy())
    spans = _spans(aither_receiver, 60)
    for span, out in zip(spans, expected, strict=True):
        np.testing.assert_allclose(_values(span.prediction), out, rtol=1e-6)


# ------------------------------------------------------------------------------------------------ what is claimed


def test_models_holding_tinygrad_parameters_are_claimed_by_aither_wrap() -> None:
    model = TinyNet()
    tracked = aither.wrap(model, name="tiny")
    assert isinstance(tracked, TrackedTinygradModel)
    assert tracked.model is model
    assert tracked.l1.weight is model.l1.weight  # attributes pass through


def test_functions_using_tinygrad_are_claimed_by_aither_wrap() -> None:
    assert isinstance(aither.wrap(softmax_scores, name="f"), TrackedTinygradModel)
    model = TinyNet()
    assert isinstance(aither.wrap(lambda x: model(x).softmax(), name="closure"), TrackedTinygradModel)


def test_objects_without_tinygrad_are_left_to_other_wrappers() -> None:
    assert not aither_tinygrad.is_tinygrad_model(lambda x: x + 1)
    assert not aither_tinygrad.is_tinygrad_model(np.ones(3))
    assert not aither_tinygrad.is_tinygrad_model(Doubler())  # no parameters: wrap it explicitly
    assert not aither_tinygrad.is_tinygrad_model(Tensor.ones(2))  # a Tensor is data, not a model


def test_a_parameter_free_model_is_wrapped_explicitly(aither_receiver: OTLPReceiver) -> None:
    tracked = aither_tinygrad.wrap(Doubler(), name="doubler")
    data = rows(2)
    out = tracked(Tensor(data))
    np.testing.assert_allclose(out.numpy(), data * 2)
    (span,) = _spans(aither_receiver, 1)
    assert span.attributes["ml.framework"] == "tinygrad"


def test_unsupported_tinygrad_version_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aither import _frameworks  # its once-per-version memory, reset for this test

    monkeypatch.setattr(_frameworks, "_checked", set())
    version = importlib.metadata.version
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "0.9.2" if name == "tinygrad" else version(name))
    pattern = r"aither-tinygrad supports tinygrad>=0\.10,<0\.15, but 0\.9\.2 is installed"
    with caplog.at_level(logging.WARNING, logger="aither"), pytest.warns(RuntimeWarning, match=pattern):
        aither.wrap(TinyNet(), name="old")
    assert any(re.search(pattern, record.getMessage()) for record in caplog.records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aither.wrap(TinyNet(), name="old")
