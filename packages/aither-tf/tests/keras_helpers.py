"""Small real Keras models shared by the tests."""

from __future__ import annotations

import keras
import numpy as np


def make_mlp(inputs: int = 4, outputs: int = 3) -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [keras.Input((inputs,)), keras.layers.Dense(8, activation="relu"), keras.layers.Dense(outputs)]
    )


def make_two_headed() -> keras.Model:
    """Named dict inputs, a dict of two outputs."""
    keras.utils.set_random_seed(0)
    amount = keras.Input((1,), name="amount")
    country = keras.Input((3,), name="country")
    joined = keras.layers.Concatenate()([amount, country])
    hidden = keras.layers.Dense(4, activation="relu")(joined)
    outputs = {
        "fraud": keras.layers.Dense(1, name="fraud")(hidden),
        "score": keras.layers.Dense(2, name="score")(hidden),
    }
    return keras.Model({"amount": amount, "country": country}, outputs)


def rows(n: int, width: int = 4) -> np.ndarray:
    return np.random.default_rng(n).random((n, width), dtype=np.float32)


def logged(prediction: object) -> object:
    """The values of a logged prediction: a network's rows of class scores come as ``{"values", "_meta"}``
    with ``_meta.output`` (logits or probabilities), the SDK's reading of them."""
    if isinstance(prediction, dict) and "output" in prediction.get("_meta", {}):
        return prediction["values"]
    return prediction
