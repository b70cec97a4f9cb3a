"""aither-server query latency with 1,000,000 stored predictions, side by side per route. Prints a table.

    .venv/bin/python benchmarks/server_query.py [--predictions 1000000] [--db PATH] [--engines sqlite,postgresql]
        [--postgresql-url URL]

The database is filled through the store's ingestion path (the same code /v1/traces runs, without HTTP):
one-row predictions of one model over 30 days, half of them labelled, 10% from ``predict_proba``. A given
``--db`` that already holds the data is reused. Each route is called over HTTP against a server thread; the
table shows the median and worst of 5 warm calls, after one cold call. Each engine in ``--engines`` gets its own
database (PostgreSQL: a throwaway durable cluster, as in ``server_ingest``, or ``--postgresql-url``). Targets
(issues 3 and 11): /metrics <= 1 s over 1,000,000 predictions on both engines, <= 2 s over 10,000,000 on
PostgreSQL.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from server_ingest import postgres_cluster

from aither_server import ServerThread, Store
from aither_server.model.records import LabelSpan, PredictionSpan

KEY = "aith_benchmark_key_0123456789"
MODEL = "bench-model"
#: /metrics targets (issues 3 and 11): 1 s over 1,000,000 predictions, 2 s over 10,000,000 (PostgreSQL).
TARGET_S = 1.0
TARGET_10M_S = 2.0
#: One sampled row, with its index in the batch (``_meta.rows``) as the SDK sends it: segments read it.
FEATURES = '{"sample":[{"a":1.5,"b":2.25,"c":"x"}],"_meta":{"type":"pandas.DataFrame","shape":[1,3],"rows":[0]}}'


def fill(store: Store, n: int) -> None:
    rng = random.Random(0)
    start = time.time_ns() - 30 * 86400 * 10**9
    step = 30 * 86400 * 10**9 // n
    batch = 10_000
    t0 = time.perf_counter()
    for first in range(0, n, batch):
        preds, labels = [], []
        for i in range(first, min(first + batch, n)):
            trace_id = rng.randbytes(16)
            begin = start + i * step
            proba = i % 10 == 0
            p1 = round(rng.random(), 3)
            value = [[round(1 - p1, 3), p1]] if proba else [int(p1 > 0.5)]
            preds.append(
                PredictionSpan(
                    trace_id=trace_id,
                    span_id=rng.randbytes(8),
                    model=MODEL,
                    version=str(1 + i % 2),
                    environment="prod",
                    name="predict_proba" if proba else "predict",
                    method="predict_proba" if proba else "predict",
                    framework="sklearn",
                    start_ns=begin,
                    end_ns=begin + int(rng.lognormvariate(13, 0.5)),
                    error=None,
                    batch_size=1,
                    features=FEATURES,
                    prediction=value,
                    prediction_json=str(value),
                    service_name="bench",
                )
            )
            if i % 2 == 0:
                truth = int(rng.random() < (0.8 if p1 > 0.5 else 0.2))
                labels.append(LabelSpan(trace_id, rng.randbytes(8), None, truth, begin + 10**9))
        store.ingest(preds, labels, count_call=False)
    print(f"filled {n:,} predictions in {time.perf_counter() - t0:.0f} s")


def time_route(http: httpx.Client, path: str, params: dict[str, str]) -> tuple[float, float, float]:
    t = time.perf_counter()
    response = http.get(path, params=params)
    cold = time.perf_counter() - t
    response.raise_for_status()
    warm = []
    for _ in range(5):
        t = time.perf_counter()
        http.get(path, params=params).raise_for_status()
        warm.append(time.perf_counter() - t)
    return cold, statistics.median(warm), max(warm)


def bench(store: Store, n: int, engine: str) -> None:
    store.bootstrap(KEY)
    have = store.reader().execute("SELECT coalesce(sum(predictions), 0) FROM models").fetchone()[0]
    if have < n:
        fill(store, n - have)
    stored = store.reader().execute("SELECT coalesce(sum(predictions), 0) FROM models").fetchone()[0]
    if store.path is not None:
        size = store.path.stat().st_size
    else:
        size = store.reader().execute("SELECT pg_database_size(current_database())").fetchone()[0]
    print(
        f"# aither-server queries on {engine}: {stored:,} stored predictions, {os.cpu_count()} CPUs, "
        f"{platform.machine()}, Python {platform.python_version()}, database {size / 2**20:.0f} MiB\n"
    )
    week_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 7 * 86400))
    routes = [
        ("/metrics, all time", f"/api/v1/models/{MODEL}/metrics", {}),
        ("/metrics, version=1", f"/api/v1/models/{MODEL}/metrics", {"version": "1"}),
        ("/metrics, last 7 days, 1h buckets", f"/api/v1/models/{MODEL}/metrics", {"start": week_ago, "bucket": "1h"}),
        ("/models", "/api/v1/models", {}),
        ("/predictions?limit=50", f"/api/v1/models/{MODEL}/predictions", {"limit": "50"}),
    ]
    rows = []
    with (
        ServerThread(store) as server,
        httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=120) as http,
    ):
        for label, path, params in routes:
            rows.append((label, *time_route(http, path, params)))
        metrics = http.get(f"/api/v1/models/{MODEL}/metrics").json()
    target = TARGET_10M_S if stored > 1_000_000 else TARGET_S
    print(f"| engine | route | cold (s) | warm median (s) | warm max (s) | target {target:g} s (metrics) |")
    print("| --- | --- | ---: | ---: | ---: | --- |")
    for label, cold, median, worst in rows:
        verdict = ("met" if worst <= target else "MISSED") if "metrics" in label else "-"
        print(f"| {engine} | {label} | {cold:.3f} | {median:.3f} | {worst:.3f} | {verdict} |")
    print(
        f"\npredictions={metrics['predictions']:,} labels={metrics['labels']:,} accuracy={metrics['accuracy']:.3f} "
        f"auc={metrics['auc']:.3f} p50={metrics['latency_ms']['p50']:.3f} ms\n"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=None, help="the SQLite database (reused if it holds the data)")
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument(
        "--postgresql-url", default=None, help="an existing PostgreSQL database (reused if it holds the data)"
    )
    args = parser.parse_args()
    for engine in args.engines.split(","):
        if engine == "postgresql" and args.postgresql_url:
            store = Store(args.postgresql_url)
            try:
                bench(store, args.predictions, engine)
            finally:
                store.close()
            continue
        if engine == "postgresql":
            cluster = postgres_cluster()
            try:
                store = Store(cluster.create_database())
                try:
                    bench(store, args.predictions, engine)
                finally:
                    store.close()
            finally:
                cluster.stop()
            continue
        with tempfile.TemporaryDirectory() as tmp:
            store = Store(args.db or Path(tmp) / "bench.db")
            try:
                bench(store, args.predictions, engine)
            finally:
                store.close()


if __name__ == "__main__":
    main()
