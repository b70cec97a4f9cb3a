from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from otlp_builders import KEY, headers, metrics_body, protobuf_body

from aither_server import ServerThread, Store


class Server:
    """A real aither server on a free port, and an HTTP client with the admin key."""

    def __init__(self, thread: ServerThread, db: Path) -> None:
        self.thread = thread
        self.db = db
        self.url = thread.url
        self.http = httpx.Client(base_url=thread.url, headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        #: No default headers: each request says which key it sends, if any.
        self.raw = httpx.Client(base_url=thread.url, timeout=30)

    def ingest(self, spans: list[Any], key: str | None = KEY, instance: str | None = None) -> httpx.Response:
        """POST the spans to /v1/traces, from the process ``instance`` (``service.instance.id``) if given."""
        return self.raw.post("/v1/traces", content=protobuf_body(spans, instance=instance), headers=headers(key))

    def send_aggregates(self, metrics: list[Any], instance: str | None = "instance-a") -> httpx.Response:
        """POST the metrics to /v1/metrics from the process ``instance``; asserts they were accepted."""
        response = self.raw.post("/v1/metrics", content=metrics_body(metrics, instance), headers=headers())
        assert response.status_code == 200, response.text
        return response

    def get(self, path: str, **params: Any) -> Any:
        response = self.http.get(path, params={k: v for k, v in params.items() if v is not None})
        assert response.status_code == 200, response.text
        return response.json()

    def metrics(self, model: str, **params: Any) -> Any:
        return self.get(f"/api/v1/models/{model}/metrics", **params)


def start_server(db: Path, **options: Any) -> ServerThread:
    store = Store(db)
    store.bootstrap(KEY)
    return ServerThread(store, **options).start()


def serve_at(db: Path, **options: Any) -> Iterator[Server]:
    """A server on ``db`` with ``create_app`` options, for fixtures: yields it, then stops it."""
    thread = start_server(db, **options)
    srv = Server(thread, db)
    try:
        yield srv
    finally:
        srv.http.close()
        srv.raw.close()
        thread.stop()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    yield from serve_at(tmp_path / "aither.db")


@pytest.fixture
def small_server(tmp_path: Path) -> Iterator[Server]:
    """Body limits of 64 KiB compressed and 256 KiB decompressed, to test 413s cheaply."""
    yield from serve_at(tmp_path / "aither.db", max_body_bytes=64 * 1024, max_decompressed_bytes=256 * 1024)
