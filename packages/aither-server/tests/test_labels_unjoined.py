"""Labels that cannot join are kept and listed with the reason: GET /api/v1/labels/unjoined."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import Server, serve_at
from otlp_builders import label_span, new_trace_id, prediction_span


@pytest.fixture
def no_grace_server(database: Path | str) -> Iterator[Server]:
    """A label waits no time for its prediction before it counts as an unknown trace."""
    yield from serve_at(database, label_grace_s=0)


def _unjoined(server: Server, **params: object) -> tuple[int, list[tuple[str, int, object, str]]]:
    found = server.get("/api/v1/labels/unjoined", **params)
    return found["count"], [(d["trace_id"], d["row"], d["label"], d["reason"]) for d in found["data"]]


def test_a_label_of_an_unknown_trace_waits_out_the_grace_period(server: Server) -> None:
    server.ingest([label_span(new_trace_id(), 1)])
    assert _unjoined(server) == (0, [])  # labels may come first: ten minutes by default


def test_a_label_of_an_unknown_trace_is_listed_after_the_grace_period(no_grace_server: Server) -> None:
    trace_id = new_trace_id()
    no_grace_server.ingest([label_span(trace_id, "cat")])
    count, data = _unjoined(no_grace_server)
    assert (count, data) == (1, [(trace_id.hex(), 0, "cat", "unknown trace")])
    found = no_grace_server.get("/api/v1/labels/unjoined")["data"][0]
    assert found["received_at"].endswith("Z")
    no_grace_server.ingest([prediction_span("clf", "dog", trace_id=trace_id)])  # it came after all: joined
    assert _unjoined(no_grace_server) == (0, [])
    assert no_grace_server.metrics("clf")["labels"] == 1


def test_rows_past_the_predictions_rows_are_out_of_range(server: Server) -> None:
    by_row, by_list, fine = new_trace_id(), new_trace_id(), new_trace_id()
    server.ingest([prediction_span("clf", [0, 1, 1], trace_id=t) for t in (by_row, by_list, fine)])
    server.ingest(
        [label_span(by_row, 1, row=10), label_span(by_list, [0, 1, 1, 0, 0, 1, 1]), label_span(fine, 1, row=2)]
    )
    count, data = _unjoined(server, limit=3)
    assert count == 1 + 4
    assert len(data) == 3
    everything = set(_unjoined(server)[1])
    assert everything == {
        (by_row.hex(), 10, 1, "row out of range"),
        *((by_list.hex(), row, value, "row out of range") for row, value in ((3, 0), (4, 0), (5, 1), (6, 1))),
    }
    assert server.metrics("clf")["labels"] == 1 + 3


def test_a_label_that_came_first_is_judged_once_its_prediction_is_stored(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([label_span(trace_id, 1, row=5)])
    assert _unjoined(server) == (0, [])  # no prediction yet: not judged (and still in its grace period)
    server.ingest([prediction_span("clf", [1, 0], trace_id=trace_id)])
    assert _unjoined(server) == (1, [(trace_id.hex(), 5, 1, "row out of range")])


def test_model_filters_the_out_of_range_labels_by_their_predictions_model(no_grace_server: Server) -> None:
    a, b = new_trace_id(), new_trace_id()
    no_grace_server.ingest([prediction_span("a", 1, trace_id=a), prediction_span("b", 1, trace_id=b)])
    no_grace_server.ingest([label_span(a, 1, row=1), label_span(b, 1, row=1), label_span(new_trace_id(), 0)])
    assert _unjoined(no_grace_server)[0] == 3
    assert _unjoined(no_grace_server, model="a") == (1, [(a.hex(), 1, 1, "row out of range")])
    assert _unjoined(no_grace_server, model="nobody") == (0, [])


def test_listing_unjoined_labels_needs_a_key_with_read(server: Server) -> None:
    assert server.raw.get("/api/v1/labels/unjoined").status_code == 401
    created = server.http.post("/api/v1/api-keys", json={"name": "writer", "scopes": ["write"]}).json()
    response = server.raw.get("/api/v1/labels/unjoined", headers={"Authorization": f"Bearer {created['secret']}"})
    assert response.status_code == 403
    assert server.http.get("/api/v1/labels/unjoined", params={"limit": 0}).status_code == 400


def test_a_deeply_nested_label_is_listed_as_its_preview(no_grace_server: Server) -> None:
    trace_id = new_trace_id()
    nested: object = 1
    for _ in range(500):  # JSON reads it; a response encoder would recurse past its limit
        nested = [nested]
    no_grace_server.ingest([label_span(trace_id, nested)])
    response = no_grace_server.http.get("/api/v1/labels/unjoined")
    assert response.status_code == 200, response.text
    (found,) = response.json()["data"]
    assert found["trace_id"] == trace_id.hex()
    assert found["label"]["_meta"]["truncated"] is True
    assert found["label"]["preview"].startswith("[[[[")
