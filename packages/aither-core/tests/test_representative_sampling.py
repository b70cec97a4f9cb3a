"""Samples that represent the traffic: random rows joined by index, rotating columns, the whole schema once."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pandas as pd
import polars as pl
import pytest
from scipy import stats

import aither
from aither._capture import _schema, capture_features, render, set_turn
from aither._capture._schema import schema_hash
from aither._json import dumps
from aither.testing import SpanCapture


class Constant:
    def predict(self, X: object) -> list[int]:
        return list(range(len(X)))  # type: ignore[arg-type]


def sample(value: object, rows: int = 5, columns: int = 10) -> dict[str, Any]:
    result = json.loads(dumps(render(capture_features(value, rows, columns))))
    assert isinstance(result, dict)
    return result


def test_rows_are_uniform_over_the_batch_not_its_first_rows() -> None:
    # A sorted batch of 100 rows sampled 4,000 times, 5 rows each: every row is drawn about 200 times.
    sorted_batch = np.arange(100, dtype=float).reshape(100, 1)
    counts = np.zeros(100)
    for _ in range(4000):
        rows = sample(sorted_batch)["_meta"]["rows"]
        assert len(set(rows)) == 5 and rows == sorted(rows)  # without replacement, ascending
        counts[rows] += 1
    # Pearson's chi-squared goodness of fit against the uniform: a first-rows sampler scores p = 0.
    assert stats.chisquare(counts).pvalue > 1e-4
    assert counts[50:].sum() == pytest.approx(counts[:50].sum(), rel=0.1)


@pytest.mark.parametrize(
    "make",
    [
        lambda: np.arange(40 * 25, dtype=float).reshape(40, 25),
        lambda: pd.DataFrame(np.arange(40 * 25).reshape(40, 25), columns=[f"c{i}" for i in range(25)]),
        lambda: pl.DataFrame({f"c{i}": list(range(i, i + 40)) for i in range(25)}),
        lambda: [{f"c{i}": r * 100 + i for i in range(25)} for r in range(40)],
    ],
    ids=["numpy", "pandas", "polars", "records"],
)
def test_every_column_is_observed_and_each_sampled_row_joins_its_prediction_row(
    make: object, aither_capture: SpanCapture
) -> None:
    data = make()  # type: ignore[operator]
    tracked = aither.wrap(Constant(), name="wide", sample_rows=5, sample_columns=10)
    seen: set[str] = set()
    for _ in range(3):  # ceil(25 / 10) calls show every column
        tracked.predict(data)
    for span in aither_capture.predictions("wide"):
        features, prediction = span.features, span.prediction
        meta = features["_meta"]
        assert len(meta["columns"]) == 25 and set(meta["dtypes"]) == set(meta["columns"])
        assert len(meta["rows"]) == 5
        for index, record in zip(meta["rows"], features["sample"], strict=True):
            assert len(record) == 10
            assert prediction[index] == index  # the sampled row's prediction is row `index` of ml.prediction
            seen.update(record)
    assert seen == {str(c) for c in aither_capture.predictions("wide")[0].features["_meta"]["columns"]}


def test_two_models_called_in_turn_each_rotate_through_all_their_columns(aither_capture: SpanCapture) -> None:
    frame = pd.DataFrame(np.zeros((8, 20)), columns=[f"c{i}" for i in range(20)])
    first = aither.wrap(Constant(), name="first", sample_columns=10)
    second = aither.wrap(Constant(), name="second", sample_columns=10)
    for _ in range(2):
        first.predict(frame)
        second.predict(frame)
    for name in ("first", "second"):
        seen = {column for span in aither_capture.predictions(name) for column in span.features["sample"][0]}
        assert seen == set(frame.columns)


def test_a_dict_rotates_its_keys_and_describes_their_types() -> None:
    features = {f"k{i}": float(i) for i in range(15)}
    seen: set[str] = set()
    for turn in range(2):
        set_turn(turn)
        result = sample(features)
        seen.update(result["sample"])
        assert result["_meta"]["dtypes"] == dict.fromkeys(features, "float")
    assert seen == set(features)


def test_a_wide_schema_is_sent_by_hash_and_in_full_once_per_process() -> None:
    _schema.forget_sent()
    frame = pd.DataFrame(np.zeros((3, 150)), columns=[f"w{i}" for i in range(150)])
    first, second = sample(frame), sample(frame)
    names = [f"w{i}" for i in range(150)]
    digest = schema_hash(names, ["float64"] * 150)
    assert first["_meta"]["schema"] == second["_meta"]["schema"] == digest
    assert first["_meta"]["columns"] == names
    assert "columns" not in second["_meta"] and "dtypes" not in second["_meta"]
    narrow = sample(pd.DataFrame(np.zeros((3, 100))))
    assert "schema" not in narrow["_meta"] and len(narrow["_meta"]["columns"]) == 100


def test_the_schema_is_computed_once_per_schema_not_per_call() -> None:
    _schema._schemas.clear()
    _schema._by_key.clear()
    frame = pd.DataFrame(np.zeros((50, 30)), columns=[f"s{i}" for i in range(30)])
    for _ in range(20):
        sample(frame)
    sample(frame.astype({"s3": "int64"}))  # a dtype change is a new schema
    assert len(_schema._schemas) == 2


def test_the_calling_thread_copies_only_the_sample_whatever_the_batch() -> None:
    small = pd.DataFrame(np.zeros((10, 100)))
    large = pd.DataFrame(np.zeros((1_000_000, 100)))
    for frame in (small, large):
        captured = capture_features(frame, 5, 10)
        assert captured.data[0].shape == (5, 100)  # the drawn rows; the window is cut on the worker
    big = np.zeros((1_000_000, 200))
    captured = capture_features(big, 5, 10)
    assert captured.data[0].shape == (5, 10) and captured.data[0].base is None

    # O(sample): what the calling thread holds is the same few rows for ten rows and for a million (the
    # timings are benchmarks/bench_drift.py's job, not a test's).
    assert capture_features(small, 5, 10).nbytes == capture_features(large, 5, 10).nbytes
