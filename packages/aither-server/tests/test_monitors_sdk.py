"""``aither.monitors`` against a real server: the whole life of a monitor, its errors and its webhook."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import Server, serve_at
from otlp_builders import KEY, label_span, new_trace_id, prediction_span
from webhook_receiver import Receiver

import aither
from aither_server.monitors.webhooks import verify


@pytest.fixture
def sdk(database: Path | str) -> Iterator[Server]:
    for srv in serve_at(database, allow_private_webhooks=True, monitor_interval_s=0):
        aither.init(api_key=KEY, base_url=srv.url)
        try:
            yield srv
        finally:
            aither.close()


def test_create_list_get_update_evaluate_delete(sdk: Server) -> None:
    spans = []
    for i in range(10):
        trace_id = new_trace_id()
        spans += [prediction_span("clf", 1, trace_id=trace_id), label_span(trace_id, i % 2)]
    assert sdk.ingest(spans).status_code == 200
    with Receiver() as receiver:
        created = aither.monitors.create(
            "accuracy", "clf", "accuracy", "<", 0.9, window="30m", min_rows=5, webhook_url=receiver.url
        )
        assert created.secret is not None and created.secret.startswith("whsec_")
        assert "whsec_" not in repr(created)
        assert created.state == "NO_DATA" and created.window == "30m" and created.min_rows == 5
        assert [m.id for m in aither.monitors.list()] == [created.id]
        assert aither.monitors.list(model="other") == []
        fetched = aither.monitors.get(created.id)
        assert fetched.secret is None and fetched.metric == "accuracy"

        evaluated = aither.monitors.evaluate(created.id)
        assert evaluated.state == "ALERT" and evaluated.value == 0.5 and evaluated.rows == 10
        assert evaluated.last_evaluated is not None
        (hook,) = receiver.wait_for(1)
        assert verify(created.secret, hook.headers["Aither-Signature"], hook.body)
        assert json.loads(hook.body)["state"] == "ALERT"

        changed = aither.monitors.update(created.id, threshold=0.25, environment=None)
        assert changed.threshold == 0.25 and changed.op == "<"
        assert aither.monitors.evaluate(created.id).state == "OK"
        assert [(s.previous, s.state) for s in aither.monitors.states(created.id)] == [
            ("ALERT", "OK"),
            ("NO_DATA", "ALERT"),
        ]
        receiver.wait_for(2)

    aither.monitors.delete(created.id)
    with pytest.raises(aither.NotFoundError):
        aither.monitors.get(created.id)


def test_errors_are_the_sdks_own(sdk: Server) -> None:
    with pytest.raises(aither.APIError, match="window"):
        aither.monitors.create("x", "clf", "accuracy", "<", 0.9, window="1 week")
    with pytest.raises(aither.APIError, match="metric must be one of"):
        aither.monitors.create("x", "clf", "precision", "<", 0.9)
    reader = aither.api_keys.create("reader", ["read"])
    writer = aither.api_keys.create("writer", ["write"])
    aither.init(api_key=reader.secret, base_url=sdk.url)
    assert aither.monitors.list() == []
    with pytest.raises(aither.PermissionDeniedError):
        aither.monitors.create("x", "clf", "accuracy", "<", 0.9)
    aither.init(api_key=writer.secret, base_url=sdk.url)
    with pytest.raises(aither.PermissionDeniedError):
        aither.monitors.create("x", "clf", "accuracy", "<", 0.9)
    with pytest.raises(ValueError):
        aither.monitors.get("")


def test_drift_and_null_rate_monitors_read_the_drift_endpoints_figures(sdk: Server) -> None:
    rng = np.random.default_rng(3)

    def frame(rows: int, shift: float = 0.0) -> pd.DataFrame:
        return pd.DataFrame({"a": rng.normal(size=rows), "b": rng.normal(loc=shift, size=rows)})

    class Model:
        def predict(self, data: pd.DataFrame) -> np.ndarray:
            return np.asarray(data["a"].to_numpy() > 0).astype(int)

    aither.log_reference("shifty", frame(5000))
    tracked = aither.wrap(Model(), name="shifty", sample_rows=40)
    for _ in range(30):
        batch = frame(100, shift=2.0)
        batch.loc[:19, "a"] = np.nan  # a fifth of each batch's a is missing
        tracked.predict(batch)
    assert aither.flush(30)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3000))
    drifted = {f["name"]: f for f in sdk.get("/api/v1/models/shifty/drift", start=start)["features"]}
    quality = {f["name"]: f for f in sdk.get("/api/v1/models/shifty/data-quality", start=start)["features"]}
    assert drifted["b"]["drifted"] and not drifted["a"]["drifted"]

    b = aither.monitors.create("b drift", "shifty", "drift:b", ">", drifted["b"]["threshold"], min_rows=100)
    evaluated = aither.monitors.evaluate(b.id)
    assert evaluated.state == "ALERT" and evaluated.value == pytest.approx(drifted["b"]["score"], rel=0.05)
    assert evaluated.rows == drifted["b"]["current_count"]
    a = aither.monitors.create("a drift", "shifty", "drift:a", ">", drifted["a"]["threshold"], min_rows=100)
    assert aither.monitors.evaluate(a.id).state == "OK"
    nulls = aither.monitors.create("a nulls", "shifty", "null_rate:a", ">", 0.1, min_rows=100)
    evaluated = aither.monitors.evaluate(nulls.id)
    assert evaluated.state == "ALERT" and evaluated.value == pytest.approx(quality["a"]["null_rate"])
    assert evaluated.value == pytest.approx(0.2, abs=0.08)
