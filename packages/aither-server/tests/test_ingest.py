"""POST /v1/traces: what is stored, what is refused, and that a refused request stores nothing."""

from __future__ import annotations

import gzip
import os
import tracemalloc

import pytest
from conftest import Server
from otlp_builders import (
    KEY,
    headers,
    json_body,
    label_span,
    new_trace_id,
    parse_response,
    parse_status,
    prediction_span,
    protobuf_body,
)

from aither_server.ingest import body as otlp_body


def _counts(server: Server) -> tuple[int, int, int]:
    return (
        server.sql("SELECT count(*) FROM predictions")[0][0],
        server.sql("SELECT count(*) FROM label_spans")[0][0],
        server.sql("SELECT coalesce(sum(predictions + labels), 0) FROM usage")[0][0],
    )


def _assert_nothing_stored(server: Server) -> None:
    assert _counts(server) == (0, 0, 0)
    assert server.get("/api/v1/models")["data"] == []


def test_gzip_protobuf_batch_is_stored_with_rows_and_answered_in_protobuf(server: Server) -> None:
    spans = [prediction_span("clf", [0, 1, 1]), prediction_span("clf", 1)]
    response = server.ingest(spans)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/x-protobuf"
    assert not parse_response(response.content).HasField("partial_success")
    (model,) = server.get("/api/v1/models")["data"]
    assert (model["name"], model["calls"], model["predictions"]) == ("clf", 2, 4)


def test_json_body_with_hex_ids_is_accepted_and_answered_in_json(server: Server) -> None:
    trace_id = new_trace_id()
    body = json_body([prediction_span("clf", [1, 0], trace_id=trace_id), label_span(trace_id, [1, 1])])
    response = server.raw.post(
        "/v1/traces", content=body, headers=headers(gzip_body=False, content_type="application/json")
    )
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {}
    found = server.get(f"/api/v1/predictions/{trace_id.hex()}")
    assert found["prediction"] == [1, 0]
    assert found["labels"] == {"0": 1, "1": 1}


def test_retried_batch_stores_nothing_twice(server: Server) -> None:
    trace_id = new_trace_id()
    spans = [prediction_span("clf", [0, 1], trace_id=trace_id), label_span(trace_id, 1, row=0)]
    body = protobuf_body(spans)
    for _ in range(3):
        assert server.raw.post("/v1/traces", content=body, headers=headers()).status_code == 200
    assert _counts(server) == (1, 1, 3)
    metrics = server.metrics("clf")
    assert (metrics["calls"], metrics["predictions"], metrics["labels"]) == (1, 2, 1)
    usage = server.get("/api/v1/org/usage")
    assert (usage["predictions"], usage["labels"]) == (2, 1)


def test_spans_without_model_name_are_rejected_in_partial_success_and_the_rest_stored(server: Server) -> None:
    nameless = prediction_span("clf", 1)
    nameless.attributes.pop(0)  # ml.model.name
    poisoned = prediction_span("clf", 1, raw_prediction="1e200")
    response = server.ingest([prediction_span("clf", 1), nameless, poisoned])
    assert response.status_code == 200
    partial = parse_response(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "ml.model.name" in partial.error_message
    assert "ml.prediction holds a number beyond" in partial.error_message
    assert server.metrics("clf")["calls"] == 1


def test_request_without_key_is_401_and_stores_nothing(server: Server) -> None:
    response = server.raw.post(
        "/v1/traces", content=protobuf_body([prediction_span("clf", 1)]), headers=headers(key=None)
    )
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert parse_status(response.content).code == 16  # google.rpc.Status, as OTLP/HTTP answers protobuf
    _assert_nothing_stored(server)


def test_unknown_key_is_401_and_the_message_does_not_echo_it(server: Server) -> None:
    wrong = "aith_this_key_does_not_exist_42"
    response = server.ingest([prediction_span("clf", 1)], key=wrong)
    assert response.status_code == 401
    assert wrong not in response.text
    _assert_nothing_stored(server)


def test_revoked_key_is_refused_on_the_very_next_request(server: Server) -> None:
    created = server.http.post("/api/v1/api-keys", json={"name": "ci", "scopes": ["write"]}).json()
    assert server.ingest([prediction_span("clf", 1)], key=created["secret"]).status_code == 200
    assert server.http.delete(f"/api/v1/api-keys/{created['id']}").status_code == 200
    assert server.ingest([prediction_span("clf", 1)], key=created["secret"]).status_code == 401
    assert server.metrics("clf")["calls"] == 1


def test_key_without_write_scope_is_403_and_stores_nothing(server: Server) -> None:
    reader = server.http.post("/api/v1/api-keys", json={"name": "dash", "scopes": ["read"]}).json()
    response = server.ingest([prediction_span("clf", 1)], key=reader["secret"])
    assert response.status_code == 403
    assert parse_status(response.content).code == 7  # google.rpc.Status, as OTLP/HTTP answers protobuf
    _assert_nothing_stored(server)


@pytest.mark.parametrize(
    ("body", "encoding"),
    [
        (b"\xff\xff\xff\xff not protobuf", None),
        (gzip.compress(b"\x0a\xff\xff\xff\xff\x0f"), "gzip"),
        (b"\x1f\x8b\x08\x00 truncated gzip", "gzip"),
    ],
    ids=["bad-protobuf", "bad-protobuf-in-gzip", "bad-gzip"],
)
def test_malformed_body_is_400_and_stores_nothing(server: Server, body: bytes, encoding: str | None) -> None:
    h = headers(gzip_body=False)
    if encoding:
        h["Content-Encoding"] = encoding
    response = server.raw.post("/v1/traces", content=body, headers=h)
    assert response.status_code == 400, response.text
    assert parse_status(response.content).code == 3  # google.rpc.Status, as OTLP/HTTP answers protobuf
    _assert_nothing_stored(server)


@pytest.mark.parametrize(
    "body", [b"{not json", b"[]", b'{"resourceSpans": [{"scopeSpans": [{"spans": [{"traceId": "zz"}]}]}]}']
)
def test_malformed_json_body_is_400(server: Server, body: bytes) -> None:
    h = headers(gzip_body=False, content_type="application/json")
    assert server.raw.post("/v1/traces", content=body, headers=h).status_code == 400
    _assert_nothing_stored(server)


@pytest.mark.parametrize(
    ("content_type", "encoding"),
    [("text/plain", None), ("application/xml", None), ("application/x-protobuf", "br")],
)
def test_unsupported_content_type_or_encoding_is_415(server: Server, content_type: str, encoding: str | None) -> None:
    h = headers(gzip_body=False, content_type=content_type)
    if encoding:
        h["Content-Encoding"] = encoding
    response = server.raw.post("/v1/traces", content=protobuf_body([prediction_span("clf", 1)]), headers=h)
    assert response.status_code == 415
    _assert_nothing_stored(server)


def test_body_over_the_compressed_limit_is_413(small_server: Server) -> None:
    big = bytes(range(256)) * 400  # 100 KiB that gzip cannot shrink much below the 64 KiB limit
    import os

    body = gzip.compress(os.urandom(100 * 1024) + big)
    response = small_server.raw.post("/v1/traces", content=body, headers=headers())
    assert response.status_code == 413
    assert parse_status(response.content).code == 8  # google.rpc.Status, as OTLP/HTTP answers protobuf
    _assert_nothing_stored(small_server)


def test_body_over_the_decompressed_limit_is_413(small_server: Server) -> None:
    spans = [prediction_span("clf", [0] * 2000, features={"x": "y" * 5000}) for _ in range(40)]
    body = protobuf_body(spans)
    assert len(body) < 64 * 1024
    response = small_server.raw.post("/v1/traces", content=body, headers=headers())
    assert response.status_code == 413
    _assert_nothing_stored(small_server)


def test_gzip_bomb_is_413_with_bounded_memory(small_server: Server) -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < 64 * 1024
    response = small_server.raw.post("/v1/traces", content=bomb, headers=headers())
    assert response.status_code == 413
    _assert_nothing_stored(small_server)


def test_decompression_stops_at_the_limit_instead_of_inflating_the_bomb() -> None:
    bomb = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)
    tracemalloc.start()
    try:
        with pytest.raises(otlp_body.BodyTooLarge):
            otlp_body.decompress(bomb, "gzip", 1024 * 1024)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 * 1024 * 1024


def test_concatenated_gzip_members_are_one_body() -> None:
    data = otlp_body.decompress(gzip.compress(b"abc") + gzip.compress(b"def"), "gzip", 100)
    assert data == b"abcdef"


def test_errored_call_counts_as_a_call_and_an_error_but_predicts_no_rows(server: Server) -> None:
    server.ingest([prediction_span("clf", [1, 0]), prediction_span("clf", None, error="ValueError: bad input")])
    metrics = server.metrics("clf")
    assert (metrics["calls"], metrics["errors"], metrics["error_rate"], metrics["predictions"]) == (2, 1, 0.5, 2)
    recent = server.get("/api/v1/models/clf/predictions")["data"]
    assert recent[0]["status"] == "error"
    assert recent[0]["error"] == "ValueError: bad input"


def test_api_key_never_reaches_the_stored_rows(server: Server) -> None:
    server.ingest([prediction_span("clf", 1)])
    assert KEY.encode() not in server.stored_bytes()


def test_the_callers_span_is_kept_as_the_predictions_link(server: Server) -> None:
    caller = (new_trace_id(), os.urandom(8))
    linked, plain, from_json = new_trace_id(), new_trace_id(), new_trace_id()
    server.ingest([prediction_span("clf", 1, trace_id=linked, link=caller), prediction_span("clf", 0, trace_id=plain)])
    body = json_body([prediction_span("clf", 1, trace_id=from_json, link=caller)])
    response = server.raw.post(
        "/v1/traces", content=body, headers=headers(gzip_body=False, content_type="application/json")
    )
    assert response.status_code == 200, response.text
    expected = {"trace_id": caller[0].hex(), "span_id": caller[1].hex()}
    assert server.get(f"/api/v1/predictions/{linked.hex()}")["link"] == expected
    assert server.get(f"/api/v1/predictions/{from_json.hex()}")["link"] == expected
    assert server.get(f"/api/v1/predictions/{plain.hex()}")["link"] is None
    listed = {p["trace_id"]: p["link"] for p in server.get("/api/v1/models/clf/predictions")["data"]}
    assert listed == {linked.hex(): expected, plain.hex(): None, from_json.hex(): expected}
