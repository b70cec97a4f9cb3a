"""Every value the SDK sends reads back as docs/wire-contract.md ("Values") says, or is refused at once with its
reason; one bad value costs only itself. Bodies are decoded with opentelemetry-proto (``aither.testing``)."""

from __future__ import annotations

import datetime
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest

import aither
from aither._export._wire import int_attribute
from aither.testing import CapturedSpan, Fault, OTLPReceiver


@pytest.fixture
def receiver() -> Iterator[OTLPReceiver]:
    with OTLPReceiver() as running:
        aither.init(api_key="aith_k", base_url=running.url, flush_interval=0.05, initial_backoff=0.05)
        yield running


def _sent(receiver: OTLPReceiver, *, features: Any = 1, prediction: Any = 1) -> CapturedSpan:
    before = len(receiver.spans)
    aither.log_prediction("values", features, prediction)
    assert aither.flush(10)
    spans = receiver.spans
    assert len(spans) == before + 1
    return spans[-1]


# ---------------------------------------------------------------------------------------------- rows and int64


@pytest.mark.parametrize("row", [2**63, 2**64 - 1, 2**70, -1])
def test_a_label_row_outside_int64_is_refused_at_once(receiver: OTLPReceiver, row: int) -> None:
    trace_id = aither.log_prediction("values", {"x": 1}, 1)
    with pytest.raises(ValueError, match="int64"):
        aither.log_label(trace_id, 1, row=row)
    aither.log_label(trace_id, 1, row=2**63 - 1)  # the largest row an int64 holds goes through
    assert aither.flush(10)
    assert receiver.spans[-1].attributes["ml.label.row"] == 2**63 - 1
    assert aither.stats()["dropped"] == {}


def test_an_int_attribute_outside_int64_costs_its_span_alone(receiver: OTLPReceiver) -> None:
    with pytest.raises(ValueError, match="int64"):
        int_attribute("ml.label.row", 2**70)
    good = [aither.log_prediction("values", {"x": i}, i) for i in range(5)]
    record = aither._client.get_client().exporter  # the encoder's own guard, past log_label's check
    from aither._records import SpanRecord

    record.submit(SpanRecord.for_label(int(good[0], 16), 7, 1, 1, 2**70))
    assert not aither.flush(10)
    assert aither.stats()["dropped"] == {"encoding_error": 1}
    assert len(receiver.spans) == 5  # the five predictions of the same request were delivered


# ---------------------------------------------------------------------------------------------- scalars


def test_a_long_double_is_a_float(receiver: OTLPReceiver) -> None:
    span = _sent(receiver, features={"x": np.longdouble(0.25)}, prediction=np.longdouble(0.5))
    assert span.prediction == 0.5
    assert span.features["sample"] == {"x": 0.25}
    span = _sent(receiver, features=np.array([[np.longdouble(1.5)]]), prediction=np.array([np.longdouble(2.5)]))
    assert span.features["sample"] == [{"0": 1.5}] and span.prediction == [2.5]


def test_a_utc_offset_with_seconds_keeps_them(receiver: OTLPReceiver) -> None:
    zone = datetime.timezone(datetime.timedelta(hours=5, minutes=30, seconds=15))
    when = datetime.datetime(2024, 1, 1, 12, 0, tzinfo=zone)
    span = _sent(receiver, features={"t": when}, prediction=when)
    assert span.features["sample"] == {"t": "2024-01-01T12:00:00+05:30:15"}
    assert span.prediction == "2024-01-01T12:00:00+05:30:15"


# ---------------------------------------------------------------------------------------------- datetime64

_STAMPS = np.array(["2024-01-01T00:00:00.000000001", "2024-01-02", "2024-01-03T00:00:00.25"], dtype="datetime64[ns]")
_TEXT = ["2024-01-01T00:00:00.000000001", "2024-01-02T00:00:00", "2024-01-03T00:00:00.250000"]


def _column(sample: Any, name: str) -> list[Any]:
    return [row[name] for row in sample]


def test_datetime64_is_the_same_iso_text_in_every_layout(receiver: OTLPReceiver) -> None:
    layouts: dict[str, tuple[Any, Callable[[Any], list[Any]]]] = {
        "numpy vector": (_STAMPS, lambda s: s),
        "numpy table": (_STAMPS.reshape(3, 1), lambda s: _column(s, "0")),
        "frame of one dtype": (pd.DataFrame({"t": _STAMPS}), lambda s: _column(s, "t")),
        "frame of mixed dtypes": (pd.DataFrame({"t": _STAMPS, "x": [1.0, 2.0, 3.0]}), lambda s: _column(s, "t")),
        "series": (pd.Series(_STAMPS), lambda s: s),
        "records": ([{"t": stamp} for stamp in _STAMPS], lambda s: _column(s, "t")),
        "dict of a scalar": ({"t": _STAMPS[0]}, lambda s: [s["t"]]),
    }
    for layout, (features, column) in layouts.items():
        sample = _sent(receiver, features=features).features["sample"]
        expected = _TEXT[:1] if layout == "dict of a scalar" else _TEXT
        assert column(sample) == expected, layout
    for prediction in (_STAMPS, pd.Series(_STAMPS), list(_STAMPS)):
        assert _sent(receiver, prediction=prediction).prediction == _TEXT
    assert _sent(receiver, prediction=_STAMPS[0]).prediction == _TEXT[0]
    assert _sent(receiver, prediction=pd.Timestamp(_STAMPS[0])).prediction == _TEXT[0]


def test_timedelta64_is_seconds_and_nat_is_text(receiver: OTLPReceiver) -> None:
    span = _sent(receiver, features={"d": np.timedelta64(1500, "ms")}, prediction=np.array(["NaT"], "datetime64[ns]"))
    assert span.features["sample"] == {"d": 1.5}
    assert span.prediction == ["NaT"]


# ---------------------------------------------------------------------------------------------- pandas outputs


def test_a_frame_returned_as_the_prediction_is_its_rows(receiver: OTLPReceiver) -> None:
    frame = pd.DataFrame({"label": ["a", "b"], "score": [0.9, 0.8]})
    assert _sent(receiver, prediction=frame).prediction == [
        {"label": "a", "score": 0.9},
        {"label": "b", "score": 0.8},
    ]
    assert _sent(receiver, prediction=pl.from_pandas(frame)).prediction == [
        {"label": "a", "score": 0.9},
        {"label": "b", "score": 0.8},
    ]
    twice = pd.DataFrame([[1, 2]], columns=["p", "p"])
    assert _sent(receiver, prediction=twice).prediction == [{"p": 1, "p.1": 2}]


def test_a_frame_prediction_past_the_row_cap_is_cut_and_marked() -> None:
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05, max_prediction_rows=2)
        span = _sent(receiver, prediction=pd.DataFrame({"y": [1, 2, 3]}))
    assert span.prediction == {"values": [{"y": 1}, {"y": 2}], "_meta": {"truncated": True, "total_rows": 3}}


def test_pandas_categoricals_indexes_and_missing_values_are_their_values(receiver: OTLPReceiver) -> None:
    assert _sent(receiver, prediction=pd.Categorical(["a", "b", "a"])).prediction == ["a", "b", "a"]
    assert _sent(receiver, prediction=pd.Index([1, 2])).prediction == [1, 2]
    assert _sent(receiver, prediction=pd.array([1, None], dtype="Int64")).prediction == [1, None]
    assert _sent(receiver, prediction=pd.NA).prediction is None


# ---------------------------------------------------------------------------------------------- features


def test_a_list_valued_feature_is_one_row(receiver: OTLPReceiver) -> None:
    span = _sent(receiver, features={"amount": [1.0, 2.0], "country": "FR"})
    assert span.attributes["ml.batch_size"] == 1
    assert span.features["sample"]["amount"]["sample"] == [1.0, 2.0]


def test_a_dict_of_equal_length_arrays_is_a_batch(receiver: OTLPReceiver) -> None:
    span = _sent(receiver, features={"input_ids": np.ones((4, 8)), "attention_mask": np.ones((4, 8))})
    assert span.attributes["ml.batch_size"] == 4
    span = _sent(receiver, features={"a": np.ones(3), "b": np.ones(5)})  # no common length: one row
    assert span.attributes["ml.batch_size"] == 1


def test_duplicate_column_names_do_not_collapse(receiver: OTLPReceiver) -> None:
    numbers = pd.DataFrame([[1, 2, 3]], columns=["a", "a", "a.1"])
    mixed = pd.DataFrame([[1, "x"]], columns=["a", "a"])
    keys = pd.DataFrame([[1, 2]], columns=[1, "1"])
    for frame in (numbers, mixed, keys):
        meta = _sent(receiver, features=frame).features
        names = list(meta["sample"][0])
        assert len(names) == frame.shape[1], frame.columns
        assert meta["_meta"]["columns"] == names
        assert list(meta["_meta"]["dtypes"]) == names
    assert _sent(receiver, features=numbers).features["sample"] == [{"a": 1, "a.2": 2, "a.1": 3}]


# ---------------------------------------------------------------------------------------------- log lines


def _messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [record.getMessage() for record in caplog.records if record.name == "aither"]


@pytest.mark.parametrize("status", [400, 401, 405, 500])
def test_an_answer_that_is_not_retried_is_logged_as_dropped(caplog: pytest.LogCaptureFixture, status: int) -> None:
    caplog.set_level(logging.WARNING, logger="aither")
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05)
        receiver.fail(Fault(status, body=b'{"error": {"message": "no"}}'))
        aither.log_prediction("values", {"x": 1}, 1)
        aither.flush(10)
    messages = _messages(caplog)
    assert f"aither: dropped: HTTP {status}: no ({receiver.url}/v1/traces; spans not retried)" in messages
    assert not [m for m in messages if "will retry" in m]
    assert aither.stats()["dropped"] == {f"http_{status}": 1}


def test_a_retried_answer_says_when(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="aither")
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05)
        receiver.fail(Fault(503, headers={"Retry-After": "1"}))
        aither.log_prediction("values", {"x": 1}, 1)
        assert aither.flush(10)
    assert f"aither: cannot deliver to {receiver.url}/v1/traces: HTTP 503; will retry in 1.0 s" in _messages(caplog)


@pytest.mark.parametrize("status", [404, 405])
def test_a_backend_without_metrics_gets_one_warning_and_no_more_metrics(
    caplog: pytest.LogCaptureFixture, status: int
) -> None:
    caplog.set_level(logging.WARNING, logger="aither")
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url, flush_interval=0.05)
        receiver.fail(*[Fault(status, path="/v1/metrics") for _ in range(10)])
        for round_ in range(3):
            aither.log_prediction("values", {"x": round_}, round_)
            assert aither.flush(10)
        assert len(receiver.metrics_requests) == 1
        assert len(receiver.spans) == 3  # spans still flow
    stats = aither.stats()
    assert stats["metric_reports_skipped"] >= 2 and stats["metric_reports"] == 0  # every flush let one go
    warnings = [m for m in _messages(caplog) if "/v1/metrics" in m]
    assert warnings == [
        f"aither: {receiver.url}/v1/metrics answered HTTP {status}: this backend takes no OTLP metrics, so no more "
        "are sent to it (spans still are; stats()['metric_reports_skipped'] counts the reports let go)"
    ]


def test_values_encode_as_json_the_server_reads(receiver: OTLPReceiver) -> None:
    span = _sent(receiver, features={"c": np.clongdouble(1 + 2j), "big": 2**70})
    assert span.features["sample"] == {"c": [1.0, 2.0], "big": 2**70}
    assert json.loads(span.attributes["ml.features"])["sample"]["big"] == 2**70


def test_the_server_docs_say_the_sdks_default_is_the_hosted_platform() -> None:
    from pathlib import Path

    from aither._config import DEFAULT_BASE_URL

    text = (Path(__file__).resolve().parents[3] / "docs" / "server.md").read_text()
    assert "the SDK's default base URL and any OpenTelemetry" not in text
    assert f"(`{DEFAULT_BASE_URL}`), not this server: set `AITHER_BASE_URL=http://127.0.0.1:4318`" in text


def test_trace_ids_do_not_follow_the_users_random_seed() -> None:
    import random

    from aither._ids import new_span_id, new_trace_id

    random.seed(42)  # what every reproducible training script does first
    first = (new_trace_id(), new_span_id())
    random.seed(42)
    assert (new_trace_id(), new_span_id()) != first
