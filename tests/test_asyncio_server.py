"""An asyncio web server (FastAPI on uvicorn) serving concurrent requests: each request sees its own trace id."""

from __future__ import annotations

import asyncio
import random
import socket
import threading
import time
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import uvicorn
from fastapi import FastAPI

import aither
from aither.testing import SpanCapture


class Doubler:
    def predict(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(X) * 2


def _app() -> FastAPI:
    model = aither.wrap(Doubler(), name="doubler")
    app = FastAPI()

    @app.post("/predict")
    async def predict(data: dict[str, float]) -> dict[str, object]:
        await asyncio.sleep(random.uniform(0, 0.01))  # other requests run in between
        value = model.predict(np.array([[data["x"]]]))
        await asyncio.sleep(random.uniform(0, 0.01))  # ...and predict before this one reads its id
        return {"y": float(value[0, 0]), "trace_id": model.last_trace_id, "any_model": aither.last_trace_id()}

    return app


@pytest.fixture
def server_url(aither_capture: SpanCapture) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.01)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(10)


def test_concurrent_requests_each_get_their_own_last_trace_id(server_url: str, aither_capture: SpanCapture) -> None:
    async def fire() -> list[dict[str, object]]:
        async with httpx.AsyncClient(base_url=server_url, timeout=30) as client:
            responses = await asyncio.gather(*(client.post("/predict", json={"x": i}) for i in range(32)))
        return [r.json() for r in responses]

    answers = asyncio.run(fire())
    spans = {span.trace_id: span for span in aither_capture.predictions()}
    assert len(spans) == 32
    for index, answer in enumerate(answers):
        assert answer["trace_id"] == answer["any_model"]
        span = spans[str(answer["trace_id"])]
        assert span.features["sample"] == [{"0": float(index)}]  # the id names this request's prediction
        assert span.prediction == [[answer["y"]]]
