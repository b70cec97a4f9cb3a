"""Caller-thread cost of aither-torch per call, for a small MLP, against the bare call, side by side.

    .venv/bin/python benchmarks/bench_torch.py [--calls 20000] [--batch 32]

Spans go to aither's in-memory capture (no network, no encoding), so the numbers are what the hooks add on the
calling thread: time stamps, the bounded sample (random rows of a table, or whole sampled rows of images) and
the record. Each row is the median of several timed rounds of ``--calls`` calls. The last table is the worker's
cost of rendering one span's features (a table's rows, or the images' per-channel descriptors): off the
caller's thread.
"""

from __future__ import annotations

import argparse
import copy
import platform
import statistics

import torch
from _timing import alternating, per_call_us, print_added, side_by_side

import aither
from aither._capture import capture_embeddings, render
from aither.testing import capture


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=32)
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    ).eval()
    x = torch.randn(args.batch, 32)
    rows: list[tuple[str, float, float]] = []
    with torch.inference_mode():
        bare = per_call_us(lambda: model(x), args.calls)
        with capture() as captured:
            tracked = aither.wrap(model, name="bench")
            hooked = per_call_us(lambda: model(x), args.calls)
            through = per_call_us(lambda: tracked(x), args.calls)
            predict = per_call_us(lambda: tracked.predict(x), args.calls)
            recorded = len(captured.records)
            tracked.unwrap()
        after = per_call_us(lambda: model(x), args.calls)
    rows = [
        ("model(x), bare", bare, 0.0),
        ("model(x), hooked", hooked, hooked - bare),
        ("tracked(x)", through, through - bare),
        ("tracked.predict(x)", predict, predict - bare),
        ("model(x) after unwrap()", after, after - bare),
    ]
    print(f"aither-torch, MLP 32-64-64-10, batch {args.batch}, inference_mode, 1 torch thread")
    print(f"torch {torch.__version__}, Python {platform.python_version()}, {platform.machine()}")
    print_added(rows, 26)
    print(f"({recorded} spans recorded)")
    _observed(args.calls)


def _observed(calls: int) -> None:
    """The columns drift profiles: named features of a table, descriptors of images; bare and tracked alternate."""
    names = [f"f{j}" for j in range(32)]
    mlp = torch.nn.Sequential(torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)).eval()
    conv = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 10),
    ).eval()
    table = torch.randn(32, 32)
    images = torch.rand(32, 3, 32, 32)
    rows: list[tuple[str, float, float]] = []
    renders: list[tuple[str, float, float]] = []
    with torch.inference_mode(), capture() as captured:
        for label, model, x, options in (
            ("MLP, 32 features, feature_names", mlp, table, {"feature_names": names}),
            ("conv, images 32x3x32x32", conv, images, {}),
        ):
            bare_model = copy.deepcopy(model)  # the same weights, never hooked: the bare call in the same rounds
            aither.wrap(model, name="observed", **options)
            bare, tracked = side_by_side(lambda b=bare_model, v=x: b(v), lambda m=model, v=x: m(v), calls)
            rows.append((label, bare, tracked - bare))
            record = captured.records[-1]
            renders.append((f"render: {label}", per_call_us(lambda r=record: render(r.features), 200, warmup=20), 0.0))
    print("\nInputs as drift columns (bare, then tracked; difference = aither on the caller's thread)")
    print_added(rows, 36)
    print("\nWorker: rendering one span's features (not on the caller's thread)")
    print_added(renders, 36)
    _embeddings(calls)


def _embeddings(calls: int) -> None:
    """``wrap(..., embeddings=True)``: the input of the last Linear, its sampled rows kept on the caller's thread
    and projected on the worker. Bare, tracked and tracked with embeddings alternate in each round."""
    base = torch.nn.Sequential(
        torch.nn.Linear(32, 64), torch.nn.ReLU(), torch.nn.Linear(64, 64), torch.nn.ReLU(), torch.nn.Linear(64, 10)
    ).eval()
    bare, plain, embedded = (copy.deepcopy(base) for _ in range(3))
    x = torch.randn(32, 32)
    with torch.inference_mode(), capture() as captured:
        aither.wrap(plain, name="plain")
        aither.wrap(embedded, name="embedded", embeddings=True)
        times = alternating(
            {"bare": lambda: bare(x), "tracked": lambda: plain(x), "embeddings": lambda: embedded(x)},
            calls // 4,
            rounds=7,
        )
        record = next(r for r in reversed(captured.records) if r.model.name == "embedded")
        project_us = per_call_us(lambda: render(record.features), 200, warmup=20)
    medians = {name: statistics.median(values) for name, values in times.items()}
    rows = [
        ("bare", medians["bare"], 0.0),
        ("tracked", medians["tracked"], medians["tracked"] - medians["bare"]),
        ("tracked, embeddings=True", medians["embeddings"], medians["embeddings"] - medians["bare"]),
    ]
    print("\nEmbeddings: MLP 32-64-64-10, batch 32, 5 sampled rows (alternating rounds; added = against bare)")
    print_added(rows, 36)
    hidden = torch.randn(32, 64)
    capture_us = per_call_us(lambda: capture_embeddings([(hidden, None)], 5), 20_000)
    print(f"caller: the sampled rows of one call's 32 x 64 hidden states, alone: {capture_us:.1f} us")
    print(f"worker: render + project one span's features and embeddings: {project_us:.1f} us")


if __name__ == "__main__":
    main()
