"""Ingestion's inserts: the store's path (Core statements through its bridge) against the same statements as
driver strings and through SQLAlchemy's own execution, on SQLite and PostgreSQL. Prints a table.

    .venv/bin/python benchmarks/server_core_inserts.py [--spans 16000] [--engines sqlite,postgresql]

Issue 11 asks for SQLAlchemy Core unless it is measured not to meet the ingestion targets. This measures the
part Core would replace: writing the ``predictions`` row and the 5 ``prediction_rows`` of each SDK-shape span
(5x10 feature sample, 5-row prediction), 100 spans per transaction, with the same values four ways:

- the store's path: Core ``insert()`` statements built once, run by ``engine.run_many`` on the store's own
  connection (compiled once for the driver; sqlite3's ``executemany``, or COPY on PostgreSQL), as
  ``store/predictions.py`` writes them;
- the same rows as an SQL string in the driver's spelling, ``executemany`` on the store's connection (what the
  store did before its statements were Core);
- SQLAlchemy Core, ``connection.execute(insert(table), rows)`` with the rows as dicts (its "insertmanyvalues"
  batching on PostgreSQL; ``executemany`` on SQLite);
- SQLAlchemy Core with the driver's own cursor (``exec_driver_sql``): Core's connection and transaction
  handling only.

The time is the inserts alone (the rows are built before), so the difference is what Core adds per row. Both
engines' targets (24,000 and 12,000 spans/s) leave 42 and 83 us per span for all of ingestion.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from server_ingest import postgres_cluster
from sqlalchemy import Insert, MetaData, Table, bindparam, create_engine, insert

from aither_server import Store
from aither_server.store import core_tables
from aither_server.store.engine import run_many

PER_TRANSACTION = 100
COLUMNS = 10
ROWS = 5


def spans(n: int, first_id: int) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``n`` spans' predictions rows and prediction_rows rows, as dicts (Core's shape; tuples for the driver)."""
    features = json.dumps(
        {"sample": [{f"f{c}": round(0.37 * r + 0.11 * c, 3) for c in range(COLUMNS)} for r in range(ROWS)]}
    )
    now = time.time_ns()
    predictions, rows = [], []
    for i in range(n):
        pred_id = first_id + i
        predictions.append(
            {
                "id": pred_id,
                "trace_key": int.from_bytes(os.urandom(8), "big", signed=True),
                "trace_id": os.urandom(16),
                "span_id": os.urandom(8),
                "model_id": 1,
                "name": "predict",
                "method": "predict",
                "framework": "sklearn",
                "start_ns": now + i,
                "latency_ns": 250_000,
                "status": 0,
                "n_rows": ROWS,
                "batch_size": ROWS,
                "features": features,
                "prediction": json.dumps([r % 2 for r in range(ROWS)]),
                "service_name": "bench",
                "received_ns": now,
            }
        )
        for r in range(ROWS):
            rows.append(
                {
                    "pred_id": pred_id,
                    "row": r,
                    "model_id": 1,
                    "start_ns": now + i,
                    "kind": 0,
                    "pred_key": str(r % 2),
                    "pred_num": float(r % 2),
                }
            )
    return predictions, rows


def _sql(table: str, columns: list[str]) -> str:
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))})"


def _insert(table: Table, columns: list[str]) -> Insert:
    return insert(table).values({name: bindparam(name) for name in columns})


def store_path(store: Store, predictions: list[dict[str, Any]], rows: list[dict[str, Any]]) -> float:
    """The store's bridge: Core statements built once, the rows as dicts (``run_many``: sqlite3's
    ``executemany``, or COPY on PostgreSQL)."""
    pred_insert = _insert(core_tables.predictions, list(predictions[0]))
    row_insert = _insert(core_tables.prediction_rows, list(rows[0]))
    start = time.perf_counter()
    for i in range(0, len(predictions), PER_TRANSACTION):
        with store.write() as conn:
            run_many(conn, pred_insert, predictions[i : i + PER_TRANSACTION])
            run_many(conn, row_insert, rows[i * ROWS : (i + PER_TRANSACTION) * ROWS])
    return time.perf_counter() - start


def driver_strings(store: Store, predictions: list[dict[str, Any]], rows: list[dict[str, Any]]) -> float:
    """The same rows as tuples, the SQL as a string in the driver's spelling, on the store's connection."""
    mark = "%s" if store.dialect == "postgresql" else "?"
    pred_sql = _sql("predictions", list(predictions[0])).replace("?", mark)
    row_sql = _sql("prediction_rows", list(rows[0])).replace("?", mark)
    start = time.perf_counter()
    for i in range(0, len(predictions), PER_TRANSACTION):
        with store.write() as conn:
            conn.executemany(pred_sql, [tuple(p.values()) for p in predictions[i : i + PER_TRANSACTION]])
            part = rows[i * ROWS : (i + PER_TRANSACTION) * ROWS]
            conn.executemany(row_sql, [tuple(r.values()) for r in part])
    return time.perf_counter() - start


def core(url: str, predictions: list[dict[str, Any]], rows: list[dict[str, Any]], driver_sql: bool) -> float:
    engine = create_engine(url)
    try:
        meta = MetaData()
        meta.reflect(engine, only=["predictions", "prediction_rows"])
        pred_table, row_table = meta.tables["predictions"], meta.tables["prediction_rows"]
        mark = "%s" if engine.dialect.name == "postgresql" else "?"
        pred_sql = _sql("predictions", list(predictions[0])).replace("?", mark)
        row_sql = _sql("prediction_rows", list(rows[0])).replace("?", mark)
        start = time.perf_counter()
        for i in range(0, len(predictions), PER_TRANSACTION):
            part = rows[i * ROWS : (i + PER_TRANSACTION) * ROWS]
            with engine.begin() as conn:
                if driver_sql:
                    conn.exec_driver_sql(pred_sql, [tuple(p.values()) for p in predictions[i : i + PER_TRANSACTION]])
                    conn.exec_driver_sql(row_sql, [tuple(r.values()) for r in part])
                else:
                    conn.execute(insert(pred_table), predictions[i : i + PER_TRANSACTION])
                    conn.execute(insert(row_table), part)
        return time.perf_counter() - start
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--spans", type=int, default=16_000)
    parser.add_argument("--engines", default="sqlite,postgresql")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"# inserts of {args.spans:,} SDK-shape spans (1 + {ROWS} rows each), {PER_TRANSACTION} per transaction\n")
    print("| engine | path | us per span (median of rounds) |")
    print("| --- | --- | ---: |")
    cluster = postgres_cluster() if "postgresql" in args.engines else None
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for engine in args.engines.split(","):
                results: dict[str, list[float]] = {
                    "store (Core via run_many)": [],
                    "driver strings": [],
                    "SQLAlchemy execute(insert())": [],
                    "SQLAlchemy exec_driver_sql": [],
                }
                for round_ in range(args.rounds):
                    ways: list[tuple[str, Callable[[Store, str], float]]] = [
                        ("store (Core via run_many)", lambda s, u: store_path(s, *spans(args.spans, 1))),
                        ("driver strings", lambda s, u: driver_strings(s, *spans(args.spans, 1))),
                        ("SQLAlchemy execute(insert())", lambda s, u: core(u, *spans(args.spans, 1), driver_sql=False)),
                        ("SQLAlchemy exec_driver_sql", lambda s, u: core(u, *spans(args.spans, 1), driver_sql=True)),
                    ]
                    for index, (name, way) in enumerate(ways):
                        target = (
                            Path(tmp) / f"{engine}-{round_}-{index}.db"
                            if engine == "sqlite"
                            else cluster.create_database()  # type: ignore[union-attr]
                        )
                        store = Store(target)
                        try:
                            results[name].append(way(store, store.sqlalchemy_url) / args.spans * 1e6)
                        finally:
                            store.close()
                for name, times in results.items():
                    print(f"| {engine} | {name} | {statistics.median(times):.1f} |")
    finally:
        if cluster is not None:
            cluster.stop()


if __name__ == "__main__":
    main()
