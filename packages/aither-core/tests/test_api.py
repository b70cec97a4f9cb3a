"""The public API as the seed README and SPEC describe it, with the generic wrapper."""

from __future__ import annotations

import asyncio
import logging
import threading

import numpy as np
import pytest

import aither
from aither.testing import SpanCapture


class Scorer:
    """A model no plugin claims: the generic wrapper handles it."""

    classes_ = ("no", "yes")

    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(np.asarray(X).sum(axis=1) > 1).astype(int)

    def predict_proba(self, X: np.ndarray) -> np.ndarray:
        p = np.clip(np.asarray(X).mean(axis=1), 0, 1)
        return np.stack([1 - p, p], axis=1)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return self.predict(X)


class Exploding:
    def predict(self, X: object) -> object:
        raise ValueError("bad input shape (3, 7)")


def test_wrap_logs_predict_proba_and_call_and_passes_attributes_through(aither_capture: SpanCapture) -> None:
    model = Scorer()
    tracked = aither.wrap(model, name="scorer", version="1.2.3", environment="production")
    X = np.array([[0.2, 0.3], [0.9, 0.8]])
    np.testing.assert_array_equal(tracked.predict(X), model.predict(X))
    tracked.predict_proba(X)
    tracked(X)
    assert tracked.model is model
    assert tracked.classes_ == ("no", "yes")
    spans = aither_capture.predictions()
    assert [s.name for s in spans] == ["predict", "predict_proba", "__call__"]
    first = spans[0]
    assert first.attributes["ml.model.name"] == "scorer"
    assert first.attributes["ml.model.version"] == "1.2.3"
    assert first.attributes["ml.environment"] == "production"
    assert first.attributes["ml.framework"] == "generic"
    assert first.attributes["ml.batch_size"] == 2
    assert first.features["sample"] == [{"0": 0.2, "1": 0.3}, {"0": 0.9, "1": 0.8}]
    assert first.prediction == [0, 1]
    assert tracked.trace_ids == [s.trace_id for s in spans]


@pytest.mark.parametrize("name", ["", "   ", None, 3])
def test_wrap_requires_a_non_empty_name(name: object) -> None:
    with pytest.raises(ValueError, match="name"):
        aither.wrap(Scorer(), name=name)  # type: ignore[arg-type]


def test_wrap_rejects_unknown_options_at_once() -> None:
    with pytest.raises(TypeError):
        aither.wrap(Scorer(), name="m", sample_rowz=3)  # type: ignore[call-arg]


def test_init_rejects_unknown_options_and_bad_values_at_once() -> None:
    with pytest.raises(TypeError, match="flush_intervall"):
        aither.init(flush_intervall=1.0)
    with pytest.raises(aither.ConfigurationError):
        aither.init(batch_size=0)
    with pytest.raises(ValueError):
        aither.init(base_url="ftp://example.com")


def test_the_models_exception_passes_through_unchanged_and_is_an_error_span(
    aither_capture: SpanCapture,
) -> None:
    tracked = aither.wrap(Exploding(), name="boom")
    with pytest.raises(ValueError, match=r"bad input shape \(3, 7\)") as raised:
        tracked.predict([[1, 2, 3]])
    assert raised.traceback[-1].name == "predict"  # the model's own frame is where it was raised
    (span,) = aither_capture.predictions()
    assert span.is_error
    assert span.status_message == "ValueError: bad input shape (3, 7)"
    name, event = span.events[0]
    assert name == "exception"
    assert event["exception.type"] == "ValueError"
    assert "Traceback" in event["exception.stacktrace"]
    assert "ml.prediction" not in span.attributes


def test_an_error_whose_message_has_a_lone_surrogate_is_still_an_error_span(aither_capture: SpanCapture) -> None:
    text = "caf\u00e9 \ud83d"  # a cut emoji, as json.loads hands it over

    class Rejecting:
        def predict(self, X: object) -> object:
            raise ValueError(f"unknown token {text}")

    tracked = aither.wrap(Rejecting(), name="tokens")
    with pytest.raises(ValueError):
        tracked.predict([text])
    (span,) = aither_capture.predictions()
    assert span.is_error
    assert span.status_message.startswith("ValueError: unknown token caf\u00e9 ")
    _, event = span.events[0]
    assert event["exception.message"].startswith("unknown token caf\u00e9 ")


def test_log_prediction_and_log_label_share_the_trace_id(aither_capture: SpanCapture) -> None:
    trace_id = aither.log_prediction(
        model_name="my_pipeline",
        features={"amount": 150.0, "country": "US"},
        prediction=0.87,
        version="1.2.3",
        environment="production",
    )
    aither.log_label(trace_id=trace_id, label=1)
    prediction, label = aither_capture.spans
    assert prediction.name == "prediction" and label.name == "label"
    assert prediction.trace_id == label.trace_id == trace_id
    assert prediction.features["sample"] == {"amount": 150.0, "country": "US"}
    assert prediction.prediction == 0.87
    assert label.label == 1
    assert label.span_id != prediction.span_id
    assert "ml.label.row" not in label.attributes


def test_log_prediction_accepts_the_callers_trace_id(aither_capture: SpanCapture) -> None:
    given = "0af7651916cd43dd8448eb211c80319c"
    assert aither.log_prediction("m", [1, 2], 1, trace_id=given.upper()) == given
    assert aither_capture.spans[0].trace_id == given


def test_labels_per_row_and_aligned_sequences(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(Scorer(), name="scorer")
    tracked.predict(np.ones((3, 2)))
    trace_id = tracked.last_trace_id
    assert trace_id is not None
    aither.log_label(trace_id, np.array([1, 0, 1]))
    aither.log_label(trace_id, "late", row=2)
    sequence, single = aither_capture.labels()
    assert sequence.label == [1, 0, 1]
    assert single.label == "late"
    assert single.attributes["ml.label.row"] == 2


@pytest.mark.parametrize(
    "bad",
    ["", "xyz", "0" * 32, "0af7651916cd43dd8448eb211c80319", "g" * 32, None, 123],
    ids=["empty", "short", "all-zero", "31-chars", "not-hex", "none", "int"],
)
def test_a_malformed_trace_id_raises_value_error(bad: object) -> None:
    with pytest.raises(ValueError, match="trace_id"):
        aither.log_label(bad, 1)  # type: ignore[arg-type]


def test_a_bad_row_raises_value_error() -> None:
    trace_id = aither.log_prediction("m", 1, 1)
    with pytest.raises(ValueError, match="row"):
        aither.log_label(trace_id, 1, row=-1)
    with pytest.raises(ValueError, match="row"):
        aither.log_label(trace_id, [1, 2], row=0)


def test_track_decorates_sync_functions(aither_capture: SpanCapture) -> None:
    @aither.track("my_function", version="2")
    def predict(features: list[float]) -> float:
        return sum(features)

    assert predict([1.0, 2.0]) == 3.0
    (span,) = aither_capture.predictions()
    assert span.name == "predict"
    assert span.model_name == "my_function"
    assert span.attributes["ml.framework"] == "function"
    assert span.prediction == 3.0
    assert aither.last_trace_id() == span.trace_id


def test_track_decorates_async_functions_and_records_their_errors(aither_capture: SpanCapture) -> None:
    @aither.track("async_model")
    async def predict(x: int) -> int:
        await asyncio.sleep(0)
        if x < 0:
            raise KeyError(x)
        return x * 2

    async def main() -> tuple[int, str | None]:
        value = await predict(21)
        return value, aither.last_trace_id()

    value, trace_id = asyncio.run(main())
    assert value == 42
    with pytest.raises(KeyError):
        asyncio.run(predict(-1))
    ok, failed = aither_capture.predictions()
    assert ok.trace_id == trace_id and ok.prediction == 42
    assert failed.is_error


def test_last_trace_id_is_per_thread_and_per_asyncio_task(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(Scorer(), name="scorer")
    seen: dict[str, tuple[str | None, str | None]] = {}
    barrier = threading.Barrier(16)

    def worker(index: int) -> None:
        barrier.wait()
        tracked.predict(np.full((1, 2), index))
        seen[f"t{index}"] = (tracked.last_trace_id, aither.last_trace_id())

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    async def request(index: int) -> None:
        await asyncio.sleep(0.001 * (index % 3))
        tracked.predict(np.full((1, 2), 100 + index))
        await asyncio.sleep(0.001 * (3 - index % 3))  # other tasks predict in between
        seen[f"a{index}"] = (tracked.last_trace_id, aither.last_trace_id())

    async def serve() -> None:
        await asyncio.gather(*(request(i) for i in range(16)))

    asyncio.run(serve())
    spans = aither_capture.predictions()
    by_value = {int(s.features["sample"][0]["0"]): s.trace_id for s in spans}
    for i in range(16):
        assert seen[f"t{i}"] == (by_value[i], by_value[i])
        assert seen[f"a{i}"] == (by_value[100 + i], by_value[100 + i])
    assert len(tracked.trace_ids) == 32


def test_trace_ids_are_bounded() -> None:
    aither.init(disabled=True, max_trace_ids=5)
    tracked = aither.wrap(Scorer(), name="scorer")
    for _ in range(12):
        tracked.predict(np.ones((1, 2)))
    assert len(tracked.trace_ids) == 5
    assert tracked.trace_ids[-1] == tracked.last_trace_id


def test_disabled_everything_is_a_no_op_that_still_returns_trace_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITHER_DISABLED", "1")
    aither.init()
    trace_id = aither.log_prediction("m", {"a": 1}, 1)
    aither.log_label(trace_id, 1)
    assert len(trace_id) == 32
    assert aither.flush(timeout=1)
    assert aither.stats()["exported"] == 0


def test_using_the_api_before_init_works_and_warns_once_without_a_key(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aither import _client

    monkeypatch.delenv("AITHER_API_KEY", raising=False)
    monkeypatch.setenv("AITHER_BASE_URL", "http://127.0.0.1:9")
    monkeypatch.setattr(_client, "_client", None)
    monkeypatch.setattr(_client, "_warned_no_key", False)
    with caplog.at_level(logging.WARNING, logger="aither"):
        aither.log_prediction("m", 1, 1)
        aither.log_prediction("m", 2, 2)
    warnings = [r for r in caplog.records if "no API key" in r.getMessage()]
    assert len(warnings) == 1
    assert _client.get_client().settings.base_url == "http://127.0.0.1:9"


def test_init_twice_flushes_the_old_client_into_its_backend() -> None:
    from aither.testing import OTLPReceiver

    with OTLPReceiver() as first, OTLPReceiver() as second:
        aither.init(api_key="aith_a", base_url=first.url, flush_interval=60)
        aither.log_prediction("m", 1, 1)
        aither.init(api_key="aith_b", base_url=second.url, flush_interval=60)
        assert len(first.spans) == 1  # delivered when the client was replaced
        aither.log_prediction("m", 2, 2)
        assert aither.flush(5)
        assert len(second.spans) == 1
        assert second.requests[0].headers["authorization"] == "Bearer aith_b"


def test_the_prediction_links_to_the_callers_active_opentelemetry_span(aither_capture: SpanCapture) -> None:
    from opentelemetry.sdk.trace import TracerProvider

    tracer = TracerProvider().get_tracer("test")
    tracked = aither.wrap(Scorer(), name="scorer")
    with tracer.start_as_current_span("POST /predict") as request_span:
        tracked.predict(np.ones((1, 2)))
    (span,) = aither_capture.predictions()
    context = request_span.get_span_context()
    assert span.links == [(f"{context.trace_id:032x}", f"{context.span_id:016x}")]
    assert span.trace_id != f"{context.trace_id:032x}"  # the prediction keeps its own trace id


def test_a_function_can_be_wrapped_and_called(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(lambda text: text.upper(), name="shout")
    assert tracked("hi") == "HI"
    (span,) = aither_capture.predictions()
    assert span.name == "__call__"
    assert span.features == "hi"
    assert span.prediction == "HI"


def test_wrapping_a_tracked_model_again_logs_once(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(aither.wrap(Scorer(), name="inner"), name="outer")
    tracked.predict(np.ones((1, 2)))
    assert [s.model_name for s in aither_capture.predictions()] == ["outer"]


def test_features_fn_output_is_the_features_and_its_errors_do_not_break_predict(
    aither_capture: SpanCapture,
) -> None:
    tracked = aither.wrap(Scorer(), name="m", features_fn=lambda X: {"shape": X.shape, "mean": X.mean()})
    tracked.predict(np.ones((4, 2)))

    def broken(X: object) -> object:
        raise RuntimeError("oops")

    aither.wrap(Scorer(), name="m2", features_fn=broken).predict(np.ones((4, 2)))
    good, bad = aither_capture.predictions()
    assert good.features == {"shape": [4, 2], "mean": 1.0}
    assert bad.features == {"_meta": {"error": "features_fn raised RuntimeError"}}
    assert bad.attributes["ml.batch_size"] == 4
