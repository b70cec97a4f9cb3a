"""OTLP/HTTP's error answers (issue 22): a ``google.rpc.Status`` in the request's encoding, protobuf for protobuf
requests and its JSON form for JSON ones, whoever refuses (the body guard or the route); and the endpoints with a
trailing slash are served, not redirected (an exporter does not follow a 307 with its body)."""

from __future__ import annotations

import pytest
from conftest import Server
from otlp_builders import KEY, headers, metrics_body, parse_status, prediction_span, protobuf_body


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics"])
@pytest.mark.parametrize(
    ("key", "body", "status", "code"),
    [(None, b"x", 401, 16), ("aith_not_a_key_of_this_server_42", b"x", 401, 16), (KEY, b"\xff\xff", 400, 3)],
    ids=["no-key", "unknown-key", "malformed"],
)
def test_protobuf_requests_get_a_protobuf_status(
    server: Server, path: str, key: str | None, body: bytes, status: int, code: int
) -> None:
    sent = headers(key, gzip_body=False)
    response = server.raw.post(path, content=body, headers=sent)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/x-protobuf"
    found = parse_status(response.content)
    assert found.code == code and found.message


@pytest.mark.parametrize("path", ["/v1/traces", "/v1/metrics"])
def test_json_requests_get_a_json_status(server: Server, path: str) -> None:
    sent = headers(None, gzip_body=False, content_type="application/json")
    response = server.raw.post(path, content=b"{}", headers=sent)
    assert response.status_code == 401
    found = response.json()
    assert found["code"] == 16 and "API key" in found["message"]


def test_the_endpoints_with_a_trailing_slash_are_served(server: Server) -> None:
    traces = server.raw.post("/v1/traces/", content=protobuf_body([prediction_span("clf", 1)]), headers=headers())
    assert traces.status_code == 200, traces.text
    metrics = server.raw.post("/v1/metrics/", content=metrics_body([]), headers=headers())
    assert metrics.status_code == 200, metrics.text
    assert server.metrics("clf")["calls"] == 1
