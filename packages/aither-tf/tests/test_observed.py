"""A Keras model observed end to end through a real aither server, fed numpy arrays and ``tf.Tensor``s alike:
drift names the input that moved (a column, one channel of images), unshifted traffic flags nothing, and the
accuracy from joined labels equals a hand computation on the same rows."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

import aither
from aither.testing import LiveServer

NAMES = ["age", "income", "debt", "tenure", "score", "visits"]


def _mlp() -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential([keras.Input((6,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(2)])


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> np.ndarray:
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    x[:, 2] += shift
    return x


@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "tf.Tensor"])
def test_a_shifted_column_is_flagged_by_its_name_and_no_other(aither_server: LiveServer, as_tensor: bool) -> None:
    rng = np.random.default_rng(0)
    reference = _table(rng, 5000)
    aither.log_reference("keras", tf.constant(reference) if as_tensor else reference, feature_names=NAMES)
    tracked = aither.wrap(_mlp(), name="keras", feature_names=NAMES, sample_rows=32)
    for _ in range(60):
        x = _table(rng, 64, shift=3.0)
        tracked(tf.constant(x)) if as_tensor else tracked.predict(x, verbose=0)
    assert aither.flush(30)
    drift = aither_server.drift("keras")
    assert set(drift["by_name"]) == set(NAMES) and drift["by_name"]["debt"]["current_count"] == 60 * 32
    assert aither_server.drifted("keras") == {"debt"}


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: no false positive on any
def test_unshifted_traffic_flags_nothing(aither_server: LiveServer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    aither.log_reference("steady", _table(rng, 5000))
    tracked = aither.wrap(_mlp(), name="steady", sample_rows=32)
    for _ in range(60):
        tracked(tf.constant(_table(rng, 64)))
    assert aither.flush(30)
    assert set(aither_server.drift("steady")["by_name"]) == {str(j) for j in range(6)}
    assert aither_server.drifted("steady") == set()


def test_accuracy_from_labels_joined_to_logits_equals_a_hand_computation(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(4)
    tracked = aither.wrap(_mlp(), name="scored")
    predicted: list[int] = []
    labels: list[int] = []
    for _ in range(20):
        x = _table(rng, 16)
        out = tracked.predict(x, verbose=0)
        y = tf.constant((x[:, 0] + x[:, 1] > 0).astype(np.int64))  # a label tensor, logged as it is
        aither.log_label(tracked.last_trace_id, y)
        predicted += out.argmax(axis=1).tolist()
        labels += y.numpy().tolist()
    assert aither.flush(30)
    found = aither_server.metrics("scored")
    assert found["task"] == "classification" and found["labels"] == 320
    assert found["accuracy"] == pytest.approx(float(np.mean(np.array(predicted) == np.array(labels))))


def test_a_brighter_channel_of_channels_last_images_is_flagged_in_that_channel_only(
    aither_server: LiveServer,
) -> None:
    rng = np.random.default_rng(6)

    def images(rows: int, brighter: float = 0.0) -> np.ndarray:
        x = rng.uniform(0.0, 1.0, size=(rows, 8, 8, 3)).astype(np.float32)
        x[..., 1] = np.clip(x[..., 1] * rng.uniform(0.6, 1.0, size=(rows, 1, 1)) + brighter, 0.0, 1.5)
        return x

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [keras.Input((8, 8, 3)), keras.layers.Conv2D(4, 3), keras.layers.Flatten(), keras.layers.Dense(3)]
    )
    aither.log_reference("vision", images(3000))
    tracked = aither.wrap(model, name="vision", sample_rows=16)
    for _ in range(80):
        tracked(tf.constant(images(32, brighter=0.4)))
    assert aither.flush(30)
    names = set(aither_server.drift("vision")["by_name"])
    assert names == {f"pixel_{d}[{c}]" for d in ("mean", "std", "min", "max") for c in range(3)}
    drifted = aither_server.drifted("vision")
    assert "pixel_mean[1]" in drifted and drifted <= {"pixel_mean[1]", "pixel_min[1]", "pixel_max[1]"}
