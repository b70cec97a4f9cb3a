"""Caller-thread cost of aither-tinygrad per call, against the bare call, side by side.

    CC=clang-14 .venv/bin/python benchmarks/bench_tinygrad.py [--calls 100] [--rounds 15] [--batch 32]
        [--baseline OTHER_CHECKOUT/packages/aither-tinygrad/src]

A small MLP on tinygrad's CPU device. Spans go to aither's in-memory capture (no network, no encoding). A bare
tinygrad call only builds a lazy graph; the work happens when the caller realises the output, so both are
timed: ``model(x)`` alone and ``model(x).numpy()``. The bare call, the tracked call (and, with ``--baseline``,
the same call tracked by another version of aither-tinygrad, for before/after in one run) are timed in
alternating rounds of ``--calls`` calls; each row gives the median of the rounds and, for the added cost, the
median and the interquartile range of the per-round differences.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import pathlib
import platform
import shutil
import statistics
import sys
import tempfile
from collections.abc import Callable
from types import ModuleType
from typing import Any

if not os.environ.get("CC") and shutil.which("clang") is None and shutil.which("clang-14") is not None:
    os.environ["CC"] = "clang-14"
os.environ.setdefault("CACHEDB", str(pathlib.Path(tempfile.mkdtemp()) / "cache.db"))

import numpy as np
from _timing import alternating, iqr
from tinygrad import Tensor, TinyJit, nn

import aither_tinygrad
from aither.integrations import ModelLogger, WrapOptions, register_sampler
from aither.testing import capture


class MLP:
    def __init__(self) -> None:
        Tensor.manual_seed(0)
        self.l1, self.l2, self.l3 = nn.Linear(32, 64), nn.Linear(64, 64), nn.Linear(64, 10)

    def __call__(self, x: Tensor) -> Tensor:
        return self.l3(self.l2(self.l1(x).relu()).relu())


def load_baseline(src: str) -> ModuleType:
    """``aither_tinygrad`` from another checkout's ``src`` folder, imported as ``aither_tinygrad_baseline``."""
    folder = pathlib.Path(src) / "aither_tinygrad"
    spec = importlib.util.spec_from_file_location(
        "aither_tinygrad_baseline", folder / "__init__.py", submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None, f"no aither_tinygrad package in {src}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--baseline", help="another checkout's packages/aither-tinygrad/src, timed beside this one")
    args = parser.parse_args()
    model = MLP()
    data = np.random.default_rng(0).random((args.batch, 32), dtype=np.float32)
    buffer_input = Tensor(data).realize()
    jit = TinyJit(lambda x: model(x).realize())
    results = []
    with capture() as captured:
        versions: dict[str, tuple[Callable[..., Any], Any]] = {}
        aither_tinygrad.wrap(model, name="bench")  # registers this version's Tensor sampler
        versions["tracked"] = (aither_tinygrad.TrackedTinygradModel, aither_tinygrad._sampling.capture_tensor)
        if args.baseline:
            baseline = load_baseline(args.baseline)
            sampling = importlib.import_module("aither_tinygrad_baseline._sampling")
            versions["baseline"] = (baseline.TrackedTinygradModel, sampling.capture_tensor)

        def tracked_by(version: str, target: Any, **options: Any) -> Callable[[Tensor], Any]:
            cls, sampler = versions[version]
            wrapped = cls(target, ModelLogger(WrapOptions("bench"), "tinygrad"), **options)
            if len(versions) == 1:
                return wrapped  # type: ignore[no-any-return]

            def call(x: Tensor) -> Any:
                # core samples inputs through its registry: give it this version's sampler (~2 us, also paid
                # by the bare call below so that the difference stays aither's own)
                register_sampler("tinygrad", "Tensor", sampler)
                return wrapped(x)

            return call

        def bare(target: Callable[[Tensor], Any]) -> Callable[[Tensor], Any]:
            if len(versions) == 1:
                return target
            sampler = versions["tracked"][1]

            def call(x: Tensor) -> Any:
                register_sampler("tinygrad", "Tensor", sampler)
                return target(x)

            return call

        def row(
            label: str, target: Any, make: Callable[[], Tensor], then: Callable[[Any], Any], **options: Any
        ) -> None:
            callers = {"bare": bare(target)} | {v: tracked_by(v, target, **options) for v in versions}
            variants = {name: (lambda f=f: then(f(make()))) for name, f in callers.items()}
            results.append((label, alternating(variants, args.calls, args.rounds)))

        keep: Callable[[Any], Any] = lambda out: out  # noqa: E731
        to_numpy: Callable[[Any], Any] = lambda out: out.numpy()  # noqa: E731
        row("model(x), x a realised buffer", model, lambda: buffer_input, keep)
        row("model(Tensor(numpy))", model, lambda: Tensor(data), keep)
        row("model(x + 0), x lazy", model, lambda: buffer_input + 0, keep)
        row("model(x).numpy()", model, lambda: buffer_input, to_numpy)
        row("model(x).numpy(), realize_output", model, lambda: buffer_input, to_numpy, realize_output=True)
        row("TinyJit model(x)", jit, lambda: buffer_input, keep)
        recorded = len(captured.records)
    from importlib.metadata import version

    print(f"aither-tinygrad: MLP 32-64-64-10, batch {args.batch}, tinygrad CPU device (CC={os.environ.get('CC')})")
    print(f"tinygrad {version('tinygrad')}, numpy {np.__version__}, Python {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} CPUs; {args.rounds} rounds of {args.calls} calls")  # fmt: skip
    names = [name for name in ("tracked", "baseline") if name in versions]
    header = "".join(f" | {name} us | added us (IQR)" for name in names)
    print(f"| call | bare us{header} |")
    print("|---|---:|" + "---:|---:|" * len(names))
    for label, times in results:
        cells = [f"{statistics.median(times['bare']):.0f}"]
        for name in names:
            added = [t - b for t, b in zip(times[name], times["bare"], strict=True)]
            cells.append(f"{statistics.median(times[name]):.0f}")
            cells.append(f"{statistics.median(added):+.0f} ({iqr(added)})")
        print(f"| {label} | " + " | ".join(cells) + " |")
    print(f"({recorded} spans recorded)")


if __name__ == "__main__":
    main()
