"""The model page costs work linear in the reference's columns (issue 23): it read the reference and the window
once per column for the drift sparklines (500 columns: 11.2 s); it now reads each a fixed number of times."""

from __future__ import annotations

import re
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from conftest import Server
from otlp_builders import KEY

import aither
from aither_server.drift.store import DriftStore


class _Model:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.zeros(len(frame), dtype=int)


def _signed_in(server: Server) -> httpx.Client:
    client = httpx.Client(base_url=server.url, timeout=60)
    page = client.get("/login")
    token = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert token is not None
    assert client.post("/login", data={"api_key": KEY, "csrf": token.group(1)}).status_code == 303
    return client


def _model_with_columns(name: str, columns: int) -> None:
    rng = np.random.default_rng(columns)
    frame = pd.DataFrame({f"c{i}": rng.normal(size=200) for i in range(columns)})
    aither.log_reference(name, frame)
    tracked = aither.wrap(_Model(), name=name, sample_rows=20)
    for _ in range(3):
        tracked.predict(frame)
    assert aither.flush(30)


def _reads_of_the_page(server: Server, client: httpx.Client, name: str, monkeypatch: pytest.MonkeyPatch) -> int:
    """Reads of drift's stored profiles (the reference's and the window's) made to answer the model's page."""
    reads = [0]

    def counted(method: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            reads[0] += 1
            return method(*args, **kwargs)

        return call

    with monkeypatch.context() as patch:
        patch.setattr(DriftStore, "hour_rows", counted(DriftStore.hour_rows))
        patch.setattr(DriftStore, "reference", counted(DriftStore.reference))
        page = client.get(f"/models/{name}")
    assert page.status_code == 200, page.text
    assert "c1" in page.text  # the drift table, with its sparklines, is on the page
    return reads[0]


def test_the_model_page_reads_the_same_whatever_the_reference_s_columns(
    sdk: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    _model_with_columns("narrow", 3)
    _model_with_columns("wide", 30)
    client = _signed_in(sdk)
    try:
        narrow = _reads_of_the_page(sdk, client, "narrow", monkeypatch)
        wide = _reads_of_the_page(sdk, client, "wide", monkeypatch)
    finally:
        client.close()
    assert wide == narrow, (narrow, wide)
