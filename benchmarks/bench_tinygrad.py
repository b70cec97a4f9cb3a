"""Caller-thread cost of aither-tinygrad per call, against the bare call, side by side.

    CC=clang-14 .venv/bin/python benchmarks/bench_tinygrad.py [--calls 300] [--batch 32]

A small MLP on tinygrad's CPU device. Spans go to aither's in-memory capture (no network, no encoding). A bare
tinygrad call only builds a lazy graph; the work happens when the caller realises the output, so both are
timed: ``model(x)`` alone and ``model(x).numpy()``. Bare and tracked calls are timed in alternating rounds,
median of rounds.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import platform
import shutil
import tempfile
from collections.abc import Callable
from typing import Any

if not os.environ.get("CC") and shutil.which("clang") is None and shutil.which("clang-14") is not None:
    os.environ["CC"] = "clang-14"
os.environ.setdefault("CACHEDB", str(pathlib.Path(tempfile.mkdtemp()) / "cache.db"))

import numpy as np
from _timing import side_by_side
from tinygrad import Tensor, TinyJit, nn

import aither
import aither_tinygrad
from aither.testing import capture


class MLP:
    def __init__(self) -> None:
        Tensor.manual_seed(0)
        self.l1, self.l2, self.l3 = nn.Linear(32, 64), nn.Linear(64, 64), nn.Linear(64, 10)

    def __call__(self, x: Tensor) -> Tensor:
        return self.l3(self.l2(self.l1(x).relu()).relu())


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=300)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    model = MLP()
    data = np.random.default_rng(0).random((args.batch, 32), dtype=np.float32)
    buffer_input = Tensor(data).realize()
    jit = TinyJit(lambda x: model(x).realize())
    rows = []
    with capture() as captured:
        tracked = aither.wrap(model, name="bench")
        realizing = aither_tinygrad.wrap(model, name="bench", realize_output=True)
        tracked_jit = aither_tinygrad.wrap(jit, name="bench")
        cases: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            ("model(x), x a realised buffer", lambda: model(buffer_input), lambda: tracked(buffer_input)),
            ("model(Tensor(numpy))", lambda: model(Tensor(data)), lambda: tracked(Tensor(data))),
            ("model(x + 0), x lazy", lambda: model(buffer_input + 0), lambda: tracked(buffer_input + 0)),
            ("model(x).numpy()", lambda: model(buffer_input).numpy(), lambda: tracked(buffer_input).numpy()),
            (
                "model(x).numpy(), realize_output",
                lambda: model(buffer_input).numpy(),
                lambda: realizing(buffer_input).numpy(),
            ),
            ("TinyJit model(x)", lambda: jit(buffer_input), lambda: tracked_jit(buffer_input)),
        ]
        for label, bare, wrapped in cases:
            bare_us, tracked_us = side_by_side(bare, wrapped, args.calls)
            rows.append((label, bare_us, tracked_us))
        recorded = len(captured.records)
    from importlib.metadata import version

    print(f"aither-tinygrad: MLP 32-64-64-10, batch {args.batch}, tinygrad CPU device (CC={os.environ.get('CC')})")
    print(f"tinygrad {version('tinygrad')}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs")  # fmt: skip
    print(f"| {'call':<34} | {'bare us':>9} | {'tracked us':>10} | {'added us':>9} |")
    print(f"|{'-' * 36}|{'-' * 10}:|{'-' * 11}:|{'-' * 10}:|")
    for label, bare_us, tracked_us in rows:
        print(f"| {label:<34} | {bare_us:>9.0f} | {tracked_us:>10.0f} | {tracked_us - bare_us:>+9.0f} |")
    print(f"({recorded} spans recorded)")


if __name__ == "__main__":
    main()
