"""POST /v1/metrics (the SDK's per-model aggregates) and the counts the query API takes from them.

Counts are exact whatever spans were dropped: an instance that sends aggregates is counted from them, an
instance that does not from its spans, never both; quality metrics come from the labelled spans, each weighted
by 1 / ml.sample_rate.
"""

from __future__ import annotations

import gzip
import math
import random
import sqlite3
import time
from pathlib import Path

import pytest
from conftest import Server, start_server
from google.protobuf import json_format
from otlp_builders import (
    KEY,
    aggregates,
    headers,
    histogram_metric,
    label_span,
    metrics_body,
    metrics_request,
    new_trace_id,
    parse_metrics_response,
    prediction_span,
    sum_metric,
)
from sklearn import metrics as skm

from aither_server.store.migrations import migrate


def _points(server: Server) -> int:
    return int(server.sql("SELECT count(*) FROM aggregate_points")[0][0])


def _post(server: Server, body: bytes, **header_options: object) -> tuple[int, str]:
    response = server.raw.post("/v1/metrics", content=body, headers=headers(**header_options))  # type: ignore[arg-type]
    return response.status_code, response.text


# -- refusals ------------------------------------------------------------------------------------------------


def test_metrics_need_a_key_with_the_write_scope(server: Server) -> None:
    body = metrics_body(aggregates("clf", calls=3))
    assert _post(server, body, key=None)[0] == 401
    assert _post(server, body, key="aith_unknown_key_0123456789")[0] == 401
    created = server.http.post("/api/v1/api-keys", json={"name": "reader", "scopes": ["read"]})
    assert created.status_code == 201
    status, text = _post(server, body, key=created.json()["secret"])
    assert status == 403
    assert "write" in text
    assert _points(server) == 0


def test_a_body_that_is_not_a_metrics_request_is_400_and_stores_nothing(server: Server) -> None:
    assert _post(server, gzip.compress(b"\xff\xff\xff not protobuf"))[0] == 400
    assert _post(server, b"not gzip at all")[0] == 400
    status, text = _post(server, b"{not json", gzip_body=False, content_type="application/json")
    assert status == 400
    assert "JSON" in text
    assert _points(server) == 0


def test_other_media_types_and_encodings_are_415(server: Server) -> None:
    body = metrics_body(aggregates("clf", calls=3))
    assert _post(server, body, content_type="text/plain")[0] == 415
    response = server.raw.post("/v1/metrics", content=body, headers={**headers(), "Content-Encoding": "br"})
    assert response.status_code == 415
    assert _points(server) == 0


def test_a_body_over_the_limits_is_413(small_server: Server) -> None:
    big = metrics_request(aggregates("clf", calls=1)).SerializeToString()
    padding = b"\x00" * (300 * 1024)  # decompresses past the 256 KiB limit: refused before parsing
    assert _post(small_server, gzip.compress(big + padding))[0] == 413
    assert _post(small_server, b"x" * (65 * 1024), gzip_body=False)[0] == 413
    assert _points(small_server) == 0


# -- storage -------------------------------------------------------------------------------------------------


def test_gzip_protobuf_and_json_bodies_are_stored_and_answered_in_their_encoding(server: Server) -> None:
    response = server.send_aggregates(aggregates("clf", calls=3, rows=7, errors=1))
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not parse_metrics_response(response.content).HasField("partial_success")
    doc = json_format.MessageToJson(metrics_request(aggregates("clf", calls=2), instance="instance-b"))
    response = server.raw.post(
        "/v1/metrics", content=doc.encode(), headers=headers(gzip_body=False, content_type="application/json")
    )
    assert response.status_code == 200, response.text
    assert response.json() == {}
    m = server.metrics("clf")
    assert (m["calls"], m["predictions"], m["errors"]) == (5, 9, 1)
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["calls"], model["predictions"]) == (5, 9)


def test_a_retried_request_counts_once(server: Server) -> None:
    body = metrics_body(aggregates("clf", calls=10, latencies_ms=[5.0] * 10, dropped={"sampled": 9}))
    for _ in range(3):
        assert _post(server, body)[0] == 200
    m = server.metrics("clf")
    assert (m["calls"], m["predictions"], m["dropped"]) == (10, 10, {"sampled": 9})
    assert _points(server) == 4  # calls, rows, duration, dropped: a zero (errors) has nothing to store
    usage = server.get("/api/v1/org/usage")
    assert usage["api_calls"] >= 3


def test_the_next_interval_of_the_same_instance_adds_up(server: Server) -> None:
    end = 1_780_000_000 * 10**9
    server.send_aggregates(aggregates("clf", calls=10, start_ns=end - 10**9, end_ns=end))
    server.send_aggregates(aggregates("clf", calls=5, start_ns=end, end_ns=end + 10**9))
    assert server.metrics("clf")["calls"] == 15


def test_other_senders_metrics_are_ignored_and_counted_in_partial_success(server: Server) -> None:
    now = 1_780_000_000 * 10**9
    foreign = sum_metric("http.server.requests", {"route": "/"}, 4, now - 10**9, now)
    anonymous = sum_metric("aither.prediction.calls", {"other": "x"}, 4, now - 10**9, now)
    cumulative = sum_metric("aither.prediction.calls", {"ml.model.name": "clf"}, 4, now - 10**9, now, temporality=2)
    response = server.send_aggregates([foreign, anonymous, cumulative, *aggregates("clf", calls=2, end_ns=now)])
    partial = parse_metrics_response(response.content).partial_success
    assert partial.rejected_data_points == 2
    assert "not an aither.* metric" in partial.error_message
    assert "ml.model.name" in partial.error_message
    # The cumulative point began before the server started: it only sets its series' origin.
    assert server.metrics("clf")["calls"] == 2


def test_aggregates_without_an_instance_id_are_rejected_with_the_reason(server: Server) -> None:
    response = server.send_aggregates(aggregates("clf", calls=2), instance=None)
    partial = parse_metrics_response(response.content).partial_success
    assert partial.rejected_data_points == 3
    assert "service.instance.id" in partial.error_message
    assert server.http.get("/api/v1/models/clf/metrics").status_code == 404


# -- counts: aggregates for their instances, spans for the others, never both --------------------------------


def test_counts_come_from_aggregates_when_spans_were_dropped_and_quality_is_weighted(server: Server) -> None:
    # 1,000 calls counted by the SDK; it kept 1 span in 10 of them (ml.sample_rate 0.1), every one labelled.
    rng = random.Random(5)
    spans, y_true, y_pred = [], [], []
    for _ in range(100):
        trace_id = new_trace_id()
        pred, truth = rng.choice([0, 1]), rng.choice([0, 1])
        spans += [prediction_span("clf", pred, trace_id=trace_id, sample_rate=0.1), label_span(trace_id, truth)]
        y_true.append(truth)
        y_pred.append(pred)
    server.ingest(spans, instance="instance-a")
    server.send_aggregates(aggregates("clf", calls=1000, latencies_ms=[2.0] * 1000, dropped={"sampled": 900}))
    m = server.metrics("clf")
    assert (m["calls"], m["predictions"], m["errors"]) == (1000, 1000, 0)
    assert m["labels"] == 1000
    assert m["label_coverage"] == pytest.approx(1.0)
    assert m["dropped"] == {"sampled": 900}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred))
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["calls"], model["predictions"]) == (1000, 1000)


def test_spans_kept_at_different_sample_rates_weigh_by_one_over_the_rate(server: Server) -> None:
    # 20 calls sent whole (all right), 10 kept 1 in 10 under overload (all wrong): they stand for 100 calls.
    spans, y_true, y_pred, weights = [], [], [], []
    for i in range(30):
        trace_id = new_trace_id()
        rate = None if i < 20 else 0.1
        pred, truth = (1, 1) if i < 20 else (1, 0)
        spans += [prediction_span("clf", pred, trace_id=trace_id, sample_rate=rate), label_span(trace_id, truth)]
        y_true.append(truth)
        y_pred.append(pred)
        weights.append(1.0 if rate is None else 1 / rate)
    server.ingest(spans, instance="instance-a")
    m = server.metrics("clf")
    assert m["labels"] == 120
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y_true, y_pred, sample_weight=weights))
    assert m["precision"] == pytest.approx(
        skm.precision_score(y_true, y_pred, average="macro", zero_division=0, sample_weight=weights)
    )


def test_regression_errors_are_weighted_too(server: Server) -> None:
    spans = []
    for pred, truth, rate in ((1.5, 1.0, None), (3.5, 1.0, 0.25)):
        trace_id = new_trace_id()
        spans += [prediction_span("reg", pred, trace_id=trace_id, sample_rate=rate), label_span(trace_id, truth)]
    server.ingest(spans)
    m = server.metrics("reg")
    assert m["mae"] == pytest.approx(skm.mean_absolute_error([1.0, 1.0], [1.5, 3.5], sample_weight=[1, 4]))
    assert m["rmse"] == pytest.approx(math.sqrt(skm.mean_squared_error([1.0, 1.0], [1.5, 3.5], sample_weight=[1, 4])))


def test_an_instance_without_aggregates_is_counted_from_its_spans(server: Server) -> None:
    # instance-a sends aggregates (and a few of its spans); instance-b is a plain OpenTelemetry SDK: spans only.
    server.ingest([prediction_span("clf", [1, 0]) for _ in range(3)], instance="instance-a")
    server.send_aggregates(aggregates("clf", calls=50, rows=80, errors=2), instance="instance-a")
    server.ingest([prediction_span("clf", [1, 1, 1]) for _ in range(4)], instance="instance-b")
    server.ingest([prediction_span("clf", 1, error="ValueError: x")])  # no instance id at all
    m = server.metrics("clf")
    assert (m["calls"], m["predictions"], m["errors"]) == (50 + 4 + 1, 80 + 12, 2 + 1)
    assert sum(v["calls"] for v in m["volume"]) == m["calls"]
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["calls"], model["predictions"]) == (55, 92)


def test_an_instance_sending_spans_and_aggregates_is_never_counted_twice(server: Server) -> None:
    # Every call has its span and is counted in the aggregates, in either order of arrival.
    server.ingest([prediction_span("clf", [0, 1]) for _ in range(5)], instance="instance-a")
    server.send_aggregates(aggregates("clf", calls=5, rows=10), instance="instance-a")
    server.ingest([prediction_span("clf", [0, 1]) for _ in range(5)], instance="instance-a")
    server.send_aggregates(aggregates("clf", calls=5, rows=10), instance="instance-a")
    m = server.metrics("clf")
    assert (m["calls"], m["predictions"]) == (10, 20)
    for bucket in ("1m", "1h", "30s"):
        assert sum(v["calls"] for v in server.metrics("clf", bucket=bucket)["volume"]) == 10
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["calls"], model["predictions"]) == (10, 20)


def test_a_model_known_only_from_aggregates_is_listed_and_queryable(server: Server) -> None:
    server.send_aggregates(aggregates("only-counted", calls=7, version="3", dropped={"queue_full": 7}))
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["name"], model["versions"], model["calls"]) == ("only-counted", ["3"], 7)
    m = server.metrics("only-counted", version="3")
    assert (m["calls"], m["labels"], m["dropped"]) == (7, 0, {"queue_full": 7})
    assert server.metrics("only-counted", version="4")["calls"] == 0


def test_senders_without_aggregates_keep_their_exact_answers(server: Server) -> None:
    latencies_ms = list(range(1, 101))
    server.ingest([prediction_span("clf", 1, latency_ns=ms * 1_000_000) for ms in latencies_ms], instance="plain")
    server.send_aggregates(aggregates("other", calls=1))  # another model's aggregates change nothing here
    m = server.metrics("clf")
    assert m["latency_ms"] == {"p50": 50.0, "p95": 95.0, "p99": 99.0}
    assert (m["calls"], m["dropped"]) == (100, {})


# -- latency percentiles from histograms ----------------------------------------------------------------------


def _nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def test_percentiles_come_from_the_histograms_within_the_bucket_resolution(server: Server) -> None:
    rng = random.Random(3)
    latencies = [rng.lognormvariate(3, 1) for _ in range(5000)]
    server.send_aggregates(aggregates("clf", calls=len(latencies), latencies_ms=latencies))
    p = server.metrics("clf")["latency_ms"]
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        exact = _nearest_rank(latencies, q)
        assert p[name] == pytest.approx(exact, rel=0.19), name


def test_span_latencies_of_other_instances_merge_into_the_same_histogram(server: Server) -> None:
    fast = [1.0 + i / 100 for i in range(100)]  # aggregates of instance-a
    slow = [100.0 + i for i in range(100)]  # spans of instance-b, which sends no aggregates
    server.send_aggregates(aggregates("clf", calls=100, latencies_ms=fast), instance="instance-a")
    server.ingest([prediction_span("clf", 1, latency_ns=int(ms * 1e6)) for ms in slow], instance="instance-b")
    server.ingest([prediction_span("clf", 1, latency_ns=10**9) for _ in range(5)], instance="instance-a")
    p = server.metrics("clf")["latency_ms"]
    both = fast + slow
    for name, q in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        assert p[name] == pytest.approx(_nearest_rank(both, q), rel=0.19), name


def test_histograms_with_other_bounds_are_moved_to_the_contract_buckets(server: Server) -> None:
    end = 1_780_000_000 * 10**9
    latencies = [30.0] * 50 + [700.0] * 50
    metric = histogram_metric({"ml.model.name": "clf"}, latencies, end - 10**9, end, bounds=[10.0, 50.0, 1000.0])
    server.send_aggregates([metric, *aggregates("clf", calls=100, end_ns=end)])
    p = server.metrics("clf")["latency_ms"]
    assert p["p50"] == pytest.approx(math.sqrt(10 * 50), rel=0.19)
    assert p["p99"] == pytest.approx(math.sqrt(50 * 1000), rel=0.19)


# -- cumulative temporality, as the Collector's cumulativetodelta reads it ------------------------------------


def test_cumulative_points_become_deltas_per_series_and_a_reset_starts_a_new_one(server: Server) -> None:
    start = time.time_ns()
    model = {"ml.model.name": "cumul"}

    def point(value: int, start_ns: int, end_ns: int, instance: str) -> None:
        metric = sum_metric("aither.prediction.calls", model, value, start_ns, end_ns, temporality=2)
        response = server.send_aggregates([metric], instance=instance)
        assert not parse_metrics_response(response.content).HasField("partial_success")

    second = 10**9
    point(4, start, start + second, "cumul-a")  # began after the server: all of it
    point(10, start, start + 2 * second, "cumul-a")  # +6
    point(10, start, start + 2 * second, "cumul-a")  # a retry: nothing new
    point(3, start + 3 * second, start + 4 * second, "cumul-a")  # a restarted process: a new series, +3
    point(5, start, start + second, "cumul-b")  # another instance: a series of its own, +5
    old = 1_700_000_000 * 10**9
    point(100, old, start + second, "cumul-c")  # began before the server: only the origin
    point(104, old, start + 2 * second, "cumul-c")  # +4
    assert server.metrics("cumul")["calls"] == 4 + 6 + 3 + 5 + 4


def test_the_opentelemetry_sdk_defaults_cumulative_and_exponential_histograms_are_read(server: Server) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExponentialBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(endpoint=f"{server.url}/v1/metrics", headers={"Authorization": f"Bearer {KEY}"})
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "otel-app", "service.instance.id": "otel-cumulative-1"}),
        views=[View(instrument_name="aither.prediction.duration", aggregation=ExponentialBucketHistogramAggregation())],
    )
    try:
        meter = provider.get_meter("aither")
        calls = meter.create_counter("aither.prediction.calls", unit="{call}")
        duration = meter.create_histogram("aither.prediction.duration", unit="ms")
        model = {"ml.model.name": "otel-cumulative"}
        for ms in (1.0, 2.0, 3.0, 4.0):
            calls.add(1, model)
            duration.record(ms, model)
        assert provider.force_flush(timeout_millis=10_000)
        calls.add(2, model)
        duration.record(2.0, model)
        assert provider.force_flush(timeout_millis=10_000)
        assert provider.force_flush(timeout_millis=10_000)  # the same totals again: nothing new
    finally:
        provider.shutdown()
    m = server.metrics("otel-cumulative")
    assert m["calls"] == 6
    assert m["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.19)


# -- a standard sender ----------------------------------------------------------------------------------------


def test_the_opentelemetry_sdk_metric_exporter_is_a_working_sender(server: Server) -> None:
    from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
    from opentelemetry.sdk.metrics import Counter, Histogram, MeterProvider
    from opentelemetry.sdk.metrics.export import AggregationTemporality, PeriodicExportingMetricReader
    from opentelemetry.sdk.metrics.view import ExplicitBucketHistogramAggregation, View
    from opentelemetry.sdk.resources import Resource

    exporter = OTLPMetricExporter(
        endpoint=f"{server.url}/v1/metrics",
        headers={"Authorization": f"Bearer {KEY}"},
        preferred_temporality={Counter: AggregationTemporality.DELTA, Histogram: AggregationTemporality.DELTA},
    )
    reader = PeriodicExportingMetricReader(exporter, export_interval_millis=3_600_000)
    bounds = [0.01 * 2 ** (i / 4) for i in range(93)]
    provider = MeterProvider(
        metric_readers=[reader],
        resource=Resource.create({"service.name": "otel-app", "service.instance.id": "otel-process-1"}),
        views=[
            View(
                instrument_name="aither.prediction.duration",
                aggregation=ExplicitBucketHistogramAggregation(boundaries=bounds),
            )
        ],
    )
    try:
        meter = provider.get_meter("aither")
        calls = meter.create_counter("aither.prediction.calls", unit="{call}")
        rows = meter.create_counter("aither.prediction.rows", unit="{row}")
        duration = meter.create_histogram("aither.prediction.duration", unit="ms")
        unrelated = meter.create_counter("app.requests")
        model = {"ml.model.name": "otel-model", "ml.environment": "prod"}
        for ms in (1.0, 2.0, 3.0, 4.0):
            calls.add(1, model)
            rows.add(5, model)
            duration.record(ms, model)
        unrelated.add(1, {"route": "/"})
        assert provider.force_flush(timeout_millis=10_000)
        calls.add(2, model)
        assert provider.force_flush(timeout_millis=10_000)
    finally:
        provider.shutdown()
    m = server.metrics("otel-model", environment="prod")
    assert (m["calls"], m["predictions"]) == (6, 20)
    assert m["latency_ms"]["p50"] == pytest.approx(2.0, rel=0.19)


def test_a_version_1_database_is_migrated_and_its_spans_merge_with_new_aggregates(tmp_path: Path) -> None:
    hour = 3600 * 10**9
    base = 1_780_000_000 * 10**9 // hour * hour
    db = tmp_path / "v1.db"
    migrate(db, "0001")
    with sqlite3.connect(db, isolation_level=None) as conn:
        conn.execute("DROP TABLE alembic_version")  # as the hand-written runner left a version 1 database
        conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description TEXT, applied_ns INTEGER)")
        conn.execute("INSERT INTO schema_version VALUES (1, 'initial schema', 0)")
        conn.execute("INSERT INTO meta VALUES ('org_id', 'org_x'), ('org_name', 'local'), ('plan', 'local'),"
                     " ('created_ns', '0')")  # fmt: skip
        conn.execute("INSERT INTO models VALUES (1, 'clf', '', '', ?, ?, 1, 1)", (base, base))
        conn.execute(
            "INSERT INTO predictions (id, trace_key, trace_id, span_id, model_id, name, start_ns, latency_ns,"
            " status, n_rows, received_ns) VALUES (1, ?, ?, ?, 1, 'predict', ?, ?, 0, 1, 0)",
            (int.from_bytes(b"\x01" * 8, "big", signed=True), b"\x01" * 16, b"\x01" * 8, base, 500 * 10**6),
        )
        conn.execute("INSERT INTO volume_minutes VALUES (1, ?, 1, 0, 1)", (base // (60 * 10**9),))
        conn.execute("INSERT INTO latency_hours VALUES (1, ?, 0, 1)", (base // hour,))
        # A label of row 3 of that one-row prediction: the migration judges it (version 5).
        conn.execute("INSERT INTO labels VALUES (?, 3, '1', '1', 1.0, 0, ?)", (b"\x01" * 16, base))
    thread = start_server(db)
    try:
        srv = Server(thread, db)
        server_end = base + 2 * hour + 1
        srv.send_aggregates(aggregates("clf", calls=3, latencies_ms=[1.0, 1.0, 1.0], end_ns=server_end))
        m = srv.metrics("clf")
        assert m["calls"] == 4  # the old span (no instance: counted from spans) and the 3 aggregated calls
        assert m["latency_ms"]["p99"] == pytest.approx(500.0, rel=0.19)
        assert m["latency_ms"]["p50"] == pytest.approx(1.0, rel=0.19)
        unjoined = srv.get("/api/v1/labels/unjoined", model="clf")
        assert [(d["row"], d["reason"]) for d in unjoined["data"]] == [(3, "row out of range")]
        srv.http.close()
        srv.raw.close()
    finally:
        thread.stop()
