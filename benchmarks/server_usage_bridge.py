"""What the Core bridge (``engine.run``) costs a statement: the per-request usage upsert run through it against
the same SQL as a string in the driver's own spelling (``?`` for sqlite3, ``%s`` for psycopg) handed to the
connection directly, on SQLite and PostgreSQL. Prints CPU microseconds per call (this process's, so the
database server's own work on PostgreSQL is not in it), median of interleaved blocks.

    .venv/bin/python benchmarks/server_usage_bridge.py [--calls 3000] [--engines sqlite,postgresql]

``add_usage`` runs once per ingestion request, inside its write transaction; issue 20 (item 2) made every
statement Core: this says what that costs a statement over the string it replaced.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "packages" / "aither-server" / "tests"))

from sqlalchemy import bindparam

from aither_server.store.core_tables import usage
from aither_server.store.database import Store
from aither_server.store.engine import Connection, run, upsert

_COUNTERS = ("api_calls", "predictions", "labels", "rejected_spans", "ignored_spans")
_ADD = upsert(
    usage,
    {"period": bindparam("period"), **{name: bindparam(name) for name in _COUNTERS}},
    [usage.c.period],
    lambda new: {name: usage.c[name] + new[name] for name in _COUNTERS},
)


_SQL = (
    "INSERT INTO usage (period, api_calls, predictions, labels, rejected_spans, ignored_spans)"
    " VALUES ({m}, {m}, {m}, {m}, {m}, {m})"
    " ON CONFLICT (period) DO UPDATE SET api_calls = usage.api_calls + excluded.api_calls,"
    " predictions = usage.predictions + excluded.predictions, labels = usage.labels + excluded.labels,"
    " rejected_spans = usage.rejected_spans + excluded.rejected_spans,"
    " ignored_spans = usage.ignored_spans + excluded.ignored_spans"
)
_SQL_BY_ENGINE = {"sqlite": _SQL.format(m="?"), "postgresql": _SQL.format(m="%s")}


def _string_of(dialect: str) -> Callable[[Connection], None]:
    """The upsert as the engine's driver spells it, picked once (not per call: the baseline pays nothing extra)."""
    sql = _SQL_BY_ENGINE[dialect]

    def write(conn: Connection) -> None:
        conn.execute(sql, ("2026-12", 1, 5, 0, 0, 0))

    return write


def _bridge(conn: Connection) -> None:
    run(
        conn,
        _ADD,
        {"period": "2026-12", "api_calls": 1, "predictions": 5, "labels": 0, "rejected_spans": 0, "ignored_spans": 0},
    )


def _block(store: Store, write: Callable[[Connection], None], calls: int) -> float:
    with store.write() as conn:
        start = time.process_time()
        for _ in range(calls):
            write(conn)
        return (time.process_time() - start) / calls * 1e6


def measure(target: Path | str, calls: int, rounds: int) -> dict[str, float]:
    store = Store(target)
    try:
        times: dict[str, list[float]] = {"string": [], "bridge": []}
        string = _string_of(store.dialect)
        for write in (string, _bridge):
            _block(store, write, 200)  # warm: compiled, prepared
        for _ in range(rounds):
            for name, write in (("string", string), ("bridge", _bridge)):
                times[name].append(_block(store, write, calls // rounds))
        return {name: statistics.median(values) for name, values in times.items()}
    finally:
        store.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--engines", default="sqlite,postgresql")
    args = parser.parse_args()
    print(f"{'engine':<12}{'string us/call':>16}{'bridge us/call':>16}")
    for engine in args.engines.split(","):
        with tempfile.TemporaryDirectory() as folder:
            if engine == "sqlite":
                result = measure(Path(folder) / "aither.db", args.calls, args.rounds)
            else:
                from pg_cluster import Cluster

                cluster = Cluster()
                try:
                    result = measure(cluster.create_database(), args.calls, args.rounds)
                finally:
                    cluster.stop()
        print(f"{engine:<12}{result['string']:>16.1f}{result['bridge']:>16.1f}")


if __name__ == "__main__":
    main()
