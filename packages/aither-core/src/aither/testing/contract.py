"""The plugin contract: the promises every integration keeps, as a test class each plugin subclasses.

    from aither.testing.contract import PluginContract

    class TestSklearnContract(PluginContract):
        framework = "sklearn"
        passthrough_attribute = "classes_"

        def make_model(self): return LogisticRegression().fit(X, y)
        def make_input(self): return X[:4]
        def make_failing_input(self): return np.ones((2, 99))   # wrong width: the model raises

Every test uses the in-memory capture (real OTLP encoding, no network); delivery is tested in core.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import pytest

import aither

from .. import _client
from ._capture import SpanCapture

__all__ = ["PluginContract"]


class PluginContract:
    """Subclass and implement the ``make_*`` factories; the ``test_*`` methods come with it."""

    #: Expected ``ml.framework`` attribute.
    framework: str = ""
    #: Span name of :meth:`call` (``predict``, ``forward``, ``__call__``...).
    method: str = "predict"
    #: An attribute of the model that must be reachable through the tracked model (``classes_``...).
    passthrough_attribute: str | None = None
    #: Whether ``pickle`` round trips of the tracked model are supported by the framework.
    supports_pickle: bool = True
    #: Rows in :meth:`make_input`.
    batch_size: int = 4

    # ------------------------------------------------------------------ factories (override)

    def make_model(self) -> Any:
        raise NotImplementedError

    def make_input(self) -> Any:
        raise NotImplementedError

    def make_failing_input(self) -> Any:
        """An input the model raises on (wrong shape, wrong type)."""
        raise NotImplementedError

    def call(self, tracked: Any, inputs: Any) -> Any:
        """Make one logged call; override when the framework's call is not ``predict``."""
        return tracked.predict(inputs)

    def call_model(self, model: Any, inputs: Any) -> Any:
        """The same call on the bare model, for comparing outputs."""
        return self.call(model, inputs)

    def assert_same_output(self, tracked_output: Any, bare_output: Any) -> None:
        import numpy as np

        np.testing.assert_allclose(_as_numpy(tracked_output), _as_numpy(bare_output), rtol=1e-5, atol=1e-6)

    def wrap(self, model: Any, **options: Any) -> Any:
        return aither.wrap(model, name=options.pop("name", "contract_model"), **options)

    # ------------------------------------------------------------------ the contract

    def test_one_span_per_call(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model())
        for _ in range(3):
            self.call(tracked, self.make_input())
        spans = aither_capture.predictions()
        assert len(spans) == 3
        for span in spans:
            assert span.name == self.method
            assert span.attributes["ml.method"] == self.method
            assert span.attributes["ml.framework"] == self.framework
            assert span.attributes["ml.model.name"] == "contract_model"
            assert span.attributes["ml.batch_size"] == self.batch_size
            assert span.kind == 1  # SPAN_KIND_INTERNAL
            assert span.end_ns >= span.start_ns > 0

    def test_output_is_the_models_own(self, aither_capture: SpanCapture) -> None:
        model = self.make_model()
        inputs = self.make_input()
        bare = self.call_model(model, inputs)
        tracked = self.wrap(model)
        self.assert_same_output(self.call(tracked, inputs), bare)

    def test_features_and_prediction_are_recorded(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model())
        self.call(tracked, self.make_input())
        (span,) = aither_capture.predictions()
        features = span.features
        assert isinstance(features, dict)
        assert "sample" in features or "_meta" in features
        assert span.prediction is not None

    def test_version_and_environment_are_attributes(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model(), version="1.2.3", environment="staging")
        self.call(tracked, self.make_input())
        (span,) = aither_capture.predictions()
        assert span.attributes["ml.model.version"] == "1.2.3"
        assert span.attributes["ml.environment"] == "staging"

    def test_trace_ids_match_the_spans(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model())
        self.call(tracked, self.make_input())
        self.call(tracked, self.make_input())
        spans = aither_capture.predictions()
        assert tracked.trace_ids == [span.trace_id for span in spans]
        assert tracked.last_trace_id == spans[-1].trace_id
        assert aither.last_trace_id() == spans[-1].trace_id

    def test_last_trace_id_is_per_thread(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model())
        self.call(tracked, self.make_input())
        mine = tracked.last_trace_id
        seen: list[str | None] = []

        def other_thread() -> None:
            seen.append(tracked.last_trace_id)  # nothing predicted in this thread yet
            self.call(tracked, self.make_input())
            seen.append(tracked.last_trace_id)

        thread = threading.Thread(target=other_thread)
        thread.start()
        thread.join()
        assert seen[0] is None
        assert seen[1] not in (None, mine)
        assert tracked.last_trace_id == mine

    def test_model_errors_pass_through_and_are_error_spans(self, aither_capture: SpanCapture) -> None:
        model = self.make_model()
        failing = self.make_failing_input()
        with pytest.raises(Exception) as bare_error:
            self.call_model(model, failing)
        tracked = self.wrap(model)
        with pytest.raises(type(bare_error.value)) as tracked_error:
            self.call(tracked, failing)
        assert str(tracked_error.value) == str(bare_error.value)
        spans = aither_capture.predictions()
        assert spans, "a failing call must still be recorded"
        span = spans[-1]
        assert span.is_error
        assert span.status_message.startswith(type(bare_error.value).__name__)
        assert "ml.prediction" not in span.attributes
        (event,) = [e for e in span.events if e[0] == "exception"]
        assert event[1]["exception.message"] == str(bare_error.value)
        assert tracked.last_trace_id == span.trace_id

    def test_wrapping_twice_logs_once(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.wrap(self.make_model(), name="first"), name="contract_model")
        self.call(tracked, self.make_input())
        spans = aither_capture.predictions()
        assert [span.model_name for span in spans] == ["contract_model"]

    def test_passthrough_attribute(self, aither_capture: SpanCapture) -> None:
        if self.passthrough_attribute is None:
            return  # the plugin declared there is no model attribute to pass through
        model = self.make_model()
        tracked = self.wrap(model)
        expected = getattr(model, self.passthrough_attribute)
        actual = getattr(tracked, self.passthrough_attribute)
        assert actual is expected or _equal(actual, expected)

    def test_pickle_round_trip_keeps_logging(self, aither_capture: SpanCapture) -> None:
        if not self.supports_pickle:
            return  # the framework's models are not picklable; the plugin declares it
        tracked = self.wrap(self.make_model())
        restored = pickle.loads(pickle.dumps(tracked))
        self.call(restored, self.make_input())
        (span,) = aither_capture.predictions()
        assert span.model_name == "contract_model"
        assert restored.last_trace_id == span.trace_id

    def test_features_fn_replaces_the_sample(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model(), features_fn=lambda inputs: {"custom": True})
        self.call(tracked, self.make_input())
        (span,) = aither_capture.predictions()
        assert span.features == {"custom": True}

    def test_disabled_still_returns_trace_ids(self, monkeypatch: pytest.MonkeyPatch) -> None:
        previous = _client.get_client()
        monkeypatch.setenv("AITHER_DISABLED", "1")
        aither.init()
        try:
            tracked = self.wrap(self.make_model())
            self.call(tracked, self.make_input())
            assert tracked.last_trace_id is not None
            assert aither.stats()["exported"] == 0
        finally:
            _client.restore(previous)


def _as_numpy(value: Any) -> Any:
    import numpy as np

    if hasattr(value, "detach") and hasattr(value, "cpu"):  # torch, on any device
        return value.detach().cpu().numpy()
    for method in ("numpy", "to_numpy"):  # tensorflow, tinygrad, pandas, polars
        convert = getattr(value, method, None)
        if callable(convert):
            return convert()
    return np.asarray(value)


def _equal(a: Any, b: Any) -> bool:
    try:
        import numpy as np

        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return bool(a == b)
