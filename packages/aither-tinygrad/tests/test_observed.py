"""A tinygrad model observed end to end through a real aither server: drift names the input that moved (a
column, one channel of images), unshifted traffic flags nothing, and the accuracy from joined labels equals a
hand computation on the same rows."""

from __future__ import annotations

from typing import cast

import numpy as np
import pytest
from tg_models import TinyNet
from tinygrad import Tensor

import aither
import aither_tinygrad
from aither.testing import LiveServer

NAMES = ["age", "income", "debt", "tenure", "score", "visits"]


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    x[:, 2] += shift
    return x


def test_a_shifted_column_is_flagged_by_its_name_and_no_other(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(0)
    aither.log_reference("tiny", Tensor(_table(rng, 5000)), feature_names=NAMES)
    tracked = aither.wrap(TinyNet(width=6, classes=2), name="tiny", feature_names=NAMES, sample_rows=32)
    for _ in range(60):
        tracked(Tensor(_table(rng, 64, shift=3.0)))
    assert aither.flush(30)
    drift = aither_server.drift("tiny")
    assert set(drift["by_name"]) == set(NAMES) and drift["by_name"]["debt"]["current_count"] == 60 * 32
    assert aither_server.drifted("tiny") == {"debt"}


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: no false positive on any
def test_unshifted_traffic_flags_nothing(aither_server: LiveServer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    aither.log_reference("steady", _table(rng, 5000))
    tracked = aither.wrap(TinyNet(width=6, classes=2), name="steady", sample_rows=32)
    for _ in range(60):
        tracked(Tensor(_table(rng, 64)))
    assert aither.flush(30)
    assert set(aither_server.drift("steady")["by_name"]) == {str(j) for j in range(6)}
    assert aither_server.drifted("steady") == set()


def test_accuracy_from_labels_joined_to_realised_logits_equals_a_hand_computation(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(4)
    tracked = aither_tinygrad.wrap(TinyNet(width=6, classes=2), name="scored", realize_output=True)
    predicted: list[int] = []
    labels: list[int] = []
    for _ in range(10):
        x = _table(rng, 16)
        out = tracked(Tensor(x)).numpy()
        y = Tensor((x[:, 0] + x[:, 1] > 0).astype(np.int32))  # a label Tensor, logged as it is
        aither.log_label(tracked.last_trace_id, y)
        predicted += out.argmax(axis=1).tolist()
        labels += cast("list[int]", y.tolist())
    assert aither.flush(30)
    found = aither_server.metrics("scored")
    assert found["task"] == "classification" and found["labels"] == 160
    assert found["accuracy"] == pytest.approx(float(np.mean(np.array(predicted) == np.array(labels))))


def test_a_brighter_channel_of_images_is_flagged_in_that_channel_only(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(6)

    def images(rows: int, brighter: float = 0.0) -> np.ndarray:
        x = rng.uniform(0.0, 1.0, size=(rows, 3, 8, 8)).astype(np.float32)
        x[:, 1] = np.clip(x[:, 1] * rng.uniform(0.6, 1.0, size=(rows, 1, 1)) + brighter, 0.0, 1.5)
        return x

    aither.log_reference("vision", Tensor(images(3000)))
    tracked = aither.wrap(TinyNet(width=3 * 8 * 8, classes=3), name="vision", sample_rows=16)
    for _ in range(80):
        tracked(Tensor(images(32, brighter=0.4)))
    assert aither.flush(30)
    names = set(aither_server.drift("vision")["by_name"])
    assert names == {f"pixel_{d}[{c}]" for d in ("mean", "std", "min", "max") for c in range(3)}
    drifted = aither_server.drifted("vision")
    assert "pixel_mean[1]" in drifted and drifted <= {"pixel_mean[1]", "pixel_min[1]", "pixel_max[1]"}
