"""The dashboard's server time with 1,000,000 stored predictions, the bytes of CSS and JS it ships, and the cost
of evaluating one monitor. Prints a table.

    .venv/bin/python benchmarks/server_dashboard.py [--predictions 1000000] [--db PATH] [--json OUT] [--last IN]

The database is filled as in ``server_query`` (one model, 30 days, half labelled; a given ``--db`` holding the
data is reused). Pages are fetched signed in, over HTTP from a server thread: one cold call, then the median and
worst of 5 warm ones. Targets (issues 13 and 24): each page <= 300 ms; JS+CSS <= 250 KB. ``--json`` writes the
figures; ``--last`` (a file written by ``--json``, by default the numbers below) prints each page's last median
beside its new one.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from server_query import KEY, MODEL, fill

import aither_server
from aither_server import ServerThread, Store

#: Medians (ms) of the last recorded run: 1,000,000 predictions, SQLite, the 2-core machine shared with other
#: work (load average about 1.7), after issue 24's second pass (revision 0018; docs/dashboard.md has the runs).
LAST_MS = {
    "models page": 37,
    "model page, 24 h": 83,
    "model page, 7 d": 156,
    "model page, 30 d": 131,
    "model page, 1 h (2 min slices)": 55,
    "segments page, 24 h": 59,
    "segments page, 30 d": 58,
    "feature page, 24 h": 10,
    "predictions page": 17,
    "predictions page, wrong only": 18,
    "predictions page, unlabelled": 88,
    "monitors page": 6,
    "evaluate accuracy over 1h": 12,
    "evaluate accuracy over 1d": 36,
    "evaluate latency_p95_ms over 1d": 37,
    "evaluate error_rate over 7d": 147,
}


def timed(call: object) -> tuple[float, float, float]:
    def once() -> float:
        t = time.perf_counter()
        response = call()  # type: ignore[operator]
        assert response.status_code in (200, 303), response.text[:300]
        return time.perf_counter() - t

    cold = once()
    warm = [once() for _ in range(5)]
    return cold, statistics.median(warm), max(warm)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--predictions", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path)
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--last", type=Path, help="a --json file whose medians are printed beside these")
    args = parser.parse_args()
    last = LAST_MS
    if args.last is not None:
        last = {label: round(median * 1000) for label, _, median, _ in json.loads(args.last.read_text())["rows"]}
    db = args.db or Path(tempfile.mkdtemp()) / "dashboard.db"
    store = Store(db)
    store.bootstrap(KEY)
    if store.reader().execute("SELECT COUNT(*) FROM predictions").fetchone()[0] < args.predictions:
        fill(store, args.predictions)
    with ServerThread(store, monitor_interval_s=0) as server:
        http = httpx.Client(base_url=server.url, timeout=120)
        login = http.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        http.post("/login", data={"api_key": KEY, "csrf": csrf.group(1)})
        api = httpx.Client(base_url=server.url, timeout=120, headers={"Authorization": f"Bearer {KEY}"})
        rows = []
        for label, path in (
            ("models page", "/"),
            ("model page, 24 h", f"/models/{MODEL}?range=24h"),
            ("model page, 7 d", f"/models/{MODEL}?range=7d"),
            ("model page, 30 d", f"/models/{MODEL}?range=30d"),
            ("model page, 1 h (2 min slices)", f"/models/{MODEL}?range=1h"),
            ("segments page, 24 h", f"/segments?model={MODEL}&range=24h"),
            ("segments page, 30 d", f"/segments?model={MODEL}&range=30d"),
            ("feature page, 24 h", f"/feature?model={MODEL}&name=a&range=24h"),
            ("predictions page", f"/predictions?model={MODEL}"),
            ("predictions page, wrong only", f"/predictions?model={MODEL}&correct=no"),
            ("predictions page, unlabelled", f"/predictions?model={MODEL}&labelled=no"),
            ("monitors page", "/monitors"),
        ):
            rows.append((label, *timed(lambda path=path: http.get(path))))
        for metric, window in (("accuracy", "1h"), ("accuracy", "1d"), ("latency_p95_ms", "1d"), ("error_rate", "7d")):
            created = api.post(
                "/api/v1/monitors",
                json={"name": "b", "model": MODEL, "metric": metric, "op": "<", "threshold": 0.5, "window": window},
            ).json()
            rows.append(
                (
                    f"evaluate {metric} over {window}",
                    *timed(lambda i=created["id"]: api.post(f"/api/v1/monitors/{i}/evaluate")),
                )
            )
        http.close()
        api.close()
    static = Path(aither_server.__file__).parent / "ui" / "static"
    shipped = sum(p.stat().st_size for p in static.iterdir() if p.suffix in (".css", ".js"))
    print(f"\n{args.predictions:,} predictions, SQLite at {db}")
    print(f"{'':<34}{'cold ms':>10}{'median ms':>11}{'worst ms':>10}{'last median':>13}")
    for label, cold, median, worst in rows:
        before = last.get(label)
        print(
            f"{label:<34}{cold * 1000:>10.0f}{median * 1000:>11.0f}{worst * 1000:>10.0f}"
            f"{'-' if before is None else before:>13}"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"predictions": args.predictions, "rows": rows}, indent=1))
    print(f"\nJS + CSS shipped: {shipped:,} bytes (no JS; target <= 250 KB)")


if __name__ == "__main__":
    main()
