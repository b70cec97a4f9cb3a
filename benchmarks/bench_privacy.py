"""Privacy benchmarks (issue 26), each beside its baseline in the same run. Prints Markdown tables.

    .venv/bin/python benchmarks/bench_privacy.py            # both
    .venv/bin/python benchmarks/bench_privacy.py scrub      # a. the scrubber
    .venv/bin/python benchmarks/bench_privacy.py profile    # b. profile-only mode

a. Caller and worker cost of the scrubber on a 1,000-row frame with 5 string columns, against no scrubbing
   (``scrub_values=False``): with the default sample (5 rows) and with every row sampled (``sample_rows=1000``).
b. Profile-only mode's (``sample_rows=0``) caller cost per call for 1, 100 and 10,000 rows against sampling mode
   (the default 5 rows), for a pandas frame of 8 float and 2 string columns and for a numpy array of 10 floats.

Method: a constant-time model, wrapped; the receiver in its own process (``_receiver.py``), so this process's CPU
is the caller's and the worker's only. Per block of calls, ending in a flush (the worker live, sending as it goes):
the wall time of each call (p50, p99), the calling thread's CPU (``thread_time``) and the whole process's CPU
(``process_time``) per call; the worker's CPU is the difference. The variants alternate block by block over
``ROUNDS`` rounds; each figure is the median over rounds.
"""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
from _receiver import ReceiverProcess

import aither

ROUNDS = 3
TABLES: dict[str, list[str]] = {}


class Constant:
    """A model that costs next to nothing, so what is measured is aither's work."""

    def predict(self, X: Any) -> np.ndarray:
        return np.zeros(len(X))


def block(call: Callable[[], Any], calls: int) -> tuple[list[int], float, float]:
    """(wall ns of each call, caller CPU µs per call, process CPU µs per call), the block ending in a flush."""
    assert aither.flush(120)
    walls: list[int] = []
    cpu0, thread0 = time.process_time_ns(), time.thread_time_ns()
    for _ in range(calls):
        start = time.perf_counter_ns()
        call()
        walls.append(time.perf_counter_ns() - start)
    thread1 = time.thread_time_ns()
    assert aither.flush(120)
    cpu1 = time.process_time_ns()
    return walls, (thread1 - thread0) / calls / 1000, (cpu1 - cpu0) / calls / 1000


def measure(
    variants: dict[str, tuple[dict[str, Any], Callable[[], Callable[[], Any]]]], calls: int
) -> dict[str, dict[str, float]]:
    """Each variant is (init options, a maker of the call): re-initialised, then timed, alternating by round."""
    results: dict[str, dict[str, list[float]]] = {name: {} for name in variants}
    for _ in range(ROUNDS):
        for name, (options, make) in variants.items():
            aither.init(**options)
            call = make()
            for _ in range(min(calls, 20)):
                call()
            walls, caller, process = block(call, calls)
            walls.sort()
            found = {
                "p50": walls[len(walls) // 2] / 1000,
                "p99": walls[min(len(walls) - 1, int(len(walls) * 0.99))] / 1000,
                "caller_cpu": caller,
                "process_cpu": process,
                "worker_cpu": process - caller,
            }
            for key, value in found.items():
                results[name].setdefault(key, []).append(value)
    return {name: {k: statistics.median(v) for k, v in found.items()} for name, found in results.items()}


def report(lines: list[str], first_cells: str, r: dict[str, float]) -> None:
    """One table row: ``first_cells``, then the timings of one variant."""
    line = (
        f"{first_cells}| {r['p50']:.1f} / {r['p99']:.1f} | {r['caller_cpu']:.1f} | {r['worker_cpu']:.1f} | "
        f"{r['process_cpu']:.1f} |"
    )
    lines.append(line)
    print(line, flush=True)


def wrapped(data: Any, sample_rows: int) -> Callable[[], Callable[[], Any]]:
    """A maker of one wrapped call on ``data`` (wrapped after each ``init``)."""

    def make() -> Callable[[], Any]:
        model = aither.wrap(Constant(), name="bench", sample_rows=sample_rows)
        return lambda: model.predict(data)

    return make


def _texts(rng: np.random.Generator, rows: int) -> dict[str, list[str]]:
    """5 string columns; about one value in five holds personal data of some kind."""
    people = [f"customer {i}" for i in range(rows)]
    return {
        "name": people,
        "city": list(rng.choice(["Oslo", "Rome", "Lima", "Pune"], size=rows)),
        "comment": [
            f"call me on +44 20 7946 {i % 10000:04d}" if i % 5 == 0 else f"order {i} arrived late, box damaged"
            for i in range(rows)
        ],
        "contact": [f"user{i}@example.com" if i % 5 == 1 else "none given" for i in range(rows)],
        "payment": ["4111 1111 1111 1111" if i % 5 == 2 else "cash on delivery" for i in range(rows)],
    }


def bench_scrub(base: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    frame = pd.DataFrame(_texts(rng, 1000))
    print("a. scrubber, 1,000-row frame with 5 string columns", flush=True)
    lines = TABLES.setdefault("scrub", [])
    for sample_rows, calls in ((5, 400), (1000, 40)):
        variants = {
            label: ({**base, "scrub_values": scrub}, wrapped(frame, sample_rows))
            for label, scrub in (("scrubbing on", True), ("scrubbing off", False))
        }
        for label, r in measure(variants, calls).items():
            report(lines, f"| {sample_rows} | {label} ", r)


def bench_profile(base: dict[str, Any]) -> None:
    rng = np.random.default_rng(2)
    print("b. profile-only against sampling mode", flush=True)
    lines = TABLES.setdefault("profile", [])
    for kind in ("pandas", "numpy"):
        for rows, calls in ((1, 2000), (100, 1000), (10_000, 100)):
            if kind == "pandas":
                data: Any = pd.DataFrame({f"f{i}": rng.normal(size=rows) for i in range(8)})
                data["city"] = rng.choice(["Oslo", "Rome", "Lima", "Pune"], size=rows)
                data["segment"] = rng.choice(["a", "b", "c"], size=rows)
            else:
                data = rng.normal(size=(rows, 10))
            variants = {
                mode: (base, wrapped(data, sample_rows))
                for mode, sample_rows in (("sampling (5 rows)", 5), ("profile-only", 0))
            }
            bare = Constant()
            variants["bare predict"] = (base, lambda data=data, bare=bare: lambda: bare.predict(data))
            for mode, r in measure(variants, calls).items():
                report(lines, f"| {kind} | {rows:,} | {mode} ", r)


def main() -> None:
    which = set(sys.argv[1:]) or {"scrub", "profile"}
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    receiver = ReceiverProcess()
    base = {"api_key": "bench", "base_url": receiver.url, "flush_interval": 0.2, "batch_size": 100}
    try:
        if "scrub" in which:
            bench_scrub(base)
        if "profile" in which:
            bench_profile(base)
    finally:
        aither.close()
        receiver.close()
    if "scrub" in TABLES:
        print(
            "\n| rows sampled | scrubbing | wall µs per call p50 / p99 | caller CPU µs | worker CPU µs | process CPU µs |"
        )
        print("| --- | --- | --- | --- | --- | --- |")
        print("\n".join(TABLES["scrub"]))
    if "profile" in TABLES:
        print("\n| input | rows | mode | wall µs per call p50 / p99 | caller CPU µs | worker CPU µs | process CPU µs |")
        print("| --- | --- | --- | --- | --- | --- | --- |")
        print("\n".join(TABLES["profile"]))


if __name__ == "__main__":
    main()
