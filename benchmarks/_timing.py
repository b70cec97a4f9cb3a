"""Timing loops shared by the plugin benchmarks (``bench_torch.py``, ``bench_tf.py``, ``bench_hf.py``,
``bench_tinygrad.py``): microseconds per call, the median of several rounds."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any


def timed(function: Callable[[], Any], calls: int) -> float:
    """Mean microseconds per call over ``calls`` calls."""
    start = time.perf_counter_ns()
    for _ in range(calls):
        function()
    return (time.perf_counter_ns() - start) / calls / 1000


def per_call_us(function: Callable[[], Any], calls: int, rounds: int = 5, warmup: int = 500) -> float:
    """Median over ``rounds`` of :func:`timed`, after ``min(calls, warmup)`` untimed calls."""
    for _ in range(min(calls, warmup)):
        function()
    return statistics.median(timed(function, calls) for _ in range(rounds))


def side_by_side(
    bare: Callable[[], Any], tracked: Callable[[], Any], calls: int, rounds: int = 5, warmup: int = 10
) -> tuple[float, float]:
    """Median microseconds per call of ``bare`` and of ``tracked``, timed in alternating rounds."""
    for _ in range(warmup):
        bare()
        tracked()
    bare_us, tracked_us = [], []
    for _ in range(rounds):
        bare_us.append(timed(bare, calls))
        tracked_us.append(timed(tracked, calls))
    return statistics.median(bare_us), statistics.median(tracked_us)


def print_added(rows: list[tuple[str, float, float]], width: int) -> None:
    """A plain table of ``(call, us/call, added us)`` rows, the first column ``width`` characters wide."""
    print(f"{'call':<{width}}{'us/call':>10}{'added us':>10}")
    for name, us, added in rows:
        print(f"{name:<{width}}{us:>10.1f}{added:>10.1f}")


def alternating(variants: dict[str, Callable[[], Any]], calls: int, rounds: int) -> dict[str, list[float]]:
    """Microseconds per call of each variant in each round, the variants timed one after the other per round."""
    for function in variants.values():
        for _ in range(10):
            function()
    times: dict[str, list[float]] = {name: [] for name in variants}
    for _ in range(rounds):
        for name, function in variants.items():
            times[name].append(timed(function, calls))
    return times


def iqr(values: list[float]) -> str:
    """The interquartile range of per-round differences, as ``+low..+high``."""
    low, _, high = statistics.quantiles(values, n=4)
    return f"{low:+.0f}..{high:+.0f}"
