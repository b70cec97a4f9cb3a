"""The server's privacy policies: applied at ingest whatever the client sent, read back from the database."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import Server, serve_at
from otlp_builders import new_trace_id, parse_response, prediction_span

from aither.privacy import ColumnPolicies
from aither.profile import profile_values

HASH_KEY = "server-secret"


@pytest.fixture
def keyed(database: Path | str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Server]:
    """A server with ``AITHER_HASH_KEY`` in its environment."""
    monkeypatch.setenv("AITHER_HASH_KEY", HASH_KEY)
    yield from serve_at(database)


def _features(rows: list[dict[str, Any]]) -> dict[str, Any]:
    columns = list(rows[0])
    return {"sample": rows, "_meta": {"columns": columns, "dtypes": dict.fromkeys(columns, "object")}}


def _put(server: Server, model: str, body: dict[str, Any]) -> Any:
    response = server.http.put(f"/api/v1/privacy/policies/{model}", json=body)
    assert response.status_code == 200, response.text
    return response.json()


def _stored_features(server: Server, model: str) -> list[Any]:
    """Each stored prediction's ``features`` of ``model``, decoded from the database itself."""
    rows = server.sql(
        "SELECT p.features FROM predictions p JOIN models m ON m.id = p.model_id WHERE m.name = :model ORDER BY p.id",
        {"model": model},
    )
    return [None if r[0] is None else json.loads(r[0]) for r in rows]


def test_a_server_policy_drops_a_column_the_client_still_sends(server: Server) -> None:
    _put(server, "churn", {"columns": {"email": "drop", "re:^note_.*": "drop"}})
    sdk_shaped = _features([{"email": "ann@example.com", "age": 41, "note_1": "vip"}])
    other_producer = [{"email": "bob@example.com", "age": 7}]  # a list of records, not the SDK's shape
    sdk_shaped["_meta"]["email"] = "eve@example.com"  # nothing is exempt for being under _meta
    response = server.ingest(
        [prediction_span("churn", [1], features=sdk_shaped), prediction_span("churn", [0], features=other_producer)]
    )
    assert response.status_code == 200 and not parse_response(response.content).HasField("partial_success")
    first, second = _stored_features(server, "churn")
    assert first["sample"] == [{"age": 41}]
    assert first["_meta"] == {"columns": ["age"], "dtypes": {"age": "object"}}
    assert second == [{"age": 7}]
    assert b"example.com" not in server.stored_bytes()
    # Another model is not under this policy.
    server.ingest([prediction_span("other", [1], features=_features([{"email": "cy@example.com"}]))])
    assert _stored_features(server, "other")[0]["sample"] == [{"email": "cy@example.com"}]


def test_a_refused_column_costs_its_span_a_rejection_in_the_partial_success(server: Server) -> None:
    _put(server, "churn", {"columns": {"ssn": "refuse"}})
    kept = new_trace_id()
    spans = [
        prediction_span("churn", [1], trace_id=kept, features=_features([{"age": 3}])),
        prediction_span("churn", [1], features=_features([{"ssn": "123-45-6789", "age": 3}])),
        # Refused even when this span's sample left the column out: the schema says the input had it.
        prediction_span("churn", [1], features={"sample": [{"age": 3}], "_meta": {"columns": ["age", "ssn"]}}),
    ]
    response = server.ingest(spans)
    assert response.status_code == 200
    partial = parse_response(response.content).partial_success
    assert partial.rejected_spans == 2
    assert "'ssn'" in partial.error_message and "privacy policy" in partial.error_message
    assert "123-45-6789" not in partial.error_message
    assert [bytes(r[0]) for r in server.sql("SELECT trace_id FROM predictions")] == [kept]
    assert server.get("/api/v1/org/usage")["rejected_spans"] == 2


def test_a_hashed_column_hashes_as_the_sdk_does_and_stays_consistent(keyed: Server) -> None:
    _put(keyed, "churn", {"columns": {"customer_*": "hash"}})
    sdk_hashed = ColumnPolicies({"c": "hash"}, hash_key=HASH_KEY.encode()).hashed("c-1")
    rows = [{"customer_id": "c-1"}, {"customer_id": "c-2"}, {"customer_id": "c-1"}, {"customer_id": sdk_hashed}]
    keyed.ingest([prediction_span("churn", [1], features=_features([row])) for row in rows])
    stored = [f["sample"][0]["customer_id"] for f in _stored_features(keyed, "churn")]
    assert stored[0] == stored[2] == stored[3] == sdk_hashed  # equal values alike; the SDK's hash kept as sent
    assert stored[1] != stored[0] and stored[1].startswith("h:")
    assert b"c-1" not in keyed.stored_bytes() and b"c-2" not in keyed.stored_bytes()


def test_scrubbing_and_rounding_apply_to_values_of_any_column(server: Server) -> None:
    _put(server, "*", {"scrub": True})
    _put(server, "loans", {"columns": {"amount": "bucket:100", "notes": "keep"}})
    features = _features([{"text": "mail ann@example.com", "amount": 1234.5, "notes": "ann@example.com"}])
    server.ingest([prediction_span("loans", [1], features=features)])
    (row,) = _stored_features(server, "loans")[0]["sample"]
    assert row == {"text": "mail [email]", "amount": 1200.0, "notes": "ann@example.com"}


def test_features_the_server_cannot_read_by_column_are_not_stored_under_column_rules(server: Server) -> None:
    _put(server, "churn", {"columns": {"email": "drop"}})
    truncated = {"_meta": {"truncated": True, "original_bytes": 10**7}, "preview": '{"sample":[{"email":"ann@ex'}
    response = server.ingest([prediction_span("churn", [1], features=truncated)])
    assert response.status_code == 200
    assert _stored_features(server, "churn") == [None]
    assert len(server.get("/api/v1/models/churn/predictions")["data"]) == 1  # the prediction itself is kept


def test_bad_policies_are_refused_and_nothing_changes(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AITHER_HASH_KEY", raising=False)
    bad = [{"columns": {"a": "shred"}}, {"columns": {"re:(": "drop"}}, {"scrub": "yes"}, {"columns": {"a": "hash"}}]
    for body in [*bad, {"columns": {"a": "drop"}, "extra": 1}, ["drop"]]:
        response = server.http.put("/api/v1/privacy/policies/churn", json=body)
        assert response.status_code == 400, body
        assert response.json()["error"]["type"] == "invalid_request"
    assert "AITHER_HASH_KEY" in server.http.put("/api/v1/privacy/policies/x", json={"columns": {"a": "hash"}}).text
    assert server.get("/api/v1/privacy/policies")["data"] == []
    assert server.get("/api/v1/audit-log")["data"] == []


def test_policies_are_managed_and_each_change_is_audited(server: Server) -> None:
    admin_key_id = server.get("/api/v1/api-keys")["data"][0]["id"]
    _put(server, "*", {"columns": {"email": "drop"}})
    put = _put(server, "churn", {"columns": {"ssn": "REFUSE"}, "scrub": False})
    assert put["columns"] == {"ssn": "refuse"} and put["scrub"] is False and put["updated_by"] == admin_key_id
    assert [p["model"] for p in server.get("/api/v1/privacy/policies")["data"]] == ["*", "churn"]
    assert server.get("/api/v1/privacy/policies/churn")["columns"] == {"ssn": "refuse"}
    # The organisation's rules apply under the model's own.
    response = server.ingest([prediction_span("churn", [1], features=_features([{"email": "a@b.co", "x": 1}]))])
    assert _stored_features(server, "churn")[0]["sample"] == [{"x": 1}]
    assert server.http.delete("/api/v1/privacy/policies/churn").status_code == 200
    assert server.http.delete("/api/v1/privacy/policies/churn").status_code == 404
    assert server.http.get("/api/v1/privacy/policies/churn").status_code == 404
    entries = server.get("/api/v1/audit-log")["data"]
    assert [(e["action"], e["target"]) for e in entries] == [
        ("policy.delete", "churn"),
        ("policy.set", "churn"),
        ("policy.set", "*"),
    ]
    assert all(e["key_id"] == admin_key_id and e["time"] for e in entries)
    assert entries[1]["detail"] == {"columns": {"ssn": "refuse"}, "scrub": False}
    assert response.status_code == 200
    older = server.get("/api/v1/audit-log", limit=1, before=entries[0]["id"])["data"]
    assert [e["id"] for e in older] == [entries[1]["id"]]


def test_keys_without_admin_are_refused_every_privacy_route(server: Server) -> None:
    created = server.http.post("/api/v1/api-keys", json={"name": "app", "scopes": ["read", "write"]}).json()
    h = {"Authorization": f"Bearer {created['secret']}"}
    calls = [
        ("GET", "/api/v1/privacy/policies", None),
        ("GET", "/api/v1/privacy/policies/churn", None),
        ("PUT", "/api/v1/privacy/policies/churn", {"columns": {"email": "keep"}}),
        ("DELETE", "/api/v1/privacy/policies/churn", None),
        ("POST", "/api/v1/erasures", {"trace_id": new_trace_id().hex()}),
        ("GET", "/api/v1/audit-log", None),
    ]
    for method, path, body in calls:
        assert server.raw.request(method, path, headers=h, json=body).status_code == 403, (method, path)
        assert server.raw.request(method, path, json=body).status_code == 401, (method, path)
    assert server.get("/api/v1/audit-log")["data"] == []


def test_a_policy_set_on_one_server_applies_on_another_of_the_same_database(database: Path | str) -> None:
    serving = contextlib.contextmanager(serve_at)
    with serving(database) as a, serving(database) as b:
        _put(a, "churn", {"columns": {"email": "drop"}})
        # Each request is ingested by the second server; it reloads within its check interval (a second).
        deadline = time.monotonic() + 30
        while True:
            b.ingest([prediction_span("churn", [1], features=_features([{"email": "a@b.co", "x": 1}]))])
            if _stored_features(b, "churn")[-1]["sample"] == [{"x": 1}] or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert _stored_features(b, "churn")[-1]["sample"] == [{"x": 1}]


def _profile(values: list[Any]) -> dict[str, Any]:
    (profile,) = profile_values(values)
    return profile.to_json()


def test_a_reference_is_held_to_the_policy(keyed: Server) -> None:
    _put(keyed, "churn", {"columns": {"email": "drop", "ssn": "refuse", "city": "hash"}})
    hashed = ColumnPolicies({"c": "hash"}, hash_key=HASH_KEY.encode())
    clear_cities = ["paris", "oslo", "paris"]
    reference: dict[str, Any] = {
        "rows": 3,
        "features": {
            "email": _profile(["a@b.co", "c@d.co", "e@f.co"]),
            "age": _profile([1.0, 2.0, 3.0]),
            "city": _profile([hashed.hashed(c) for c in clear_cities]),
        },
    }
    response = keyed.http.post("/api/v1/models/churn/references", json=reference)
    assert response.status_code == 201, response.text
    assert response.json()["columns"] == ["age", "city"]
    assert b"a@b.co" not in keyed.stored_bytes()
    refused = {**reference, "features": {**reference["features"], "ssn": _profile(["1", "2", "3"])}}
    response = keyed.http.post("/api/v1/models/churn/references", json=refused)
    assert response.status_code == 400 and "'ssn'" in response.json()["error"]["message"]
    clear = {**reference, "features": {**reference["features"], "city": _profile(clear_cities)}}
    response = keyed.http.post("/api/v1/models/churn/references", json=clear)
    assert response.status_code == 400 and "clear values" in response.json()["error"]["message"]
