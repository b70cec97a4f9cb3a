"""The plugin contract: the promises every integration keeps, as a test class each plugin subclasses.

    from aither.testing.contract import PluginContract

    class TestSklearnContract(PluginContract):
        framework = "sklearn"
        plugin_module = "aither_sklearn"
        framework_modules = ("sklearn",)
        framework_distribution = "scikit-learn"
        missing_framework_call = "aither_sklearn.TrackedEstimator"
        passthrough_attribute = "classes_"

        def make_model(self): return LogisticRegression().fit(X, y)
        def make_input(self): return X[:4]
        def make_failing_input(self): return np.ones((2, 99))   # wrong width: the model raises

Every test uses the in-memory capture (real OTLP encoding, no network); delivery is tested in core. A check
that does not apply to a plugin (it declares so by a class attribute) is not collected for it: the declaration
is what the plugin promises instead, and no test reports a pass or a skip it did not earn.
"""

from __future__ import annotations

import importlib.metadata
import pickle
import threading
from typing import Any

import pytest

import aither

from .. import _client, _frameworks
from .._capture import output_as_prediction, truncated_rows
from .._capture._columns import is_descriptor
from .._tracking import NETWORK_FRAMEWORKS
from .._types import is_detachable
from ._capture import SpanCapture, capture
from ._isolation import assert_imports_no_framework, missing_framework_error
from ._receiving import receiving

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
    #: The plugin's import name (``aither_sklearn``); its distribution is the same with dashes.
    plugin_module: str = ""
    #: Modules that importing the plugin must not import (the framework, and what it pulls in).
    framework_modules: tuple[str, ...] = ()
    #: The framework's import name and distribution, whose versions the plugin's ``instruments`` extra bounds.
    framework_module: str = ""
    framework_distribution: str = ""
    #: Code that needs the framework (``aither_torch.unwrap(object())``), run where it is missing; None: no such check.
    missing_framework_call: str | None = None
    #: Whether ``ml.prediction`` holds the model's own output (rows of values), so it can be compared with it.
    records_the_output: bool = True

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # What the subclass declares does not apply is removed from it (pytest collects only callables).
        not_applicable = {
            "test_passthrough_attribute": cls.passthrough_attribute is None,
            "test_pickle_round_trip_keeps_logging": not cls.supports_pickle,
            "test_predicted_values_are_the_models_own_output": not cls.records_the_output,
            "test_a_prediction_cut_at_max_prediction_rows_carries_the_truncation_marker": (
                not cls.records_the_output or cls.batch_size < 2
            ),
            "test_a_missing_framework_names_what_to_install": cls.missing_framework_call is None,
        }
        for name, removed in not_applicable.items():
            if removed:
                setattr(cls, name, None)

    # ------------------------------------------------------------------ factories (override)

    def make_model(self) -> object:
        raise NotImplementedError

    def make_input(self) -> object:
        raise NotImplementedError

    def make_failing_input(self) -> object:
        """An input the model raises on (wrong shape, wrong type)."""
        raise NotImplementedError

    def call(self, tracked: Any, inputs: object) -> object:  # ``tracked``: the plugin's model type, duck-typed
        """Make one logged call; override when the framework's call is not ``predict``."""
        return tracked.predict(inputs)

    def call_model(self, model: object, inputs: object) -> object:
        """The same call on the bare model, for comparing outputs."""
        return self.call(model, inputs)

    def assert_same_output(self, tracked_output: object, bare_output: object) -> None:
        import numpy as np

        actual, desired = np.asarray(_as_numpy(tracked_output)), np.asarray(_as_numpy(bare_output))
        np.testing.assert_allclose(actual, desired, rtol=1e-5, atol=1e-6)

    def as_logged(self, logged: object, bare_output: object) -> tuple[object, object]:
        """(logged values, bare output as logged): a network's output is read as the SDK reads it
        (``_capture/_outputs.py``: logits as class probabilities), with its reading in ``_meta.output``."""
        if self.framework not in NETWORK_FRAMEWORKS:
            if isinstance(logged, dict) and set(logged) == {"values", "_meta"}:
                return logged["values"], bare_output
            return logged, bare_output
        import numpy as np

        expected = output_as_prediction(np.asarray(_as_numpy(bare_output)).tolist(), None)
        if isinstance(expected, dict):
            assert isinstance(logged, dict) and logged["_meta"]["output"] == expected["_meta"]["output"], logged
            return logged["values"], expected["values"]
        return logged, bare_output

    def wrap(self, model: object, **options: Any) -> Any:  # options go to aither.wrap as given; the stand-in
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
        assert self.passthrough_attribute is not None
        model = self.make_model()
        tracked = self.wrap(model)
        expected = getattr(model, self.passthrough_attribute)
        actual = getattr(tracked, self.passthrough_attribute)
        assert actual is expected or _equal(actual, expected)

    def test_pickle_round_trip_keeps_logging(self, aither_capture: SpanCapture) -> None:
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

    def test_features_are_bounded_by_sample_rows_and_columns(self, aither_capture: SpanCapture) -> None:
        tracked = self.wrap(self.make_model(), sample_rows=2, sample_columns=3)
        self.call(tracked, self.make_input())
        (span,) = aither_capture.predictions()
        sample = span.features.get("sample") if isinstance(span.features, dict) else None
        assert isinstance(sample, list), f"the features must hold a sample of rows: {span.features!r}"
        assert 1 <= len(sample) <= 2
        for row in sample:
            if isinstance(row, dict) and all(map(is_descriptor, row)):
                continue  # descriptors of texts, images, sequences: a fixed set, every one in every row
            if isinstance(row, (dict, list)):
                assert len(row) <= 3, row

    def test_sample_rows_0_sends_no_input_row_on_the_wire(self) -> None:
        """Profile-only mode (docs/privacy.md): whatever the plugin samples, no row of the input is in a span."""
        with receiving(flush_interval=60) as receiver:
            tracked = self.wrap(self.make_model(), sample_rows=0)
            self.call(tracked, self.make_input())
            assert aither.flush(10)
            spans = [s for s in receiver.spans if "ml.model.name" in s.attributes]
        assert spans, "the call must still be recorded"
        assert all("ml.features" not in span.attributes for span in spans), spans

    def test_predicted_values_are_the_models_own_output(self, aither_capture: SpanCapture) -> None:
        model = self.make_model()
        inputs = self.make_input()
        bare = self.call_model(model, inputs)
        self.call(self.wrap(model), inputs)
        (span,) = aither_capture.predictions()
        self.assert_same_output(*self.as_logged(span.prediction, bare))

    def test_a_prediction_cut_at_max_prediction_rows_carries_the_truncation_marker(self) -> None:
        model = self.make_model()
        inputs = self.make_input()
        bare = self.call_model(model, inputs)
        aither.init(max_prediction_rows=1)
        with capture() as captured:
            self.call(self.wrap(model), inputs)
        (span,) = captured.predictions()
        prediction = span.prediction
        assert isinstance(prediction, dict) and set(prediction) == {"values", "_meta"}, prediction
        meta = prediction["_meta"]
        assert meta["truncated"] is True and meta["total_rows"] == self.batch_size, prediction
        if "output" not in meta:  # a network's output read as probabilities keeps its reading in _meta
            assert prediction == truncated_rows(prediction["values"], self.batch_size)
        assert len(prediction["values"]) == 1
        import numpy as np

        self.assert_same_output(*self.as_logged(prediction, np.asarray(_as_numpy(bare))[:1]))

    def test_importing_the_plugin_imports_no_framework(self) -> None:
        # Nor does wrapping a model of no framework (a function).
        then = "aither.wrap(lambda x: x, name='f')(1)"
        assert_imports_no_framework(self.plugin_module, list(self.framework_modules), then=then)

    def test_a_missing_framework_names_what_to_install(self) -> None:
        supported = self._supported()
        assert self.missing_framework_call is not None
        message = missing_framework_error(self.plugin_module, list(self.framework_modules), self.missing_framework_call)
        name = self.framework_distribution
        assert message == (
            f"{self._plugin()} needs {name}{supported}, which is not installed: pip install '{name}{supported}'"
        )

    def test_the_installed_framework_is_supported_and_others_warn(self, monkeypatch: pytest.MonkeyPatch) -> None:
        supported = self._supported()
        installed = importlib.metadata.version(self.framework_distribution)
        assert _frameworks.version_in_range(installed, supported), f"{installed} is outside {supported}"
        monkeypatch.setattr(_frameworks, "_checked", set())
        real_version = importlib.metadata.version
        monkeypatch.setattr(
            importlib.metadata,
            "version",
            lambda name: "0.0.1" if name == self.framework_distribution else real_version(name),
        )
        message = f"{self._plugin()} supports {self.framework_distribution}{supported}, but 0.0.1 is installed"
        with pytest.warns(RuntimeWarning, match=message.replace(".", r"\.")):
            _frameworks.require_framework(
                self.framework_module, plugin=self._plugin(), distribution=self.framework_distribution
            )

    # ------------------------------------------------------------------ helpers

    def _plugin(self) -> str:
        if not self.plugin_module:
            pytest.fail(f"{type(self).__name__} must set plugin_module")
        return self.plugin_module.replace("_", "-")

    def _supported(self) -> str:
        table = _frameworks.supported_versions(self._plugin())
        assert self.framework_distribution in table, f"{self._plugin()}'s instruments extra lacks the framework"
        return table[self.framework_distribution]


def _as_numpy(value: object) -> object:
    """``value`` (a tensor, a frame, anything numpy reads) as numpy reads it, on the host."""
    import numpy as np

    if is_detachable(value):  # torch, on any device
        return value.detach().cpu().numpy()
    for method in ("numpy", "to_numpy"):  # tensorflow, tinygrad, pandas, polars
        convert = getattr(value, method, None)
        if callable(convert):
            return np.asarray(convert())
    return np.asarray(value)


def _equal(a: object, b: object) -> bool:
    try:
        import numpy as np

        return bool(np.array_equal(np.asarray(a), np.asarray(b)))
    except Exception:
        return bool(a == b)
