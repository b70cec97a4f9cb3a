"""Inputs of every kind become the same named columns live and in a reference; outputs of networks are tagged
with how the server reads them; feature_names and task are checked and applied on the worker."""

from __future__ import annotations

import json
from typing import Any, cast

import numpy as np
import pytest

import aither
from aither._capture import capture_features, render, set_turn
from aither._capture._named import named_features
from aither._capture._outputs import output_as_prediction
from aither._json import dumps
from aither._reference import reference_profiles
from aither.testing import SpanCapture


def _as_dict(value: object) -> dict[str, Any]:
    """A rendered or transformed sample that the test reads as a JSON object."""
    assert isinstance(value, dict)
    return value


def _live(value: object, rows: int = 5, columns: int = 10) -> dict[str, object]:
    rendered = json.loads(dumps(render(capture_features(value, rows, columns))))
    assert isinstance(rendered, dict)
    return rendered


@pytest.mark.parametrize(
    "data",
    [
        np.random.default_rng(0).normal(size=(50, 4)),
        np.random.default_rng(1).random((20, 3, 6, 6), dtype=np.float32),  # images, channels first
        np.random.default_rng(2).random((20, 6, 6, 3), dtype=np.float32),  # images, channels last
        np.random.default_rng(3).random((20, 7, 2)),  # sequences
        ["a short text", "another one, with 2 digits", "", "héllo wörld"],
    ],
    ids=["table", "images-nchw", "images-nhwc", "sequences", "texts"],
)
def test_a_reference_and_live_samples_of_the_same_data_have_the_same_columns_and_dtypes(data: object) -> None:
    live = _live(data, rows=50)
    meta = live["_meta"]
    assert isinstance(meta, dict)
    profiles = reference_profiles(data)
    assert list(profiles) == meta["columns"]
    assert {name: profile.dtype for name, profile in profiles.items()} == meta["dtypes"]


def test_sampled_descriptors_are_the_references_values_on_the_same_rows() -> None:
    images = np.random.default_rng(4).random((8, 3, 5, 5), dtype=np.float32)
    live = _live(images, rows=8)
    rows = live["sample"]
    assert isinstance(rows, list)
    np.testing.assert_allclose([r["pixel_std[2]"] for r in rows], images[:, 2].std(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose([r["pixel_min[0]"] for r in rows], images[:, 0].min(axis=(1, 2)), rtol=1e-6)
    sequences = np.zeros((2, 5, 1))
    sequences[0, :3] = 1.0  # three steps, then padding
    first = _live(sequences)["sample"][0]  # type: ignore[index]
    assert first["length"] == 3 and first["padding_share"] == pytest.approx(0.4) and first["value_std"] == 0.0


def test_feature_names_rename_the_sample_and_the_whole_schema_even_a_wide_one() -> None:
    names = tuple(f"f{j}" for j in range(150))
    set_turn(0)  # the column window's first turn: the first ten columns, whichever tests ran before
    captured = capture_features(np.ones((4, 150)), 2, 10)
    rendered = _as_dict(render(named_features(captured, names)))
    assert set(rendered["sample"][0]) == {f"f{j}" for j in range(10)}
    meta = rendered["_meta"]
    assert meta["columns"] == list(names) and set(meta["dtypes"]) == set(names)
    assert len(meta["schema"]) == 16  # wide: by hash, a hash of the names given
    again = _as_dict(render(named_features(capture_features(np.ones((4, 150)), 2, 10), names)))
    assert again["_meta"]["schema"] == meta["schema"]


def test_wrap_checks_feature_names_and_task() -> None:
    with pytest.raises(TypeError):
        aither.wrap(lambda x: x, name="f", feature_names="abc")
    with pytest.raises(ValueError):
        aither.wrap(lambda x: x, name="f", feature_names=["a", "a"])
    with pytest.raises(ValueError):
        aither.wrap(lambda x: x, name="f", task="ranking")


def test_a_wrapped_function_with_task_tags_its_output(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(lambda x: x.sum(axis=1), name="f", task="regression", feature_names=["a", "b"])
    tracked(np.array([[1.0, 2.0], [3.0, 4.0]]))
    (span,) = aither_capture.predictions()
    assert span.prediction == {
        "values": [3.0, 7.0],
        "_meta": {"output": "regression", "total_rows": 2, "truncated": False},
    }
    assert span.features["_meta"]["columns"] == ["a", "b"]


@pytest.mark.parametrize(
    ("output", "task", "expected"),
    [
        ([[2.0, -1.0], [0.1, 0.3]], None, ([[2.0, -1.0], [0.1, 0.3]], "logits")),
        ([[0.25, 0.75], [1.0, 0.0]], None, ([[0.25, 0.75], [1.0, 0.0]], "probabilities")),
        ([[0.2], [0.9]], "classification", ([[0.8, 0.2], [0.09999999999999998, 0.9]], "probabilities")),
        ([[-2.0], [3.0]], "classification", ([[0.0, -2.0], [0.0, 3.0]], "logits")),
        ([[3.0], [2.5]], "regression", ([3.0, 2.5], "regression")),
        ([[1.0, 2.0]], "regression", None),  # several numbers per row, a regression: left as it is
        ([1, 0, 2], "classification", None),  # classes already
        ([1.5, 2.5], None, None),  # one number per row, no task: as it is (the server reads 1.5 as a number)
        ({"logits": [[1.0, 2.0]]}, None, None),
    ],
)
def test_network_outputs_are_tagged_with_how_they_are_read(output: object, task: str | None, expected: object) -> None:
    read = output_as_prediction(output, task)
    if expected is None:
        assert read == output
    else:
        values, kind = cast("tuple[list[object], str]", expected)
        assert read == {"values": values, "_meta": {"output": kind, "total_rows": len(values), "truncated": False}}


def test_a_cut_output_keeps_its_total_rows_when_tagged() -> None:
    cut = {"values": [[1.0, 2.0]], "_meta": {"truncated": True, "total_rows": 9}}
    assert output_as_prediction(cut, None) == {
        "values": [[1.0, 2.0]],
        "_meta": {"output": "logits", "total_rows": 9, "truncated": True},
    }
