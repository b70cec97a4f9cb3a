"""Profile-only mode end to end: the SDK sends column sketches instead of rows, and a real server's drift and data
quality read them as they read the sketches it builds from sampled rows (docs/privacy.md, "Profile-only mode")."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import datasketches
import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import Server, serve_at
from otlp_builders import KEY, headers
from test_drift import Scorer, _frame

import aither
from aither.testing import OTLPReceiver

_SECRET = "someone.private@example.org"
_NO_FALSE_POSITIVES = datasketches.frequent_items_error_type.NO_FALSE_POSITIVES


def _private(frame: pd.DataFrame, start: int) -> pd.DataFrame:
    """``frame`` with an identifier column to drop and a free-text column holding e-mail addresses."""
    out = frame.copy()
    out["email"] = [f"user{start + i}@example.com" for i in range(len(frame))]
    out["note"] = [f"write to {_SECRET} please" if i % 2 else "nothing here" for i in range(len(frame))]
    return out


def test_profile_only_drift_flags_the_same_planted_columns_as_sampling_mode(sdk: Server) -> None:
    rng = np.random.default_rng(11)
    reference = _frame(rng, 20_000)
    for name in ("sampled", "profiled"):
        aither.log_reference(name, reference, predictions=Scorer().predict(reference))
    sampled = aither.wrap(Scorer(), name="sampled", sample_rows=40)
    profiled = aither.wrap(Scorer(), name="profiled", sample_rows=0)
    for _ in range(100):
        frame = _frame(rng, 200, shift_b=1.0, new_category=0.3)
        sampled.predict(frame)
        profiled.predict(frame)
    assert aither.flush(30)
    assert aither.stats()["profiled_rows"] == 20_000

    verdicts = {}
    for name in ("sampled", "profiled"):
        found = sdk.get(f"/api/v1/models/{name}/drift")
        verdicts[name] = {f["name"] for f in found["features"] if f["drifted"]}
        quality = {f["name"]: f for f in sdk.get(f"/api/v1/models/{name}/data-quality")["features"]}
        assert quality["city"]["unseen_category_rate"] == pytest.approx(0.3, abs=0.04)
        assert quality["a"]["out_of_range_rate"] == pytest.approx(0.0, abs=0.005)
        assert quality["a"]["dtype"] == "float64" and quality["city"]["null_rate"] == 0.0
    assert verdicts["sampled"] == verdicts["profiled"] == {"b", "city"}
    counts = {f["name"]: f["current_count"] for f in sdk.get("/api/v1/models/profiled/drift")["features"]}
    assert counts == {"a": 20_000, "b": 20_000, "c": 20_000, "d": 20_000, "city": 20_000}  # every row
    for name in ("sampled", "profiled"):  # the output follows column a, which did not move
        assert sdk.get(f"/api/v1/models/{name}/drift")["prediction"]["drifted"] is False
    assert sdk.get("/api/v1/models/profiled/drift")["prediction"]["current_count"] == 20_000


def test_profile_only_sends_no_row_on_the_wire_and_the_server_stores_none(
    server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "a test key")
    rng = np.random.default_rng(3)
    frames = [_private(_frame(rng, 50), 50 * i) for i in range(4)]
    policies = {"email": "drop"}
    with OTLPReceiver() as receiver:
        redactions = _send_profiled(receiver.url, frames, policies)
        bodies = [gzip.decompress(r.body) if r.body[:2] == b"\x1f\x8b" else r.body for r in receiver.requests]
        spans = receiver.spans
        profiles = [p for p in receiver.metrics if p.metric == "aither.profile"]
    assert redactions == {"note": {"email": 100}}  # counted, the values never sent
    assert len(spans) == 4 and all("ml.features" not in s.attributes for s in spans)
    assert all("ml.prediction" in s.attributes for s in spans)  # outputs are not inputs: they still go
    assert {p.attributes["aither.profile.column"] for p in profiles} == {
        "a",
        "b",
        "c",
        "d",
        "city",
        "note",
        "prediction",
    }
    assert all(p.value == 200 for p in profiles)
    for body in bodies:
        assert b"@example.com" not in body and _SECRET.encode() not in body  # dropped, and scrubbed

    # The same traffic into a real server: nothing of the rows is stored either.
    _send_profiled(server.url, frames, policies)
    stored = server.sql("SELECT features FROM predictions")
    assert len(stored) == 4 and all(row[0] is None for row in stored)
    assert b"@example.com" not in server.stored_bytes() and _SECRET.encode() not in server.stored_bytes()
    _merged(server, "private")
    sketched = server.sql("SELECT DISTINCT feature FROM drift_sketches WHERE model = 'private'")
    assert {row[0] for row in sketched} == {"a", "b", "c", "d", "city", "note", "prediction"}


@pytest.mark.parametrize("drift_process", [False, True], ids=["drift-thread", "drift-process"])
def test_a_retried_aggregate_body_adds_its_sketches_once(database: Path | str, drift_process: bool) -> None:
    for server in serve_at(database, drift_process=drift_process):
        _retried_once(server)


def _retried_once(server: Server) -> None:
    rng = np.random.default_rng(5)
    with OTLPReceiver() as receiver:
        aither.init(api_key=KEY, base_url=receiver.url, flush_interval=60)
        try:
            tracked = aither.wrap(Scorer(), name="retried", sample_rows=0)
            for _ in range(3):
                tracked.predict(_frame(rng, 100))
            assert aither.flush(30)
        finally:
            aither.close()
        bodies = [(r.body, r.headers) for r in receiver.metrics_requests]
    assert len(bodies) == 1
    body, sent = bodies[0]
    for _ in range(3):  # the SDK retried: the same body, the same points
        answer = httpx.post(
            f"{server.url}/v1/metrics",
            content=body,
            headers={**headers(), "Content-Encoding": sent.get("content-encoding", "identity")},
        )
        assert answer.status_code == 200, answer.text
    _merged(server, "retried")
    counts = server.sql("SELECT feature, count FROM drift_sketches WHERE model = 'retried' AND span = 1")
    assert dict(counts) == {"a": 300, "b": 300, "c": 300, "d": 300, "city": 300, "prediction": 300}
    assert server.sql("SELECT count(*) FROM drift_profile_reports")[0][0] == 6  # a key per column, none twice


def test_column_policies_apply_to_the_sketches(sdk: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "a test key")
    rng = np.random.default_rng(17)
    policies = {"city": "hash", "email": "drop", "c": "bucket:5"}
    tracked = aither.wrap(Scorer(), name="hashed", sample_rows=0, column_policies=policies)
    aither.log_reference("hashed", _private(_frame(rng, 20_000), 0))
    for _ in range(50):
        tracked.predict(_private(_frame(rng, 200, new_category=0.3), 0))
    assert aither.flush(30)
    found = {f["name"]: f for f in sdk.get("/api/v1/models/hashed/drift")["features"]}
    assert "email" not in found  # dropped: never sketched, never declared
    assert found["city"]["drifted"] is True and found["city"]["kind"] == "categorical"
    assert not found["a"]["drifted"] and not found["c"]["drifted"] and not found["d"]["drifted"]
    sketched = sdk.sql("SELECT feature, sketch FROM drift_sketches WHERE model = 'hashed' AND span = 1")
    assert "email" not in {row[0] for row in sketched}
    (city,) = [bytes(sketch) for feature, sketch in sketched if feature == "city"]
    items = datasketches.frequent_strings_sketch.deserialize(city).get_frequent_items(_NO_FALSE_POSITIVES)
    assert len(items) == 4 and all(item[0].startswith("h:") for item in items)  # A, B, C, D: hashed, all


def _send_profiled(url: str, frames: list[pd.DataFrame], policies: dict[str, str]) -> dict[str, Any]:
    """``frames`` through a profile-only model to ``url``, flushed; the model's redaction counts."""
    aither.init(api_key=KEY, base_url=url, flush_interval=60, profile_only=True, column_policies=policies)
    try:
        tracked = aither.wrap(Scorer(), name="private")
        for frame in frames:
            tracked.predict(frame)
        assert aither.flush(30)
        redactions: dict[str, Any] = aither.stats()["redactions"]["private"]
        return redactions
    finally:
        aither.close()


def _merged(server: Server, model: str) -> None:
    """A drift query (answered 404 without a reference): the drift feeder merges what it was sent first."""
    server.http.get(f"/api/v1/models/{model}/drift", params={"method": "jensenshannon"})


def test_the_servers_privacy_policy_holds_for_sketches_as_for_rows(sdk: Server) -> None:
    response = sdk.http.put(
        "/api/v1/privacy/policies/policed", json={"columns": {"email": "drop", "note": "refuse", "city": "hash"}}
    )
    assert response.status_code == 400  # this server has no AITHER_HASH_KEY: a hash rule is refused
    response = sdk.http.put("/api/v1/privacy/policies/policed", json={"columns": {"email": "drop", "note": "refuse"}})
    assert response.status_code == 200, response.text
    rng = np.random.default_rng(23)
    tracked = aither.wrap(Scorer(), name="policed", sample_rows=0)  # the client sends every column's sketch
    for _ in range(5):
        tracked.predict(_private(_frame(rng, 200), 0))
    assert aither.flush(30)
    _merged(sdk, "policed")
    sketched = {row[0] for row in sdk.sql("SELECT feature FROM drift_sketches WHERE model = 'policed'")}
    assert {"a", "b", "c", "d", "city"} <= sketched
    assert "email" not in sketched and "note" not in sketched  # dropped; refused (rejected in the partial success)
