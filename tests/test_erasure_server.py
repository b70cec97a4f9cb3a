"""The SDK and the server together: ``aither.entity`` sends an entity's hashed key (never the value), the
server's policy removes what a client still sends, and erasure by that key leaves nothing of the entity."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

import aither
from aither.testing import LiveServer
from aither.testing import live_server as serving


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("AITHER_HASH_KEY", "e2e-secret")
    with serving(tmp_path) as server:
        yield server


class _Echo:
    def predict(self, X: pd.DataFrame) -> list[int]:
        return [1] * len(X)


def _frame(customer: str) -> pd.DataFrame:
    return pd.DataFrame({"customer": [customer], "email": [f"{customer}@example.com"], "amount": [12.5]})


def _database_text(tmp_path: Path) -> bytes:
    db = tmp_path / "aither.db"
    return db.read_bytes() + db.with_name("aither.db-wal").read_bytes()


def test_an_entity_is_sent_hashed_and_erasing_it_leaves_nothing_of_it(live_server: LiveServer, tmp_path: Path) -> None:
    policy = {"columns": {"email": "drop", "customer": "hash"}}
    assert live_server.http.put("/api/v1/privacy/policies/loans", json=policy).status_code == 200
    model = aither.wrap(_Echo(), name="loans")
    traces: dict[str, list[str]] = {}
    for customer in ("carol-zq", "dave-zq", "carol-zq"):
        with aither.entity(customer):
            model.predict(_frame(customer))
        trace = aither.last_trace_id()
        assert trace is not None
        traces.setdefault(customer, []).append(trace)
    logged = aither.log_prediction("loans", {"customer": "carol-zq"}, 1, entity="carol-zq")
    for trace in [*traces["carol-zq"], *traces["dave-zq"], logged]:
        aither.log_label(trace, 1)
    assert aither.flush(30)

    carol = aither.entity_key("carol-zq")
    stored = sqlite3.connect(tmp_path / "aither.db").execute("SELECT entity, features FROM predictions").fetchall()
    assert sorted(e for e, _ in stored) == sorted([carol, carol, carol, aither.entity_key("dave-zq")])
    text = _database_text(tmp_path)
    # The SDK sent the clear values (no client policy): the server's policy kept them out of every table.
    assert b"carol-zq" not in text and b"example.com" not in text
    before = live_server.metrics("loans")
    assert before["labels"] == 4

    erased = live_server.http.post("/api/v1/erasures", json={"entity": carol, "sketches": True}).json()

    assert (erased["predictions"], erased["labels"], erased["traces"]) == (3, 3, 3)
    assert sqlite3.connect(tmp_path / "aither.db").execute(
        "SELECT count(*) FROM predictions WHERE entity = ?", (carol,)
    ).fetchone() == (0,)
    for trace in [*traces["carol-zq"], logged]:
        assert live_server.http.get(f"/api/v1/predictions/{trace}").status_code == 404
    metrics = live_server.metrics("loans")
    assert (metrics["labels"], metrics["accuracy"]) == (1, 1.0)
    # Calls and rows came as the SDK's /v1/metrics aggregates: counts that never named a row, so they stay.
    assert (metrics["calls"], metrics["predictions"]) == (before["calls"], before["predictions"])
    (entry,) = [e for e in live_server.get("/api/v1/audit-log")["data"] if e["action"] == "erasure"]
    assert entry["target"] == f"entity:{carol}" and entry["detail"]["predictions"] == 3


def test_an_entity_needs_the_hash_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AITHER_HASH_KEY", raising=False)
    with pytest.raises(aither.ConfigurationError, match="AITHER_HASH_KEY"), aither.entity("x"):
        pass
    monkeypatch.setenv("AITHER_HASH_KEY", "k")
    assert aither.entity_key("x") == aither.entity_key("x") != aither.entity_key("y")
    assert aither.entity_key(42) == aither.entity_key("42")


def test_the_sdks_server_privacy_namespace_manages_policies_and_erases_by_hash(live_server: LiveServer) -> None:
    admin = aither.server_privacy
    set_ = admin.set_policy("*", {"email": "drop", "ssn": "refuse"}, scrub=True)
    assert set_["model"] == "*" and set_["columns"] == {"email": "drop", "ssn": "refuse"}
    admin.set_policy("loans", {"amount": "bucket:10"})
    assert [p["model"] for p in admin.policies()] == ["*", "loans"]
    with pytest.raises(aither.APIError, match="unknown policy"):
        admin.set_policy("loans", {"amount": "shred"})
    admin.delete_policy("loans")
    with pytest.raises(aither.NotFoundError):
        admin.delete_policy("loans")
    trace = aither.log_prediction("loans", {"amount": 3}, 1, entity="erin-zq")
    assert aither.flush(30)
    assert admin.erase(entity="erin-zq")["predictions"] == 1  # only the key was sent, never the value
    assert admin.erase(trace_id=trace)["predictions"] == 0
    with pytest.raises(ValueError):
        admin.erase()
    actions = [(e["action"], e["target"]) for e in admin.audit_log(limit=3)]
    assert actions == [
        ("erasure", f"trace:{trace}"),
        ("erasure", f"entity:{aither.entity_key('erin-zq')}"),
        ("policy.delete", "loans"),
    ]
