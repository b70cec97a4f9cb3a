"""Feature sampling: bounded, typed by module name, and safe for anything a user passes."""

from __future__ import annotations

import datetime
import decimal
import json
import math
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import aither
from aither._capture import capture_features, capture_prediction, render, set_turn
from aither._json import dumps
from aither.testing import SpanCapture


def _as_dict(value: object) -> dict[str, Any]:
    """A rendered or transformed sample that the test reads as a JSON object."""
    assert isinstance(value, dict)
    return value


def sample(value: object, rows: int = 5, columns: int = 10) -> Any:
    rendered = render(capture_features(value, rows, columns))
    return json.loads(dumps(rendered))  # what goes on the wire


def test_a_wide_long_dataframe_keeps_five_random_rows_ten_columns_and_the_whole_schema() -> None:
    frame = pd.DataFrame(
        np.arange(50_000 * 100, dtype=float).reshape(50_000, 100), columns=[f"col{i}" for i in range(100)]
    )
    frame["col1"] = "A"
    set_turn(0)
    result = sample(frame)
    rows = result["_meta"]["rows"]
    assert len(result["sample"]) == 5 and len(set(rows)) == 5 and rows == sorted(rows)
    assert list(result["sample"][0]) == [f"col{i}" for i in range(10)]
    assert result["sample"][0]["col1"] == "A"
    # Each sampled row is the input's row at its index in _meta.rows.
    for index, record in zip(rows, result["sample"], strict=True):
        assert record["col0"] == frame["col0"].iloc[index]
    assert result["_meta"] == {
        "type": "pandas.DataFrame",
        "shape": [50_000, 100],
        "rows": rows,
        "columns": [f"col{i}" for i in range(100)],
        "dtypes": {f"col{i}": "float64" for i in range(100)} | {"col1": str(frame["col1"].dtype)},
        "truncated": True,
    }


def test_the_sample_is_a_copy_later_edits_of_the_input_do_not_leak_in() -> None:
    X = np.zeros((3, 3))
    captured = capture_features(X, 5, 10)
    X[0, 0] = 99
    assert _as_dict(render(captured))["sample"][0]["0"] == 0.0
    frame = pd.DataFrame({"a": [1.0, 2.0]})
    captured = capture_features(frame, 5, 10)
    frame.loc[0, "a"] = 99.0
    assert _as_dict(render(captured))["sample"][0]["a"] == 1.0


def test_capture_copies_only_the_sample_not_the_batch() -> None:
    big = np.ones((200_000, 50))
    captured = capture_features(big, 5, 10)
    head = captured.data[0]
    assert head.shape == (5, 10)
    assert head.base is None  # its own small buffer, not a view keeping the big array alive
    assert captured.rows == 200_000


def test_numpy_vectors_images_and_scalars() -> None:
    assert sample(np.arange(8))["sample"] == [0, 1, 2, 3, 4]
    image = sample(np.ones((32, 3, 28, 28), dtype=np.float32))
    assert image["_meta"]["shape"] == [32, 3, 28, 28]
    # An image batch: each sampled row described per channel (mean, std, min, max), named like a reference's.
    assert len(image["sample"]) == 5 and len(image["sample"][0]) == 12
    assert image["sample"][0]["pixel_mean[2]"] == 1.0 and image["sample"][0]["pixel_std[0]"] == 0.0
    assert image["_meta"]["columns"][:4] == ["pixel_mean[0]", "pixel_std[0]", "pixel_min[0]", "pixel_max[0]"]
    assert len(image["_meta"]["rows"]) == 5
    assert image["_meta"]["dtype"] == "float32" and image["_meta"]["truncated"] is True
    assert sample(np.float64(2.5)) == 2.5
    assert sample(np.array(3)) == 3


def test_series_polars_frames_and_series() -> None:
    series = sample(pd.Series([1.5, 2.5, 3.5], name="amount"))
    assert series["sample"] == [1.5, 2.5, 3.5]
    assert series["_meta"]["name"] == "amount" and series["_meta"]["truncated"] is False
    frame = sample(pl.DataFrame({"a": list(range(20)), "b": ["x"] * 20}))
    assert [row["a"] for row in frame["sample"]] == frame["_meta"]["rows"]
    assert frame["_meta"]["shape"] == [20, 2] and frame["_meta"]["truncated"] is True
    assert frame["_meta"]["dtypes"] == {"a": "Int64", "b": "String"}
    pseries = sample(pl.Series("s", [1, 2, 3, 4, 5, 6]))
    assert pseries["sample"] == [1, 2, 3, 4, 5] and pseries["_meta"]["shape"] == [6]


def test_dicts_lists_records_and_strings() -> None:
    nested = sample({"input_ids": np.ones((8, 128), dtype=np.int64), "mask": [1, 0]})
    assert nested["_meta"] == {
        "type": "dict",
        "keys": ["input_ids", "mask"],
        "columns": ["input_ids", "mask"],
        "dtypes": {"input_ids": "numpy.ndarray", "mask": "list"},
        "truncated": False,
    }
    assert nested["sample"]["input_ids"]["_meta"]["shape"] == [8, 128]
    records = sample([{"a": i, "b": 2} for i in range(9)])
    assert records["sample"] == [{"a": i, "b": 2} for i in records["_meta"]["rows"]]
    assert records["_meta"]["shape"] == [9, 2] and records["_meta"]["truncated"] is True
    assert records["_meta"]["dtypes"] == {"a": "int", "b": "int"}
    texts = sample(["short", "y" * 5000])
    # A list of texts: each sampled text's descriptors, the texts themselves (cut) in _meta.texts.
    assert texts["sample"][0]["chars"] == 5 and texts["sample"][1]["chars"] == 5000
    assert texts["_meta"]["texts"][0] == "short" and len(texts["_meta"]["texts"][1]) == 1000
    assert texts["_meta"]["truncated"] is True and texts["_meta"]["rows"] == [0, 1]
    assert sample("hello") == "hello"


def test_records_are_sampled_like_any_row_strings_cut_and_arrays_copied() -> None:
    image = np.zeros((64, 64, 3))
    records = [{"text": "y" * 5000, "image": image, "score": 0.5}] * 3
    captured = capture_features(records, 5, 10)
    image[0, 0, 0] = 99.0  # a later edit of the caller's array must not leak into the sample
    row = json.loads(dumps(render(captured)))["sample"][0]
    assert row["score"] == 0.5
    assert row["text"]["_meta"]["truncated"] is True and len(row["text"]["sample"]) == 1000
    assert row["image"]["_meta"]["shape"] == [64, 64, 3]
    # A bounded copy: five rows of the array, each described as a sequence (all zeros: no length).
    assert len(row["image"]["sample"]) == 5 and row["image"]["sample"][0]["length"] == 0


def test_nan_inf_datetimes_bytes_and_unknown_objects_are_encoded_safely() -> None:
    class Opaque:
        def __repr__(self) -> str:
            raise RuntimeError("no repr for you")

    value = {
        "nan": float("nan"),
        "inf": np.inf,
        "when": datetime.datetime(2026, 1, 2, 3, 4, 5),
        "day": datetime.date(2026, 1, 2),
        "blob": b"\x00\x01",
        "money": decimal.Decimal("1.10"),
        "opaque": Opaque(),
        "np": np.int32(7),
    }
    encoded = sample(value)["sample"]
    assert encoded["nan"] == "NaN"
    assert encoded["inf"] == "Infinity"
    assert encoded["when"] == "2026-01-02T03:04:05"
    assert encoded["day"] == "2026-01-02"
    assert encoded["blob"] == {"_type": "bytes", "size": 2}
    assert encoded["money"] == 1.1
    assert encoded["opaque"]["sample"] == "<unrepresentable Opaque>"
    assert encoded["np"] == 7


def test_prediction_rows_are_capped_with_a_marker() -> None:
    small = render(capture_prediction(np.arange(10), 1000))
    assert small == list(range(10))
    big = _as_dict(render(capture_prediction(np.arange(5000), 1000)))
    assert big["_meta"] == {"truncated": True, "total_rows": 5000}
    assert big["values"] == list(range(1000))
    assert _as_dict(render(capture_prediction(list(range(1500)), 1000)))["_meta"]["total_rows"] == 1500


hostile = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text()
    | st.binary()
    | st.datetimes()
    | st.complex_numbers(),
    lambda children: (
        st.lists(children, max_size=5)
        | st.dictionaries(st.text() | st.integers(), children, max_size=5)
        | st.tuples(children, children)
    ),
    max_leaves=30,
)


class Identity:
    def predict(self, X: object) -> object:
        return X


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(features=hostile)
def test_hostile_python_features_never_raise_into_predict(features: object, aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(Identity(), name="hostile")
    assert tracked.predict(features) is features
    span = aither_capture.predictions()[-1]
    json.loads(span.attributes["ml.features"])  # valid JSON, always
    json.loads(span.attributes["ml.prediction"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    array=hnp.arrays(
        dtype=st.sampled_from(
            [
                np.dtype(t)
                for t in (np.float64, np.float32, np.int64, np.bool_, np.complex128, "datetime64[s]", "U5", object)
            ]
        ),
        shape=hnp.array_shapes(min_dims=0, max_dims=4, min_side=0, max_side=6),
    )
)
def test_hostile_arrays_never_raise_into_predict(array: np.ndarray, aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(Identity(), name="hostile")
    assert tracked.predict(array) is array
    span = aither_capture.predictions()[-1]
    features = json.loads(span.attributes["ml.features"])
    assert features is not None or array.ndim == 0
    json.loads(span.attributes["ml.prediction"])


def test_nan_in_numpy_samples_becomes_the_string_nan() -> None:
    result = sample(np.array([[np.nan, 1.0], [np.inf, -np.inf]]))
    assert result["sample"] == [{"0": "NaN", "1": 1.0}, {"0": "Infinity", "1": "-Infinity"}]
    assert not any(isinstance(v, float) and math.isnan(v) for row in result["sample"] for v in row.values())


def test_sampling_numpy_imports_no_pandas() -> None:
    import subprocess
    import sys

    code = (
        "import numpy as np, aither, sys\n"
        "from aither._capture import capture_features, render\n"
        "render(capture_features(np.ones((3, 3)), 5, 10))\n"
        "print('pandas' in sys.modules, 'polars' in sys.modules, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False", "False"]


@pytest.mark.parametrize("rows", [10, 1000, 50_000])
def test_the_sample_size_does_not_depend_on_the_number_of_rows(rows: int) -> None:
    frame = pd.DataFrame(np.ones((rows, 100)))
    captured = capture_features(frame, 5, 10)
    assert len(captured.data[0]) == 5  # head(5): what the calling thread copies is bounded
    assert captured.rows == rows


def test_text_with_a_lone_surrogate_is_encoded_not_dropped(aither_capture: SpanCapture) -> None:
    # json.loads keeps a lone surrogate: a web request with a cut emoji hands one to a text model as it is.
    text = json.loads('"caf\\u00e9 \\ud83d"')
    tracked = aither.wrap(Identity(), name="text")
    tracked.predict([text])
    span = aither_capture.predictions()[-1]
    assert json.loads(span.attributes["ml.features"])["_meta"]["texts"] == [text]
    assert json.loads(span.attributes["ml.prediction"]) == [text]
