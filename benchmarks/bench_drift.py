"""Drift benchmarks (issue 12), each beside its baseline in the same run. Prints a Markdown table.

  .venv/bin/python benchmarks/bench_drift.py            # all
  .venv/bin/python benchmarks/bench_drift.py sampling   # one: sampling, reference, query

a. caller-thread cost per predict of today's sampler (random rows, rotating window, schema once) against
   the previous one (first 5 rows, first 10 columns), pandas 10 / 1,000 / 50,000 rows x 100 columns,
   interleaved in one run
b. ``log_reference``'s profiling of 1,000,000 x 100 (90 numeric, 10 categorical columns) and its JSON body
c. drift + data quality for 100 features over 30 days of hourly sketches (1,000,000 predictions of one row,
   5 rows sampled of each call, a 10-column window of 100 columns: about 139 values per feature-hour), on
   SQLite; and the sketch bytes per feature-hour
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from bench_core import QUIET, interleaved_us, row

import aither
from aither._capture import Captured
from aither.testing import OTLPReceiver


def _previous_render(data: tuple[Any, tuple[int, int], int]) -> Any:
    head, shape, columns = data
    sub = head.iloc[:, :columns]
    names = [str(c) for c in sub.columns]
    records = [dict(zip(names, r, strict=True)) for r in sub.itertuples(index=False, name=None)]
    return {
        "sample": records,
        "_meta": {
            "type": "pandas.DataFrame",
            "shape": list(shape),
            "columns": names,
            "dtypes": {name: str(dtype) for name, dtype in zip(names, sub.dtypes, strict=True)},
            "truncated": shape[0] > len(head) or shape[1] > columns,
        },
    }


def _previous_capture(value: Any, rows: int, columns: int) -> Captured:
    """The sampler before issue 12: the first rows and the first columns (copied from its last version)."""
    head = value.head(rows)
    shape = value.shape
    return Captured(_previous_render, (head, shape, columns), shape[0], 2048 + 64 * rows * min(columns, shape[1]))


def bench_sampling() -> None:
    import pandas as pd

    from aither._capture import capture_pandas_frame  # type: ignore[attr-defined]

    print("a. caller-thread cost per predict, pandas x 100 columns: previous sampler vs representative one")

    class FrameModel:
        def predict(self, frame: Any) -> Any:
            return 0

    receiver = OTLPReceiver().start()
    aither.init(**QUIET, api_key="aith_bench", base_url=receiver.url)
    tracked = aither.wrap(FrameModel(), name="frame")
    model = FrameModel()
    for rows, mixed in ((10, False), (1_000, False), (50_000, False), (1_000, True)):
        frame = pd.DataFrame(np.random.default_rng(0).normal(size=(rows, 100)), columns=[f"f{i}" for i in range(100)])
        if mixed:  # a string column: several blocks, the take() path
            frame["f1"] = "A"
        # The samplers themselves on one plain frame, interleaved; and the whole wrapped call with the new one.
        times = interleaved_us(
            {
                "bare": lambda frame=frame: model.predict(frame),
                "wrapped": lambda frame=frame: tracked.predict(frame),
                "new": lambda frame=frame: capture_pandas_frame(frame, 5, 10),
                "old": lambda frame=frame: _previous_capture(frame, 5, 10),
            },
            block=200,
            rounds=15,
        )
        row(
            f"sampler on the calling thread, pandas {rows:,} x 100{' (one string column)' if mixed else ''}",
            f"{times['new']:.1f} µs (random rows, rotating window)",
            f"{times['old']:.1f} µs (first rows and columns)",
            f"{times['new'] / times['old']:.2f}x; whole wrapped predict adds {times['wrapped'] - times['bare']:.1f} µs",
        )
        aither.flush(60)
    aither.close()
    receiver.stop()


def bench_reference() -> None:
    import pandas as pd

    from aither.profile import profile_table

    print("b. log_reference profiling, 1,000,000 x 100")
    rng = np.random.default_rng(1)
    columns: dict[str, Any] = {f"n{i}": rng.normal(size=1_000_000) for i in range(90)}
    for i in range(10):
        columns[f"c{i}"] = pd.Series(rng.choice(np.array(["red", "green", "blue", "black"]), size=1_000_000))
    frame = pd.DataFrame(columns)
    start = time.perf_counter()
    profiles = profile_table(frame)
    profiled = time.perf_counter() - start
    body = json.dumps({name: p.to_json() for name, p in profiles.items()})
    encoded = time.perf_counter() - start
    row(
        "log_reference profile of 1,000,000 x 100 (90 numeric, 10 categorical)",
        f"{profiled:.2f} s ({encoded:.2f} s with the JSON body, {len(body) / 1024:.0f} KiB)",
        "",
        f"target <= 10 s: {'met' if encoded <= 10 else 'NOT met'}",
    )


def bench_query() -> None:
    from aither.profile import profile_column, profile_values
    from aither_server import Store
    from aither_server.drift.query import data_quality, drift
    from aither_server.drift.sketches import HOUR_NS
    from aither_server.drift.store import DriftStore
    from aither_server.store.engine import sqlalchemy_engine

    print("c. drift + data quality, 100 features x 720 hourly sketches, SQLite")
    rng = np.random.default_rng(2)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "drift.db"
        store = Store(path)
        drift_store = DriftStore(sqlalchemy_engine(f"sqlite:///{path}"))
        first_hour = (time.time_ns() - 30 * 24 * HOUR_NS) // HOUR_NS
        names = [f"f{i}" for i in range(100)]
        sizes = []
        build = time.perf_counter()
        for hour in range(first_hour, first_hour + 720):
            profiles = {}
            for name in names:
                (profile,) = profile_values(rng.normal(size=139).tolist(), "float64")
                sizes.append(len(profile.sketch))
                profiles[(("bench", "", ""), hour, "feature", name)] = [profile]
            drift_store.add_hours(profiles, {(("bench", "", ""), hour): dict.fromkeys(names, "float64")}, {})
        built = time.perf_counter() - build
        reference = {"features": {n: profile_column(rng.normal(size=100_000)).to_json() for n in names}}
        drift_store.put_reference("bench", "", "", "training", 100_000, json.dumps(reference))
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            found = drift(drift_store, "bench")
            quality = data_quality(drift_store, "bench")
            best = min(best, time.perf_counter() - start)
        assert len(found["features"]) == 100 and len(quality["features"]) == 100
        row(
            "drift + data quality, 100 features, 30 days of hourly sketches (72,000)",
            f"{best:.2f} s",
            f"writing them: {built:.0f} s",
            f"target <= 1 s: {'met' if best <= 1 else 'NOT met'}",
        )
        row(
            "sketch bytes per feature-hour (KLL k=200, ~139 values)",
            f"{np.mean(sizes):.0f} B mean, {np.max(sizes)} B max",
            "",
            "",
        )
        drift_store.engine.dispose()
        store.close()


def main() -> None:
    which = set(sys.argv[1:]) or {"sampling", "reference", "query"}
    if "sampling" in which:
        bench_sampling()
    if "reference" in which:
        bench_reference()
    if "query" in which:
        bench_query()
    from bench_core import ROWS as rows

    print("\n| measure | result | baseline | verdict |\n| --- | --- | --- | --- |")
    for measure, result, baseline, verdict in rows:
        print(f"| {measure} | {result} | {baseline} | {verdict} |")


if __name__ == "__main__":
    main()
