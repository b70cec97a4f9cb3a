"""Labels join predictions by trace id, per row, whichever arrives first."""

from __future__ import annotations

from typing import Any

from conftest import Server
from otlp_builders import label_span, new_trace_id, prediction_span


def test_label_sent_before_its_prediction_joins_when_the_prediction_arrives(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([label_span(trace_id, [1, 0, 1])])
    assert server.get("/api/v1/org/usage")["labels"] == 3
    server.ingest([prediction_span("clf", [1, 1, 1], trace_id=trace_id)])
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["label_coverage"], metrics["accuracy"]) == (3, 1.0, 2 / 3)
    assert server.get(f"/api/v1/predictions/{trace_id.hex()}")["labels"] == {"0": 1, "1": 0, "2": 1}


def test_label_sent_after_its_prediction_joins_at_once(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [1, 1, 1, 0], trace_id=trace_id)])
    assert server.metrics("clf")["labels"] == 0
    server.ingest([label_span(trace_id, 1, row=2)])
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["label_coverage"], metrics["accuracy"]) == (1, 0.25, 1.0)


def test_label_and_prediction_in_the_same_request_join_in_either_order(server: Server) -> None:
    first, second = new_trace_id(), new_trace_id()
    server.ingest(
        [
            label_span(first, "cat"),
            prediction_span("pets", "cat", trace_id=first),
            prediction_span("pets", "dog", trace_id=second),
            label_span(second, "cat"),
        ]
    )
    metrics = server.metrics("pets")
    assert (metrics["labels"], metrics["accuracy"], metrics["task"]) == (2, 0.5, "classification")


def test_row_labels_fill_a_batch_one_row_at_a_time(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [0, 1, 0, 1], trace_id=trace_id)])
    server.ingest([label_span(trace_id, 0, row=0), label_span(trace_id, 0, row=1)])
    server.ingest([label_span(trace_id, 0, row=3)])
    found = server.get(f"/api/v1/predictions/{trace_id.hex()}")
    assert found["labels"] == {"0": 0, "1": 0, "3": 0}
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["label_coverage"], metrics["accuracy"]) == (3, 0.75, 1 / 3)


def test_later_label_for_the_same_row_replaces_the_earlier_one(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [1, 1], trace_id=trace_id)])
    server.ingest([label_span(trace_id, [0, 0], time_ns=1_000)])
    server.ingest([label_span(trace_id, 1, row=1, time_ns=2_000)])
    # An older label delivered late (a retry) does not roll the newer one back.
    server.ingest([label_span(trace_id, 0, row=1, time_ns=1_500)])
    assert server.get(f"/api/v1/predictions/{trace_id.hex()}")["labels"] == {"0": 0, "1": 1}
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["accuracy"]) == (2, 0.5)


def test_integral_float_label_matches_integer_prediction(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", [1, 0], trace_id=trace_id), label_span(trace_id, [1.0, 0.0])])
    assert server.metrics("clf")["accuracy"] == 1.0


def test_scalar_label_of_a_single_row_prediction(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("clf", 1, trace_id=trace_id, batch_size=1), label_span(trace_id, 1)])
    assert server.metrics("clf")["label_coverage"] == 1.0


def test_label_span_without_ml_label_is_rejected(server: Server) -> None:
    bad = label_span(new_trace_id(), 1)
    del bad.attributes[:]
    response = server.ingest([bad])
    assert response.status_code == 200
    assert server.get("/api/v1/org/usage")["labels"] == 0


def test_labels_repeating_a_row_in_one_request_keep_the_latest(server: Server) -> None:
    # One request, several labels for one row, out of order: applied as if one after another, by time (on
    # PostgreSQL rows repeating a key cannot share one multi-row upsert, and take the row-by-row path).
    first, second = new_trace_id(), new_trace_id()
    server.ingest([prediction_span("clf", [1, 1], trace_id=first), prediction_span("clf", 0, trace_id=second)])
    server.ingest(
        [
            label_span(first, 1, row=1, time_ns=3_000),
            label_span(first, 0, row=1, time_ns=1_000),
            label_span(first, [1, 0], time_ns=2_000),
            label_span(second, 0, time_ns=1_000),
        ]
    )
    assert server.get(f"/api/v1/predictions/{first.hex()}")["labels"] == {"0": 1, "1": 1}
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["accuracy"]) == (3, 1.0)


def test_two_large_label_requests_in_one_transaction_each_apply_their_own_rows(server: Server) -> None:
    # Requests that arrive together share one transaction (group commit). On PostgreSQL a batch this large
    # is applied from a temporary table: the second batch must see its own rows only, and its newer labels win.
    from otlp_builders import request

    from aither_server.ingest.body import PROTOBUF
    from aither_server.ingest.spans import decode_body

    store = server.thread.store
    traces = [new_trace_id() for _ in range(1200)]
    server.ingest([prediction_span("clf", [1, 1], trace_id=t) for t in traces])

    def labels(label: int, time_ns: int) -> list[Any]:
        spans = [label_span(t, label, row=1, time_ns=time_ns) for t in traces]
        return decode_body(request(spans).SerializeToString(), PROTOBUF).labels

    with store.write() as conn:
        for batch in (labels(0, 1_000), labels(1, 2_000)):
            store._ingestor.labels(conn, batch, 3_000)
    metrics = server.metrics("clf")
    assert (metrics["labels"], metrics["accuracy"]) == (1200, 1.0)
    assert server.sql("SELECT count(*) FROM labels WHERE label_key = '1' AND time_ns = 2000") == [(1200,)]


def test_a_prediction_row_is_written_when_it_is_first_labelled(server: Server) -> None:
    # Unlabelled rows are not stored row by row (no query reads them); the first label writes the row from the
    # stored prediction, with its probability score and its sampling weight, and a relabel moves it.
    trace_id = new_trace_id()
    proba = [[0.9, 0.1], [0.2, 0.8], [0.4, 0.6]]
    server.ingest([prediction_span("scored", proba, trace_id=trace_id, method="predict_proba", sample_rate=0.5)])
    assert server.sql("SELECT count(*) FROM prediction_rows") == [(0,)]
    server.ingest([label_span(trace_id, 1, row=1), label_span(trace_id, 0, row=7)])  # row 7: no such row
    assert server.sql("SELECT row, pred_key, score, weight, label_key FROM prediction_rows") == [
        (1, "1", 0.8, 2.0, "1")
    ]
    server.ingest([label_span(trace_id, 0, row=0), label_span(trace_id, 0, row=2)])
    metrics = server.metrics("scored")
    assert (metrics["labels"], metrics["accuracy"], metrics["auc"]) == (6, 2 / 3, 1.0)
    server.ingest([label_span(trace_id, 1, row=0)])  # relabelled: the stored row moves to its new label
    metrics = server.metrics("scored")
    assert (metrics["labels"], metrics["accuracy"]) == (6, 1 / 3)
    assert server.sql("SELECT count(*) FROM prediction_rows") == [(3,)]


def test_a_retried_request_of_many_label_spans_stores_none_twice(server: Server) -> None:
    # 1,200 spans: on PostgreSQL they are stored through a temporary table, the new ones returned by the insert.
    traces = [new_trace_id() for _ in range(1200)]
    server.ingest([prediction_span("retried", [0, 1], trace_id=t) for t in traces])
    spans = [label_span(t, 1, row=1) for t in traces] + [label_span(traces[0], 0, row=0)]
    for _ in range(2):
        server.ingest(spans)
        assert server.sql("SELECT count(*) FROM label_spans") == [(1201,)]
        assert server.get("/api/v1/org/usage")["labels"] == 1201
        metrics = server.metrics("retried")
        assert (metrics["labels"], metrics["accuracy"]) == (1201, 1.0)
