"""Profile-only mode in the SDK: no row in any span, every row in the sketches sent with the aggregates, and a
report the backend refused carries its sketches to the next one (docs/privacy.md, "Profile-only mode")."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import datasketches
import numpy as np
import pytest

import aither
from aither.testing import Fault, MetricPoint, OTLPReceiver, receiving, run_python


def _profiles(points: list[MetricPoint], role: str = "feature") -> dict[str, MetricPoint]:
    return {
        p.attributes["aither.profile.column"]: p
        for p in points
        if p.metric == "aither.profile" and p.attributes["aither.profile.role"] == role
    }


def test_every_row_of_a_batch_is_sketched_and_no_row_is_in_its_span() -> None:
    model: Callable[[Any], Any] = aither.track("batch", sample_rows=0, feature_names=["x", "y"])(
        lambda batch: batch[:, 0] > 0
    )
    with receiving(flush_interval=60) as receiver:
        batch = np.column_stack([np.arange(10_000, dtype=np.float64), np.full(10_000, np.nan)])
        model(batch)
        assert aither.flush(10)
    (span,) = receiver.spans
    assert "ml.features" not in span.attributes and span.attributes["ml.batch_size"] == 10_000
    found = _profiles(receiver.metrics)
    assert set(found) == {"x", "y"}
    x = found["x"]
    assert x.value == 10_000 and x.attributes["aither.profile.nulls"] == 0
    assert (x.attributes["aither.profile.min"], x.attributes["aither.profile.max"]) == (0.0, 9999.0)
    assert (
        x.attributes["aither.profile.format"] == "datasketches/1" and x.attributes["aither.profile.dtype"] == "float64"
    )
    sketch = datasketches.kll_doubles_sketch.deserialize(x.attributes["aither.profile.sketch"])
    assert sketch.n == 10_000 and sketch.get_quantile(0.5) == pytest.approx(5000, rel=0.03)
    assert found["y"].value == 0 and found["y"].attributes["aither.profile.nulls"] == 10_000  # NaN: nulls
    assert aither.stats()["profiled_rows"] == 10_000
    (output,) = _profiles(receiver.metrics, "prediction").values()  # the outputs, as the server reads them
    assert output.attributes["aither.profile.column"] == "prediction" and output.value == 1000  # max_prediction_rows
    assert output.attributes["aither.profile.kind"] == "categorical"  # booleans


def test_a_buffer_reused_after_the_call_is_profiled_as_it_was_during_the_call() -> None:
    model: Callable[[Any], Any] = aither.track("reused", sample_rows=0)(lambda batch: batch.sum(axis=1))
    with receiving(flush_interval=60) as receiver:
        buffer = np.ones((100, 2))
        model(buffer)
        buffer[:] = 1000.0  # the caller's next batch, written into the same array before the worker ran
        assert aither.flush(10)
    assert {
        (p.attributes["aither.profile.min"], p.attributes["aither.profile.max"])
        for p in _profiles(receiver.metrics).values()
    } == {(1.0, 1.0)}


def test_a_refused_report_carries_its_sketches_to_the_next_counted_once() -> None:
    model: Callable[[Any], Any] = aither.track("refused", sample_rows=0)(lambda rows: [0] * len(rows))
    with receiving(flush_interval=60) as receiver:
        receiver.fail(Fault(400, path="/v1/metrics"))
        model([{"age": 30, "city": "Oslo"}, {"age": 40, "city": "Rome"}])
        assert aither.flush(10)
        model([{"age": 50, "city": "Oslo"}])
        assert aither.flush(10)
    first, second = (r.metrics for r in receiver.metrics_requests)
    assert _profiles(first)["age"].value == 2  # refused: not committed
    age, city = _profiles(second)["age"], _profiles(second)["city"]
    assert age.value == 3 and city.value == 3  # the refused interval's rows, once, with the new one
    assert age.start_ns == _profiles(first)["age"].start_ns  # one interval, covering both
    items = datasketches.frequent_strings_sketch.deserialize(city.attributes["aither.profile.sketch"])
    assert sorted(
        (i[0], i[1]) for i in items.get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_POSITIVES)
    ) == [("Oslo", 2), ("Rome", 1)]


def test_profile_only_for_every_model_from_init_sends_no_features_even_from_features_fn() -> None:
    model: Callable[[Any], Any] = aither.track("everything", features_fn=lambda rows: {"sample": rows})(
        lambda rows: len(rows)
    )
    with receiving(flush_interval=60, profile_only=True) as receiver:
        model([{"card": "4111 1111 1111 1111"}])
        assert aither.flush(10)
    (span,) = receiver.spans
    assert "ml.features" not in span.attributes
    sketch = _profiles(receiver.metrics)["card"].attributes["aither.profile.sketch"]
    assert b"4111" not in sketch and b"[card]" in sketch  # scrubbed before it was sketched


def test_the_profile_only_example_of_the_privacy_page_runs_as_written(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "restored after the test")  # the example sets its own
    page = (Path(__file__).resolve().parents[3] / "docs" / "privacy.md").read_text()
    section = page[page.index("## Profile-only mode") :]
    code = section[section.index("```python\n") + 10 : section.index("\n```", section.index("```python"))]
    with OTLPReceiver() as receiver:
        exec(compile(code.replace("http://127.0.0.1:4318", receiver.url), "privacy.md", "exec"), {})
        assert aither.flush(10)
        spans, profiles = receiver.spans, _profiles(receiver.metrics)
    assert capsys.readouterr().out.strip() == "1000"
    assert all("ml.features" not in span.attributes for span in spans)
    assert set(profiles) == {"amount", "country", "customer_id", "note"}  # email dropped
    assert b"jane@example.org" not in profiles["note"].attributes["aither.profile.sketch"]


def test_sketches_still_held_at_exit_are_let_go_without_a_warning() -> None:
    # The worker is still sketching when the interpreter ends: the exit flush's deadline (0.2 s) passed.
    result = run_python(
        """
import numpy as np
import aither
from aither.testing import closed_local_url

aither.init(base_url=closed_local_url(), api_key="k", flush_interval=3600, batch_size=10**6, exit_timeout=0.2,
            max_queue_size=10**6, max_queue_bytes=2**31)
model = aither.track("down", sample_rows=0)(lambda batch: batch.sum(axis=1))
for _ in range(100):
    model(np.ones((10_000, 10)))
print("called")
"""
    )
    assert result.stdout.strip().endswith("called"), result.stderr
    assert "leaked" not in result.stderr, result.stderr  # nanobind's warning for each sketch alive at teardown
