"""Two ``aither server`` processes on one database answer as one: ingestion, label joins, relabels, retries,
aggregates, key revocation and the last admin key, with requests interleaved through both processes."""

from __future__ import annotations

import datetime
import os
import random
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

import httpx
import psycopg
import pytest
from conftest import child_processes, gone
from otlp_builders import (
    KEY,
    aggregates,
    headers,
    label_span,
    metrics_body,
    new_trace_id,
    prediction_span,
    protobuf_body,
)
from pg_cluster import Cluster
from processes import free_port


class _Process:
    """One ``aither server`` process, with a client holding the bootstrap admin key."""

    def __init__(self, database: Path | str) -> None:
        port = free_port()
        env = {**os.environ, "AITHER_BOOTSTRAP_KEY": KEY}
        cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(database)]
        self.proc = subprocess.Popen([*cmd, "--log-level", "warning"], env=env, stdout=subprocess.DEVNULL)
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60)
        deadline = time.monotonic() + 60
        while True:
            try:
                if self.http.get("/healthz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise AssertionError("server did not start")
            time.sleep(0.1)

    def post(self, path: str, body: bytes, key: str = KEY) -> httpx.Response:
        response = self.http.post(path, content=body, headers=headers(key))
        assert response.status_code == 200, response.text
        return response

    def call(self, method: str, path: str, key: str = KEY, **kwargs: object) -> httpx.Response:
        return self.http.request(method, path, headers={"Authorization": f"Bearer {key}"}, **kwargs)  # type: ignore[arg-type]

    def stop(self) -> None:
        self.http.close()
        self.proc.terminate()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def pair(database: Path | str) -> Iterator[tuple[_Process, _Process]]:
    first = _Process(database)  # migrates the database; the second finds it migrated
    try:
        second = _Process(database)
        try:
            yield first, second
        finally:
            second.stop()
    finally:
        first.stop()


def _together(*calls: Callable[[], object]) -> list[object]:
    """Run ``calls`` at once, each on its own thread, released together."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], object]) -> object:
        barrier.wait()
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


def test_predictions_labels_relabels_and_retries_through_two_processes_match_a_hand_count(
    pair: tuple[_Process, _Process],
) -> None:
    rng = random.Random(11)
    n, batch = 120, 10
    traces = [new_trace_id() for _ in range(n)]
    predicted = [rng.randint(0, 1) for _ in range(n)]
    first_label = [rng.randint(0, 1) for _ in range(n)]
    relabelled = {i: 1 - first_label[i] for i in range(n) if i % 3 == 0}
    t0 = time.time_ns()
    for b in range(0, n, batch):
        here, there = pair if (b // batch) % 2 == 0 else pair[::-1]
        idx = range(b, b + batch)
        preds = protobuf_body([prediction_span("shared", predicted[i], trace_id=traces[i]) for i in idx])
        labels = protobuf_body([label_span(traces[i], first_label[i], time_ns=t0 + i) for i in idx])
        relabels = protobuf_body(
            [label_span(traces[i], relabelled[i], time_ns=t0 + 10**9 + i) for i in idx if i in relabelled]
        )
        # A prediction and its label at two processes at once; then the relabels, and retries of both through
        # the other process (the old labels' retry must not roll the relabels back).
        _together(partial(here.post, "/v1/traces", preds), partial(there.post, "/v1/traces", labels))
        _together(
            partial(here.post, "/v1/traces", relabels),
            partial(there.post, "/v1/traces", preds),
            partial(here.post, "/v1/traces", labels),
        )
    # One flush of an SDK's aggregates, retried to the other process at the same moment: counted once.
    body = metrics_body(aggregates("counted", calls=7, rows=9, errors=1, end_ns=t0))
    _together(lambda: pair[0].post("/v1/metrics", body), lambda: pair[1].post("/v1/metrics", body))

    final = [relabelled.get(i, first_label[i]) for i in range(n)]
    accuracy = sum(p == y for p, y in zip(predicted, final, strict=True)) / n
    for process in pair:
        metrics = process.call("GET", "/api/v1/models/shared/metrics").json()
        assert (metrics["calls"], metrics["predictions"], metrics["labels"]) == (n, n, n)
        assert metrics["accuracy"] == pytest.approx(accuracy)
        assert metrics["label_coverage"] == 1.0
        counted = process.call("GET", "/api/v1/models/counted/metrics").json()
        assert (counted["calls"], counted["errors"]) == (7, 1)
        for i in (0, 1, n - 1):
            found = process.call("GET", f"/api/v1/predictions/{traces[i].hex()}").json()
            assert found["labels"] == {"0": final[i]}
        unjoined = process.call("GET", "/api/v1/labels/unjoined").json()
        assert unjoined["data"] == []
    usage = pair[0].call("GET", "/api/v1/org/usage").json()
    assert (usage["predictions"], usage["labels"]) == (n, n + len(relabelled))


def test_a_key_revoked_at_one_process_is_refused_by_the_other_at_once(pair: tuple[_Process, _Process]) -> None:
    one, other = pair
    created = one.call("POST", "/api/v1/api-keys", json={"name": "ci", "scopes": ["read"]}).json()
    assert other.call("GET", "/api/v1/models", created["secret"]).status_code == 200
    assert one.call("DELETE", f"/api/v1/api-keys/{created['id']}").status_code == 200
    assert other.call("GET", "/api/v1/models", created["secret"]).status_code == 401


def test_two_processes_revoking_the_last_two_admin_keys_leave_one(pair: tuple[_Process, _Process]) -> None:
    one, other = pair
    a, b = (one.call("POST", "/api/v1/api-keys", json={"name": n, "scopes": ["admin"]}).json() for n in "ab")
    bootstrap = next(k for k in one.call("GET", "/api/v1/api-keys").json()["data"] if k["name"] == "bootstrap")
    assert one.call("DELETE", f"/api/v1/api-keys/{bootstrap['id']}", a["secret"]).status_code == 200
    statuses = _together(
        lambda: one.call("DELETE", f"/api/v1/api-keys/{a['id']}", b["secret"]).status_code,
        lambda: other.call("DELETE", f"/api/v1/api-keys/{b['id']}", a["secret"]).status_code,
    )
    # The loser is refused: the last admin key (409), or its own key revoked already by the winner (401).
    assert statuses.count(200) == 1 and set(statuses) - {200} <= {401, 409}, statuses
    survivor = a if statuses[1] == 200 else b
    keys = one.call("GET", "/api/v1/api-keys", survivor["secret"]).json()["data"]
    assert [k["name"] for k in keys if not k["revoked"] and "admin" in k["scopes"]] == [survivor["name"]]


def test_a_server_whose_postgresql_connections_were_cut_answers_503_then_stores_once(postgres: Cluster) -> None:
    # PostgreSQL restarted or a connection killed: the request that meets the dead connection is answered 503
    # with Retry-After (senders retry it), never 500; the next ones run on new connections; nothing twice.
    url = postgres.create_database()
    try:
        server = _Process(url)
        try:
            traces = [new_trace_id() for _ in range(3)]
            body = protobuf_body([prediction_span("cut", 1, trace_id=t) for t in traces])
            assert server.post("/v1/traces", body).status_code == 200
            database = url.rsplit("/", 1)[1]
            admin = psycopg.connect(postgres.url(), autocommit=True)
            with admin:
                admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
            statuses = []
            for _ in range(5):
                response = server.http.post("/v1/traces", content=body, headers=headers())
                statuses.append(response.status_code)
                if response.status_code == 200:
                    break
                assert response.headers["Retry-After"]
            assert statuses[0] == 503 and statuses[-1] == 200 and set(statuses) <= {200, 503}, statuses
            metrics = server.call("GET", "/api/v1/models/cut/metrics")
            assert metrics.status_code == 200 and metrics.json()["calls"] == 3
        finally:
            server.stop()
    finally:
        postgres.drop_database(url)


def _drift_counted(process: _Process, name: str) -> int:
    now = datetime.datetime.now(datetime.timezone.utc)
    itself = (
        f"window:{(now - datetime.timedelta(hours=2)).isoformat()}/{(now + datetime.timedelta(hours=1)).isoformat()}"
    )
    response = process.call(
        "GET",
        f"/api/v1/models/{name}/drift/series",
        params={"feature": "x", "bucket": "1h", "reference": itself},
    )
    assert response.status_code == 200, response.text
    return sum(p["current_count"] for p in response.json()["points"])


def test_drift_fed_by_each_servers_own_drift_process_counts_every_span_once(
    pair: tuple[_Process, _Process],
) -> None:
    # ``aither server`` feeds drift in a child process: each server's child merges what its server stored into
    # the shared sketches. A query flushes its own server's child at once; the other's merges within a second.
    n = 60
    spans = [
        prediction_span("drifting", i % 2, features={"sample": [{"x": float(i)}], "_meta": {"rows": [0]}})
        for i in range(n)
    ]
    for i in range(0, n, 10):
        pair[(i // 10) % 2].post("/v1/traces", protobuf_body(spans[i : i + 10]))
    deadline = time.monotonic() + 30
    while _drift_counted(pair[0], "drifting") < n and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _drift_counted(pair[0], "drifting") == n
    assert _drift_counted(pair[1], "drifting") == n
    pair[0].post("/v1/traces", protobuf_body([prediction_span("drifting", 1, features={"sample": [{"x": 1.0}]})]))
    assert _drift_counted(pair[0], "drifting") == n + 1  # this server's query waited for its own child's merge
    children = child_processes(pair[0].proc.pid)
    assert any("multiprocessing" in command for command in children.values())
    pair[0].stop()
    assert gone(children)  # stopped with its server
