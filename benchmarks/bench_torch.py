"""Caller-thread cost of aither-torch per call, for a small MLP, against the bare call, side by side.

    .venv/bin/python benchmarks/bench_torch.py [--calls 20000] [--batch 32]

Spans go to aither's in-memory capture (no network, no encoding), so the numbers are what the hooks add on the
calling thread: time stamps, the bounded sample (slice + clone) and the record. Each row is the median of
several timed rounds of ``--calls`` calls.
"""

from __future__ import annotations

import argparse
import platform

import torch
from _timing import per_call_us, print_added

import aither
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


if __name__ == "__main__":
    main()
