"""aither-torch on a CUDA device: what the hooks add per call, beside the bare call, in one run.

    python benchmarks/bench_torch_cuda.py [--calls 2000] [--batch 4096]

The module runs on the GPU with inputs already there. The bare loop queues kernels and never waits; if the hooks
copied a whole batch to the host or synchronised, the tracked loop would stall on every call. Each loop ends with
one ``torch.cuda.synchronize()``, so both numbers include the GPU work itself. Spans go to the in-memory capture.
"""

from __future__ import annotations

import argparse
import time

import torch
from _timing import side_by_side

import aither
from aither.testing import capture


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=4096)
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to measure")
        return
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.ReLU(), torch.nn.Linear(1024, 10)).cuda()
    x = torch.randn(args.batch, 256, device="cuda")

    def bare() -> None:
        with torch.inference_mode():
            model(x)

    with capture() as captured:
        # The same layers in a second container: the hooks sit on it alone, so ``bare`` stays unhooked.
        tracked_model = aither.wrap(torch.nn.Sequential(*model), name="cuda_mlp")

        def hooked() -> None:
            with torch.inference_mode():
                tracked_model(x)

        started = time.perf_counter()
        bare_us, tracked_us = side_by_side(bare, hooked, args.calls)
        torch.cuda.synchronize()
        elapsed = time.perf_counter() - started
        spans = captured.predictions()
    print(f"device: {torch.cuda.get_device_name()}, torch {torch.__version__}, batch {args.batch} x 256")
    print("| call | µs/call (kernels queued, no sync per call) | added |")
    print("| --- | ---: | ---: |")
    print(f"| `model(x)` bare | {bare_us:.1f} | |")
    print(f"| `tracked(x)`, hooked | {tracked_us:.1f} | {tracked_us - bare_us:+.1f} |")
    print(
        f"spans recorded: {len(spans)}; sample device: {spans[-1].features['_meta']['device']}; "
        f"sample shape: {spans[-1].features['_meta']['shape']}; total {elapsed:.1f} s"
    )


if __name__ == "__main__":
    main()
