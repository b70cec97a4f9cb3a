"""Privacy through the real server: what a policy removes is in no stored row, and hashed categories drift alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aither
from aither.testing import LiveServer
from aither.testing import live_server as serving

CITIES = [f"city-{i}" for i in range(6)]


@pytest.fixture
def live_server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("AITHER_HASH_KEY", "e2e-secret")
    with serving(tmp_path) as server:
        yield server


def _frame(rng: np.random.Generator, n: int, shifted: bool) -> pd.DataFrame:
    # The planted shift: the traffic's cities come from the last two only.
    cities = rng.choice(CITIES[4:] if shifted else CITIES, size=n)
    return pd.DataFrame(
        {
            "city": cities,
            "amount": rng.normal(100, 10, size=n),
            "email": [f"user{i}@example.com" for i in range(n)],
        }
    )


def _send(model: str, frames: list[pd.DataFrame], sample_rows: int = 5) -> None:
    tracked = aither.wrap(_Echo(), name=model, sample_rows=sample_rows)
    for frame in frames:
        tracked.predict(frame)
    assert aither.flush(30)


class _Echo:
    def predict(self, X: pd.DataFrame) -> list[int]:
        return [0] * len(X)


def test_hashed_categories_give_the_drift_verdict_of_the_clear_ones(live_server: LiveServer) -> None:
    rng = np.random.default_rng(3)
    reference = _frame(rng, 2000, shifted=False)
    traffic = [_frame(rng, 20, shifted=True) for _ in range(60)]
    # Every row of every call sampled: both models' servers see the same rows, so only hashing tells them apart.
    aither.log_reference("clear", reference)
    _send("clear", traffic, sample_rows=20)
    aither.init(
        api_key=aither._client.get_client().settings.api_key,
        base_url=live_server.url,
        flush_interval=0.05,
        column_policies={"city": "hash", "email": "drop"},
    )
    aither.log_reference("hashed", reference)
    _send("hashed", traffic, sample_rows=20)
    clear, hashed = live_server.drift("clear"), live_server.drift("hashed")
    assert clear["by_name"]["city"]["drifted"] and hashed["by_name"]["city"]["drifted"]
    assert clear["by_name"]["city"]["score"] == hashed["by_name"]["city"]["score"]
    # The same rows: the same verdict (the KLL sketches are randomised, so the p-values differ a little).
    assert not clear["by_name"]["amount"]["drifted"] and not hashed["by_name"]["amount"]["drifted"]
    assert "email" not in hashed["by_name"]
    # The hashed model's server never saw a city's name: its samples carry the keyed hashes only.
    stored = live_server.get("/api/v1/models/hashed/predictions", limit=5)["data"]
    cities = {row["city"] for p in stored for row in p["features"]["sample"]}
    assert cities and all(city.startswith("h:") for city in cities)


def test_a_dropped_column_is_in_no_stored_prediction_and_no_reference(live_server: LiveServer) -> None:
    aither.init(
        api_key=aither._client.get_client().settings.api_key,
        base_url=live_server.url,
        flush_interval=0.05,
        column_policies={"email": "drop"},
    )
    rng = np.random.default_rng(4)
    aither.log_reference("private", _frame(rng, 200, shifted=False))
    _send("private", [_frame(rng, 5, shifted=False) for _ in range(5)])
    stored = live_server.get("/api/v1/models/private/predictions", limit=100)
    text = json.dumps(stored)
    assert stored["data"] and "example.com" not in text and '"email"' not in text
    quality = live_server.get("/api/v1/models/private/data-quality")
    assert "email" not in {feature["name"] for feature in quality["features"]}
    assert {"city", "amount"} <= {feature["name"] for feature in quality["features"]}
