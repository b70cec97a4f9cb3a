"""Retention: old predictions and labels are deleted in bounded batches; rollups are kept longer."""

from __future__ import annotations

import time

from conftest import Server
from otlp_builders import label_span, new_trace_id, prediction_span

from aither_server.store.retention import Retention, RetentionThread, expire

_DAY_NS = 86_400 * 10**9


def _count(server: Server, sql: str) -> int:
    return int(server.sql(sql)[0][0])


def test_old_predictions_and_labels_go_in_batches_and_their_rollups_stay(server: Server) -> None:
    now = time.time_ns()
    old = now - 200 * _DAY_NS
    old_traces = [new_trace_id() for _ in range(30)]
    new_trace = new_trace_id()
    server.ingest([prediction_span("clf", [1, 0], trace_id=t, start_ns=old) for t in old_traces])
    server.ingest([label_span(t, [1, 1], time_ns=old) for t in old_traces])
    server.ingest([prediction_span("clf", [1], trace_id=new_trace), label_span(new_trace, 1)])
    minutes = _count(server, "SELECT count(*) FROM volume_minutes")

    done = expire(server.thread.store, Retention(raw_days=90, rollup_days=None), batch=7)

    assert (done.predictions, done.labels) == (30, 60)
    assert done.transactions >= 30 // 7 + 60 // 7  # bounded batches, each its own transaction
    assert server.http.get(f"/api/v1/predictions/{old_traces[0].hex()}").status_code == 404
    assert server.get(f"/api/v1/predictions/{new_trace.hex()}")["labels"] == {"0": 1}
    assert _count(server, "SELECT count(*) FROM prediction_rows") == 1
    assert _count(server, "SELECT count(*) FROM label_spans") == 1
    assert _count(server, "SELECT count(*) FROM volume_minutes") == minutes  # rollups kept

    done = expire(server.thread.store, Retention(raw_days=None, rollup_days=90), batch=7)
    assert done.rollup_rows > 0
    assert (
        _count(server, f"SELECT count(*) FROM volume_minutes WHERE minute < {(now - 90 * _DAY_NS) // (60 * 10**9)}")
        == 0
    )
    assert server.metrics("clf")["calls"] == 1


def test_the_retention_thread_deletes_old_rows_on_its_own(server: Server) -> None:
    old = time.time_ns() - 200 * _DAY_NS
    server.ingest([prediction_span("clf", [1], start_ns=old), prediction_span("clf", [1])])
    thread = RetentionThread(server.thread.store, Retention(raw_days=90, rollup_days=None), first_s=0.0).start()
    try:
        deadline = time.monotonic() + 30
        while _count(server, "SELECT count(*) FROM predictions") > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        thread.stop()
    assert _count(server, "SELECT count(*) FROM predictions") == 1


def test_nothing_is_deleted_without_an_age(server: Server) -> None:
    server.ingest([prediction_span("clf", [1], start_ns=time.time_ns() - 5000 * _DAY_NS)])
    done = expire(server.thread.store, Retention(raw_days=None, rollup_days=None))
    assert (done.predictions, done.labels, done.rollup_rows) == (0, 0, 0)
    assert _count(server, "SELECT count(*) FROM predictions") == 1


def test_drift_sketches_are_rollups_and_go_with_them(server: Server) -> None:
    now = time.time_ns()
    features = {"sample": [{"x": 1.5, "k": "a"}], "_meta": {"rows": [0], "dtypes": {"x": "float64", "k": "str"}}}
    server.ingest(
        [
            prediction_span("clf", [1], features=features, start_ns=now - 800 * _DAY_NS),
            prediction_span("clf", [1], features=features, start_ns=now),
        ]
    )
    cutoff_hour = (now - 730 * _DAY_NS) // (3600 * 10**9)
    old = f"SELECT count(*) FROM drift_sketches WHERE hour < {cutoff_hour}"
    old_columns = f"SELECT count(*) FROM drift_columns WHERE hour < {cutoff_hour}"
    kept = "SELECT count(*) FROM drift_sketches WHERE span = 1"
    deadline = time.monotonic() + 60
    while _count(server, kept) < 4 and time.monotonic() < deadline:  # the feeder merges about once a second
        time.sleep(0.05)
    assert _count(server, old) > 0 and _count(server, old_columns) > 0
    hours_before = _count(server, kept)

    done = expire(server.thread.store, Retention(raw_days=None, rollup_days=730), batch=2)

    assert _count(server, old) == 0 and _count(server, old_columns) == 0
    assert _count(server, kept) == hours_before // 2  # this hour's sketches stay
    assert done.rollup_rows >= hours_before
