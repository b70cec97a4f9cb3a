"""Caller-thread cost of aither-tf per call, for a small Keras MLP, against the bare call, side by side.

    .venv/bin/python benchmarks/bench_tf.py [--calls 2000] [--predict-calls 200] [--batch 32]

Spans go to aither's in-memory capture (no network, no encoding): the numbers are what aither adds on the
calling thread. ``model.predict`` is milliseconds per call in Keras itself, so it gets fewer calls.
"""

from __future__ import annotations

import argparse
import os
import platform

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _timing import per_call_us, print_added

import aither
import aither_tf
from aither.testing import capture


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--predict-calls", type=int, default=200)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((32,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    x = np.random.default_rng(0).random((args.batch, 32), dtype=np.float32)
    xt = tf.constant(x)
    calls, predicts = args.calls, args.predict_calls
    bare_call = per_call_us(lambda: model(xt), calls, warmup=50)
    bare_predict = per_call_us(lambda: model.predict(x, verbose=0), predicts, warmup=50)
    with capture() as captured:
        tracked = aither.wrap(model, name="bench")
        callback = aither_tf.Callback("bench_by_hand")
        tracked_call = per_call_us(lambda: tracked(xt), calls, warmup=50)
        tracked_predict = per_call_us(lambda: tracked.predict(x, verbose=0), predicts, warmup=50)
        hand_predict = per_call_us(lambda: model.predict(x, callbacks=[callback], verbose=0), predicts, warmup=50)
        recorded = len(captured.records)
    rows = [
        ("model(x), bare", bare_call, 0.0),
        ("tracked(x)", tracked_call, tracked_call - bare_call),
        ("model.predict(x), bare", bare_predict, 0.0),
        ("tracked.predict(x)", tracked_predict, tracked_predict - bare_predict),
        ("predict + Callback by hand", hand_predict, hand_predict - bare_predict),
    ]
    print(f"aither-tf, Keras MLP 32-64-64-10, batch {args.batch}, backend {keras.backend.backend()}")
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, Python {platform.python_version()}")
    print_added(rows, 28)
    print(f"({recorded} spans recorded)")


if __name__ == "__main__":
    main()
