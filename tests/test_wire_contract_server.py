"""The server's side of docs/wire-contract.md: every kind of span the contract describes, sent by the real SDK,
is stored and read back as the contract says (the SDK's side is packages/aither-core/tests/test_wire_contract.py).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest

import aither
from aither import _client
from aither_server import ServerThread, Store

ADMIN_KEY = "aith_contract_admin_key_0123456789"
CONTRACT = Path(__file__).resolve().parents[1] / "docs" / "wire-contract.md"


class Model:
    def predict(self, X: np.ndarray) -> np.ndarray:
        if X.shape[1] != 3:
            raise ValueError("expected 3 features")
        return np.asarray(X.sum(axis=1) > 1).astype(int)


@pytest.fixture
def server(tmp_path: Path) -> Iterator[httpx.Client]:
    store = Store(tmp_path / "aither.db")
    store.bootstrap(ADMIN_KEY)
    previous = _client.get_client()
    with ServerThread(store) as thread:
        _client.init(api_key=ADMIN_KEY, base_url=thread.url, flush_interval=0.05, max_attribute_bytes=2000)
        with httpx.Client(base_url=thread.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http:
            try:
                yield http
            finally:
                _client.get_client().exporter.close(timeout=5)
                _client.restore(previous)


def _prediction(http: httpx.Client, trace_id: str) -> Any:
    response = http.get(f"/api/v1/predictions/{trace_id}")
    assert response.status_code == 200, response.text
    return response.json()


def test_the_contracts_attribute_and_metric_tables_are_the_ones_the_server_reads() -> None:
    text = CONTRACT.read_text()
    spans, _, aggregates = text.partition("## Per-model aggregates")
    aggregates, _, profiles = aggregates.partition("### Column profiles")
    row = re.compile(r"^\| `(ml\.[a-z_.]+|aither\.[a-z_.]+)` \|", flags=re.MULTILINE)
    assert set(row.findall(spans)) == {
        "ml.model.name",
        "ml.model.version",
        "ml.environment",
        "ml.framework",
        "ml.method",
        "ml.batch_size",
        "ml.features",
        "ml.prediction",
        "ml.label",
        "ml.label.row",
        "ml.sample_rate",
        "ml.entity",
        "aither.truncated",
    }
    assert set(row.findall(aggregates)) == {
        "aither.prediction.calls",
        "aither.prediction.rows",
        "aither.prediction.errors",
        "aither.prediction.duration",
        "aither.spans.dropped",
    }
    assert set(row.findall(profiles)) == {  # what ingest/metrics.py reads of an aither.profile point
        "aither.profile.format",
        "aither.profile.role",
        "aither.profile.column",
        "aither.profile.kind",
        "aither.profile.dtype",
        "aither.profile.nulls",
        "aither.profile.min",
        "aither.profile.max",
        "aither.profile.sketch",
    }


def test_every_kind_of_span_is_stored_as_the_contract_says(server: httpx.Client) -> None:
    tracked = aither.wrap(Model(), name="contract", version="1", environment="test")
    X = np.array([[0.1, 0.2, 0.3], [0.9, 0.9, 0.9], [0.0, 0.0, 0.1]])
    predictions = tracked.predict(X)
    batch = tracked.last_trace_id
    with pytest.raises(ValueError, match="expected 3 features"):
        tracked.predict(np.ones((2, 4)))
    failed = tracked.last_trace_id
    aither.log_label(batch, [0, 1, 0])  # a sequence aligned with the rows
    aither.log_label(batch, 1, row=2)  # one row, replacing the earlier label of that row
    manual = aither.log_prediction("manual", {"a": 1.0}, ["y" * 100] * 100)  # over the attribute cap: cut
    single = aither.log_prediction("manual", {"a": 1.0}, 1)
    aither.log_label(single, 1)  # a scalar label of a single-row prediction
    assert aither.flush(10)
    assert aither.stats()["rejected_spans"] == 0  # label spans carry no model name, and are accepted

    stored = _prediction(server, batch)
    assert (stored["model"], stored["version"], stored["environment"]) == ("contract", "1", "test")
    assert (stored["method"], stored["framework"], stored["batch_size"]) == ("predict", "generic", 3)
    assert stored["prediction"] == predictions.tolist()
    assert stored["features"]["_meta"]["shape"] == [3, 3]
    assert stored["latency_ms"] >= 0
    assert {int(row): label for row, label in stored["labels"].items()} == {0: 0, 1: 1, 2: 1}

    error = _prediction(server, failed)
    assert error["status"] == "error"
    assert "expected 3 features" in error["error"]

    truncated = _prediction(server, manual)
    assert truncated["prediction"]["_meta"]["truncated"] is True
    assert truncated["prediction"]["_meta"]["original_bytes"] > 2000

    assert {int(row): label for row, label in _prediction(server, single)["labels"].items()} == {0: 1}


def test_a_label_that_arrives_before_its_prediction_still_joins(server: httpx.Client) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    aither.log_label(trace_id, 1)
    assert aither.flush(10)
    aither.log_prediction("late", {"a": 1}, 1, trace_id=trace_id)
    assert aither.flush(10)
    assert {int(row): label for row, label in _prediction(server, trace_id)["labels"].items()} == {0: 1}
