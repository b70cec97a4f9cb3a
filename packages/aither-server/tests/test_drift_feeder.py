"""The drift feeder: ingestion only queues spans; a flush (a query's, the thread's, the close's) merges them."""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from pathlib import Path

import pytest

from aither_server.drift.feeder import DriftFeeder, Feeder
from aither_server.drift.process import DriftProcess
from aither_server.drift.store import DriftStore
from aither_server.model.records import PredictionSpan
from aither_server.store.engine import sqlalchemy_engine
from aither_server.store.migrations import migrate


def _span(i: int, start_ns: int) -> PredictionSpan:
    features = {"sample": [{"x": float(i), "k": "a"}], "_meta": {"rows": [0], "dtypes": {"x": "float64", "k": "str"}}}
    return PredictionSpan(
        i.to_bytes(16, "big"),
        i.to_bytes(8, "big"),
        "fed",
        "",
        "",
        "predict",
        "predict",
        "generic",
        start_ns,
        start_ns + 1000,
        None,
        1,
        json.dumps(features),
        [i % 2],
        json.dumps([i % 2]),
        None,
    )


def _counts(store: DriftStore) -> dict[str, int]:
    rows = store.hour_rows("fed", None, None, None, None, hourly=True)
    return {f"{r.role}:{r.feature}": r.count for r in rows}


def _feeder(kind: str, store: DriftStore, url: str, interval_s: float) -> Feeder:
    if kind == "process":
        return DriftProcess(store, url, interval_s=interval_s)
    return DriftFeeder(store, interval_s=interval_s)


FEEDERS = ["thread", "process"]


@pytest.mark.parametrize("kind", FEEDERS)
def test_queued_spans_reach_the_sketches_on_flush_and_on_close(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "aither.db"
    migrate(db)
    store = DriftStore(sqlalchemy_engine(f"sqlite:///{db}"))
    # The timer never fires here: only explicit flushes merge.
    feeder = _feeder(kind, store, f"sqlite:///{db}", interval_s=3600)
    try:
        now = time.time_ns()
        feeder.observe([_span(i, now) for i in range(50)])
        assert _counts(store) == {}  # queued, not yet merged: ingestion did not pay for it
        feeder.flush()
        assert _counts(store) == {"feature:x": 50, "feature:k": 50, "prediction:prediction": 50}
        feeder.observe([_span(i, now) for i in range(50, 80)])
    finally:
        feeder.close()
    assert _counts(store)["feature:x"] == 80  # close merged what was left
    store.engine.dispose()


@pytest.mark.parametrize("kind", FEEDERS)
def test_the_feeder_merges_on_its_own(tmp_path: Path, kind: str) -> None:
    db = tmp_path / "aither.db"
    migrate(db)
    store = DriftStore(sqlalchemy_engine(f"sqlite:///{db}"))
    feeder = _feeder(kind, store, f"sqlite:///{db}", interval_s=0.05)
    try:
        feeder.observe([_span(i, time.time_ns()) for i in range(10)])
        deadline = time.monotonic() + 30
        while not _counts(store) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert _counts(store).get("feature:x") == 10
    finally:
        feeder.close()
        store.engine.dispose()


def test_a_drift_process_that_dies_is_replaced_by_the_thread(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "aither.db"
    migrate(db)
    store = DriftStore(sqlalchemy_engine(f"sqlite:///{db}"))
    feeder = DriftProcess(store, f"sqlite:///{db}", interval_s=3600)
    try:
        now = time.time_ns()
        feeder.observe([_span(i, now) for i in range(20)])
        feeder.flush()
        assert _counts(store)["feature:x"] == 20
        feeder._process.kill()  # an out-of-memory kill, say
        feeder._process.join()
        with caplog.at_level(logging.WARNING, logger="aither_server"):
            feeder.observe([_span(i, now) for i in range(20, 50)])
            feeder.flush()  # never raises: ingestion and queries go on
        assert "the drift process stopped" in caplog.text
        assert _counts(store)["feature:x"] == 50  # fed in this process from then on
        feeder.observe([_span(i, now) for i in range(50, 60)])
    finally:
        feeder.close()
    assert _counts(store)["feature:x"] == 60
    store.engine.dispose()


def test_rows_with_their_columns_in_another_order_or_missing_feed_each_value_to_its_column(tmp_path: Path) -> None:
    # A table's rows share their columns in one order, and are fed a column at a time; rows of dicts may
    # differ, and each value must still reach its own column's profile.
    from aither_server.drift.sketches import drift_samples, feed

    db = tmp_path / "aither.db"
    migrate(db)
    store = DriftStore(sqlalchemy_engine(f"sqlite:///{db}"))
    try:
        now = time.time_ns()
        table = _span(1, now)
        mixed = dataclasses.replace(
            table,
            trace_id=(2).to_bytes(16, "big"),
            features=json.dumps({"sample": [{"k": "b", "x": 7.0}, {"x": 9.0}, {"x": 8.0, "k": "c"}]}),
        )
        feed(store, drift_samples([table, mixed]))
        rows = store.hour_rows("fed", None, None, None, None, hourly=True)
        found = {(r.feature, r.kind): (r.count, r.min, r.max) for r in rows if r.role == "feature"}
        assert found == {("x", "numeric"): (4, 1.0, 9.0), ("k", "categorical"): (3, None, None)}
    finally:
        store.engine.dispose()
