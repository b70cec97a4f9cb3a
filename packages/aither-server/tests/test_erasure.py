"""Erasure: a trace's or an entity's predictions and labels leave every table, and the rollups /metrics reads
agree with what is left, counted by hand."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, serve_at
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from otlp_builders import label_span, new_trace_id, parse_response, prediction_span

from aither.privacy import ColumnPolicies
from aither_server.model.rollup_keys import DAY_NS, HOUR_NS, latency_bucket, score_bin
from aither_server.store.lookups import CHUNK

HASH_KEY = "server-secret"
ANN = ColumnPolicies({"e": "hash"}, hash_key=HASH_KEY.encode()).hashed("ann")
BOB = ColumnPolicies({"e": "hash"}, hash_key=HASH_KEY.encode()).hashed("bob")


@pytest.fixture
def keyed(database: Path | str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    monkeypatch.setenv("AITHER_HASH_KEY", HASH_KEY)
    yield from serve_at(database)


def _of(entity: str, span: Span) -> Span:
    span.attributes.append(KeyValue(key="ml.entity", value=AnyValue(string_value=entity)))
    return span


def _erase(server: Server, **body: Any) -> Any:
    response = server.http.post("/api/v1/erasures", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _count(server: Server, sql: str, params: dict[str, object] | None = None) -> int:
    return int(server.sql(sql, params)[0][0] or 0)


def _rollups_agree_with_raw_rows(server: Server) -> None:
    """Every rollup ingestion keeps equals its recount from the stored predictions and labelled rows."""
    assert _count(server, "SELECT sum(calls) FROM volume_minutes") == _count(server, "SELECT count(*) FROM predictions")
    rows = _count(server, "SELECT sum(n_rows) FROM predictions")
    assert _count(server, "SELECT sum(rows) FROM volume_minutes") == rows
    assert _count(server, "SELECT sum(errors) FROM volume_minutes") == _count(
        server, "SELECT count(*) FROM predictions WHERE status = 1"
    )
    assert _count(server, "SELECT sum(calls) FROM latency_hours") == _count(server, "SELECT count(*) FROM predictions")
    assert _count(server, "SELECT sum(calls) FROM instance_latency_hours") == _count(
        server, "SELECT count(*) FROM predictions"
    )
    assert _count(server, "SELECT sum(rows) FROM quality_hours") == _count(
        server, "SELECT count(*) FROM prediction_rows WHERE label_kind IS NOT NULL"
    )
    assert _count(server, "SELECT sum(calls) FROM models") == _count(server, "SELECT count(*) FROM predictions")
    assert _count(server, "SELECT count(*) FROM volume_minutes WHERE calls <= 0") == 0


def test_erasure_by_trace_id_leaves_nothing_of_the_trace_and_metrics_count_the_rest(server: Server) -> None:
    gone, kept, other = new_trace_id(), new_trace_id(), new_trace_id()
    server.ingest(
        [
            prediction_span("clf", [1, 0, 1], trace_id=gone),
            prediction_span("ranker", [0.5], trace_id=gone),  # a second model's span in the same trace
            prediction_span("clf", [1, 1], trace_id=kept),
            prediction_span("clf", [0], trace_id=other, error="ValueError: bad"),
        ],
        instance="instance-a",
    )
    server.ingest([label_span(gone, [1, 1, 1]), label_span(kept, [1, 0]), label_span(gone, 0, row=2)])
    unjoined = new_trace_id()
    server.ingest([label_span(unjoined, 1)])
    assert server.metrics("clf")["labels"] == 5

    erased = _erase(server, trace_id=gone.hex())

    assert erased == {
        "trace_id": gone.hex(), "traces": 1, "predictions": 2, "rows": 4, "labels": 3, "label_spans": 2, "sketches": 0
    }  # fmt: skip
    for table, column in (("predictions", "trace_id"), ("labels", "trace_id"), ("label_spans", "trace_id")):
        assert _count(server, f"SELECT count(*) FROM {table} WHERE {column} = :gone", {"gone": gone}) == 0
    assert server.http.get(f"/api/v1/predictions/{gone.hex()}").status_code == 404
    metrics = server.metrics("clf")
    # By hand: "kept" (2 rows, labelled [1, 0] against [1, 1]: one right) and the errored call.
    assert (metrics["calls"], metrics["errors"], metrics["predictions"], metrics["labels"]) == (2, 1, 2, 2)
    assert metrics["accuracy"] == 0.5
    assert sum(v["predictions"] for v in metrics["volume"]) == 2
    assert server.metrics("ranker")["calls"] == 0
    assert _count(server, "SELECT sum(rows) FROM instance_models") == 2
    _rollups_agree_with_raw_rows(server)
    # A label that never joined is erased by its trace id too.
    assert _erase(server, trace_id=unjoined.hex())["labels"] == 1
    assert server.get("/api/v1/labels/unjoined")["count"] == 0


def _dashboard_rollups_agree_with_raw_rows(server: Server) -> None:
    """volume_hours, latency_days, score_hours, score_days and quality_days hold exactly the recount of the stored
    predictions and labelled rows (quality_days: of quality_hours), cell by cell: no emptied cell is left."""
    volume: dict[tuple[int, int], list[int]] = {}
    latency: dict[tuple[int, int, int], int] = {}
    for model_id, start_ns, latency_ns, status, n_rows in server.sql(
        "SELECT model_id, start_ns, latency_ns, status, n_rows FROM predictions"
    ):
        cell = volume.setdefault((model_id, start_ns // HOUR_NS), [0, 0, 0])
        cell[0], cell[1], cell[2] = cell[0] + 1, cell[1] + status, cell[2] + n_rows
        key = (model_id, start_ns // DAY_NS, latency_bucket(latency_ns))
        latency[key] = latency.get(key, 0) + 1
    assert {(m, h): [c, e, r] for m, h, c, e, r in server.sql("SELECT * FROM volume_hours")} == volume
    assert {(m, d, b): c for m, d, b, c in server.sql("SELECT model_id, day, bucket, calls FROM latency_days")} == (
        latency
    )
    for table, column, unit in (("score_hours", "hour", HOUR_NS), ("score_days", "day", DAY_NS)):
        scores: dict[tuple[Any, ...], list[Any]] = {}
        for model_id, start_ns, score, label in server.sql(
            "SELECT model_id, start_ns, score, label_key FROM prediction_rows"
            " WHERE kind = 2 AND label_kind = 0 AND score IS NOT NULL AND label_key IS NOT NULL"
        ):
            cell = scores.setdefault((model_id, start_ns // unit, score_bin(score), label), [0, 0.0])
            cell[0], cell[1] = cell[0] + 1, cell[1] + score
        stored = server.sql(f"SELECT model_id, {column}, bin, label_key, rows, w_rows, score_sum FROM {table}")
        assert {(m, at, b, label): [n, pytest.approx(total)] for m, at, b, label, n, _, total in stored} == scores
        assert all(n == pytest.approx(w) for *_, n, w, _ in stored)
    cells = "model_id, {}, kind, label_kind, pred_key, label_key, scored, sum(rows), sum(n_num)"
    assert sorted(server.sql(f"SELECT {cells.format('day')} FROM quality_days GROUP BY 1, 2, 3, 4, 5, 6, 7")) == sorted(
        server.sql(f"SELECT {cells.format('hour / 24')} FROM quality_hours GROUP BY 1, 2, 3, 4, 5, 6, 7")
    )


def test_erasure_takes_the_dashboard_rollups_down_to_the_recount_of_what_is_left(server: Server) -> None:
    """A trace alone in its hour and day leaves no cell of it in the dashboard's rollups; one that shares its
    cells with another leaves that one's counts."""
    day = (time.time_ns() // DAY_NS - 3) * DAY_NS
    alone, shared, kept = new_trace_id(), new_trace_id(), new_trace_id()
    spans = [
        prediction_span("clf", [[0.2, 0.8]], trace_id=alone, method="predict_proba", start_ns=day + HOUR_NS),
        prediction_span("clf", [[0.6, 0.4]], trace_id=shared, method="predict_proba", start_ns=day + DAY_NS),
        prediction_span("clf", [[0.61, 0.39]], trace_id=kept, method="predict_proba", start_ns=day + DAY_NS + 5),
        prediction_span("clf", [1], trace_id=shared, start_ns=day + DAY_NS, error="ValueError: bad"),
    ]
    server.ingest(spans, instance="instance-a")
    server.ingest([label_span(alone, 1), label_span(shared, 0), label_span(kept, 1)])
    _dashboard_rollups_agree_with_raw_rows(server)
    assert _count(server, "SELECT count(*) FROM score_days") == 3

    _erase(server, trace_id=alone.hex())
    _dashboard_rollups_agree_with_raw_rows(server)
    assert (
        _count(server, "SELECT count(*) FROM volume_hours WHERE hour = :hour", {"hour": (day + HOUR_NS) // HOUR_NS})
        == 0
    )
    _erase(server, trace_id=shared.hex())
    _dashboard_rollups_agree_with_raw_rows(server)
    assert _count(server, "SELECT sum(calls) FROM latency_days") == 1
    _rollups_agree_with_raw_rows(server)


def test_erasure_by_entity_takes_every_trace_of_the_entity(keyed: Server) -> None:
    ann_traces = [new_trace_id() for _ in range(3)]
    bob_trace = new_trace_id()
    features = {"sample": [{"name": "annabelle-q", "x": 1}], "_meta": {}}
    keyed.ingest([_of(ANN, prediction_span("clf", [1], trace_id=t, features=features)) for t in ann_traces])
    keyed.ingest([_of("bob", prediction_span("clf", [0], trace_id=bob_trace))])  # clear: the server hashes it
    keyed.ingest([label_span(t, 1) for t in [*ann_traces, bob_trace]])
    assert keyed.sql("SELECT entity FROM predictions WHERE trace_id = :trace", {"trace": bob_trace}) == [(BOB,)]
    assert _count(keyed, "SELECT count(*) FROM predictions WHERE entity = 'bob'") == 0

    # Drift's feeder merges the sampled rows into the hour's sketches within its interval: her name among them.
    deadline = time.monotonic() + 30
    while not _count(keyed, "SELECT count(*) FROM drift_sketches") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert b"annabelle-q" in keyed.stored_bytes()

    erased = _erase(keyed, entity=ANN, sketches=True)

    sketches = erased.pop("sketches")
    assert sketches > 0
    assert erased == {"entity": ANN, "traces": 3, "predictions": 3, "rows": 3, "labels": 3, "label_spans": 3}
    assert _count(keyed, "SELECT count(*) FROM predictions WHERE entity = :entity", {"entity": ANN}) == 0
    for trace in ann_traces:
        for table in ("predictions", "labels", "label_spans"):
            assert _count(keyed, f"SELECT count(*) FROM {table} WHERE trace_id = :trace", {"trace": trace}) == 0
    # Her sampled rows, and the sketches of their hour, are in no table, no free page, no write-ahead log.
    assert b"annabelle-q" not in keyed.stored_bytes()
    metrics = keyed.metrics("clf")
    assert (metrics["calls"], metrics["predictions"], metrics["labels"], metrics["accuracy"]) == (1, 1, 1, 0.0)
    _rollups_agree_with_raw_rows(keyed)
    # The entity's value itself: hashed with the server's key, the same key.
    assert _erase(keyed, entity="bob")["predictions"] == 1
    assert _count(keyed, "SELECT count(*) FROM predictions") == 0
    _rollups_agree_with_raw_rows(keyed)
    entries = keyed.get("/api/v1/audit-log")["data"]
    assert [(e["action"], e["target"]) for e in entries] == [("erasure", f"entity:{BOB}"), ("erasure", f"entity:{ANN}")]
    assert entries[1]["detail"] == {
        "traces": 3,
        "predictions": 3,
        "rows": 3,
        "labels": 3,
        "label_spans": 3,
        "sketches": sketches,
    }
    assert entries[0]["detail"]["sketches"] == 0  # not asked: drift's sketches are kept


def test_an_entity_with_more_traces_than_one_statement_takes_is_erased_whole(keyed: Server) -> None:
    traces = [new_trace_id() for _ in range(CHUNK + 20)]  # SQLite reads and deletes them in two statements each
    keyed.ingest([_of(ANN, prediction_span("clf", [1], trace_id=t)) for t in traces])
    keyed.ingest([label_span(t, 1) for t in traces])
    keyed.ingest([_of("bob", prediction_span("clf", [0]))])

    erased = _erase(keyed, entity=ANN)

    counts = {k: erased[k] for k in ("traces", "predictions", "rows", "labels", "label_spans")}
    assert counts == dict.fromkeys(counts, len(traces))
    left = {t: _count(keyed, f"SELECT count(*) FROM {t}") for t in ("predictions", "labels", "label_spans")}
    assert left == {"predictions": 1, "labels": 0, "label_spans": 0}
    _rollups_agree_with_raw_rows(keyed)


def test_a_clear_entity_is_never_stored_by_a_server_without_a_key(server: Server) -> None:
    response = server.ingest([_of("ann", prediction_span("clf", [1])), _of(ANN, prediction_span("clf", [1]))])
    partial = parse_response(response.content).partial_success
    assert partial.rejected_spans == 1 and "ml.entity" in partial.error_message
    assert [r[0] for r in server.sql("SELECT entity FROM predictions")] == [ANN]
    refused = server.http.post("/api/v1/erasures", json={"entity": "ann"})
    assert refused.status_code == 400 and "entity_key" in refused.json()["error"]["message"]


def test_erasure_requests_are_checked(server: Server) -> None:
    bad = [{}, {"trace_id": "zz"}, {"trace_id": "00" * 16}, {"trace_id": "ab" * 16, "entity": "x"}, {"entity": ""}]
    for body in [*bad, {"trace_id": "ab" * 16, "sketches": "yes"}]:
        assert server.http.post("/api/v1/erasures", json=body).status_code == 400, body
    assert _erase(server, trace_id=new_trace_id().hex())["predictions"] == 0  # nothing stored: nothing erased
    assert server.get("/api/v1/audit-log")["data"][0]["detail"]["predictions"] == 0
