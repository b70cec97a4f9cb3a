"""Caller-thread cost of aither-tf per call, for a small Keras MLP, against the bare call, side by side.

    .venv/bin/python benchmarks/bench_tf.py [--calls 200] [--predict-calls 10] [--rounds 15] [--batch 32]
        [--baseline OTHER_CHECKOUT/packages/aither-tf/src]

Spans go to aither's in-memory capture (no network, no encoding): the numbers are what aither adds on the
calling thread. ``model.predict`` is tens of milliseconds per call in Keras itself, so it gets fewer calls per
round. The bare call, the tracked call (and, with ``--baseline``, the same call tracked by another version of
aither-tf, for before/after in one run) are timed in alternating rounds; each row gives the median of the rounds
and, for the added cost, the median and the interquartile range of the per-round differences.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pathlib
import platform
import statistics
import sys
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf
from _timing import alternating, iqr

import aither_tf
from aither.integrations import ModelLogger, WrapOptions
from aither.testing import capture


def load_baseline_tracked(src: str) -> Any:
    """``TrackedKerasModel`` of another checkout's ``src`` folder (its package imported as ``aither_tf_baseline``)."""
    folder = pathlib.Path(src) / "aither_tf"
    spec = importlib.util.spec_from_file_location(
        "aither_tf_baseline", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None, f"no aither_tf package in {src}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return importlib.import_module("aither_tf_baseline._tracked").TrackedKerasModel


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--predict-calls", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--baseline", help="another checkout's packages/aither-tf/src, timed beside this one")
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
    with capture() as captured:
        classes = {"tracked": aither_tf.TrackedKerasModel}
        if args.baseline:
            classes["baseline"] = load_baseline_tracked(args.baseline)
        wrapped = {name: cls(model, ModelLogger(WrapOptions("bench"), "tensorflow")) for name, cls in classes.items()}
        callback = aither_tf.Callback("bench_by_hand")
        calls = alternating(
            {"bare": lambda: model(xt)} | {name: (lambda t=t: t(xt)) for name, t in wrapped.items()},
            args.calls,
            args.rounds,
        )
        predicts = alternating(
            {"bare": lambda: model.predict(x, verbose=0)}
            | {name: (lambda t=t: t.predict(x, verbose=0)) for name, t in wrapped.items()}
            | {"by hand": lambda: model.predict(x, callbacks=[callback], verbose=0)},
            args.predict_calls,
            args.rounds,
        )
        recorded = len(captured.records)
    print(f"aither-tf, Keras MLP 32-64-64-10, batch {args.batch}, backend {keras.backend.backend()}")
    print(f"keras {keras.__version__}, tensorflow {tf.__version__}, Python {platform.python_version()}; "
          f"{args.rounds} rounds of {args.calls} calls / {args.predict_calls} predicts")  # fmt: skip
    print("| call | us/call | added us (IQR) |")
    print("|---|---:|---:|")
    for what, times in (("model(x)", calls), ("model.predict(x)", predicts)):
        bare = times["bare"]
        print(f"| {what}, bare | {statistics.median(bare):.0f} | 0 |")
        for name, rounds in times.items():
            if name == "bare":
                continue
            added = [t - b for t, b in zip(rounds, bare, strict=True)]
            call = "tracked(x)" if what == "model(x)" else "tracked.predict(x)"
            label = {"tracked": call, "baseline": f"{call}, baseline", "by hand": "predict + Callback by hand"}[name]
            spread = f"{statistics.median(added):+.0f} ({iqr(added)})"
            print(f"| {label} | {statistics.median(rounds):.0f} | {spread} |")
    print(f"({recorded} spans recorded)")


if __name__ == "__main__":
    main()
