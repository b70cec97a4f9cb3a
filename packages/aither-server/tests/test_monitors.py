"""Monitors through a real server on both engines: validation, scopes, evaluation against the metrics API's own
figures, signed webhooks exactly once per state change (to a receiver on 127.0.0.1), retries, NO_DATA, and
races between evaluators on one database."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from conftest import Server, serve_at, start_server
from otlp_builders import KEY, headers, label_span, new_trace_id, prediction_span, protobuf_body
from webhook_receiver import Receiver

from aither_server import Store
from aither_server.drift.store import DriftStore
from aither_server.monitors.evaluate import Evaluator
from aither_server.monitors.store import MonitorStore
from aither_server.monitors.targets import UnsafeTarget, check_target
from aither_server.monitors.webhooks import Sender, sign, verify


@pytest.fixture
def monitor_server(database: Path | str) -> Iterator[Server]:
    """A server whose webhooks may target 127.0.0.1 (the receivers of these tests); evaluated on request only."""
    yield from serve_at(database, allow_private_webhooks=True, monitor_interval_s=0)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    with Receiver() as found:
        yield found


def _monitor(**fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": "accuracy drop",
        "model": "clf",
        "metric": "accuracy",
        "op": "<",
        "threshold": 0.8,
        "window": "1h",
        "min_rows": 5,
    }
    body.update(fields)
    return body


def _send_half_right(server: Server, n: int = 20, model: str = "clf") -> None:
    """``n`` single-row predictions: every 4th an error, the others labelled, every other one wrong."""
    spans = []
    labelled = 0
    for i in range(n):
        trace_id = new_trace_id()
        if i % 4 == 3:
            spans.append(prediction_span(model, None, trace_id=trace_id, error="ValueError: bad", latency_ns=9_000_000))
            continue
        spans.append(prediction_span(model, 1, trace_id=trace_id, latency_ns=(i + 1) * 1_000_000))
        spans.append(label_span(trace_id, 1 if labelled % 2 == 0 else 0))
        labelled += 1
    assert server.ingest(spans).status_code == 200


def _key(server: Server, *scopes: str) -> str:
    created = server.http.post("/api/v1/api-keys", json={"name": "k", "scopes": list(scopes)})
    assert created.status_code == 201, created.text
    secret: str = created.json()["secret"]
    return secret


def _evaluate(server: Server, monitor_id: str) -> dict[str, Any]:
    response = server.http.post(f"/api/v1/monitors/{monitor_id}/evaluate")
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"metric": "precision"}, "metric must be one of"),
        ({"metric": "drift:"}, "metric must be one of"),
        ({"metric": "nulls:age"}, "metric must be one of"),
        ({"op": "=="}, "op"),
        ({"window": "1w"}, "window"),
        ({"window": "30s"}, "window"),
        ({"window": "91d"}, "between 1m and 90d"),
        ({"threshold": "high"}, "threshold"),
        ({"min_rows": -1}, "min_rows"),
        ({"webhook_url": "ftp://example.com/hook"}, "http:// or https://"),
        ({"webhook_url": "http://user:pw@127.0.0.1/hook"}, "credentials"),
        ({"webhook_url": "not a url"}, "http:// or https://"),
        ({"colour": "red"}, "colour"),
        ({"name": ""}, "name"),
    ],
)
def test_invalid_monitors_are_refused_with_the_field_named(
    monitor_server: Server, change: dict[str, Any], words: str
) -> None:
    response = monitor_server.http.post("/api/v1/monitors", json=_monitor(**change))
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["type"] == "invalid_request" and words in error["message"]
    assert monitor_server.get("/api/v1/monitors")["data"] == []


def test_missing_fields_are_refused(monitor_server: Server) -> None:
    response = monitor_server.http.post("/api/v1/monitors", json={"name": "x", "model": "clf"})
    assert response.status_code == 400
    message = response.json()["error"]["message"]
    assert "metric" in message and "op" in message and "threshold" in message


def test_private_and_loopback_webhooks_need_the_server_option(server: Server) -> None:
    for url in ("http://127.0.0.1:9/hook", "http://[::1]/hook", "http://10.1.2.3/hook", "http://169.254.169.254/x"):
        response = server.http.post("/api/v1/monitors", json=_monitor(webhook_url=url))
        assert response.status_code == 400, url
        assert "--allow-private-webhooks" in response.json()["error"]["message"]
    # A public address is a valid target (nothing is sent: the monitor is never evaluated here).
    created = server.http.post("/api/v1/monitors", json=_monitor(webhook_url="https://93.184.216.34/hook"))
    assert created.status_code == 201, created.text
    # Nor can an update point an existing monitor at a private address.
    patched = server.http.patch(f"/api/v1/monitors/{created.json()['id']}", json={"webhook_url": "http://127.0.0.1/"})
    assert patched.status_code == 400


def test_the_target_check_refuses_each_kind_of_private_address() -> None:
    for url in (
        "http://localhost/hook",
        "http://192.168.0.10/hook",
        "http://172.16.5.4/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
    ):
        with pytest.raises(UnsafeTarget):
            check_target(url, allow_private=False)
        check_target(url, allow_private=True)
    check_target("http://8.8.8.8:8080/hook", allow_private=False)
    with pytest.raises(UnsafeTarget):
        check_target("gopher://8.8.8.8/", allow_private=True)


def test_scopes_admin_manages_read_lists_write_neither(monitor_server: Server, receiver: Receiver) -> None:
    created = monitor_server.http.post("/api/v1/monitors", json=_monitor(webhook_url=receiver.url + "?token=abc"))
    assert created.status_code == 201
    monitor_id = created.json()["id"]
    write_key, read_key = _key(monitor_server, "write"), _key(monitor_server, "read")
    raw = monitor_server.raw

    def call(method: str, path: str, key: str | None, body: Any = None) -> httpx.Response:
        headers = {} if key is None else {"Authorization": f"Bearer {key}"}
        return raw.request(method, path, json=body, headers=headers)

    # An ingest key can neither point the server at an address nor read monitors.
    for key, status in ((write_key, 403), (None, 401)):
        assert call("POST", "/api/v1/monitors", key, _monitor(webhook_url=receiver.url)).status_code == status
        assert call("GET", "/api/v1/monitors", key).status_code == status
        assert call("PATCH", f"/api/v1/monitors/{monitor_id}", key, {"threshold": 0.1}).status_code == status
        assert call("DELETE", f"/api/v1/monitors/{monitor_id}", key).status_code == status
        assert call("POST", f"/api/v1/monitors/{monitor_id}/evaluate", key).status_code == status
    # A read key lists and reads, without the receiver's URL path (it may hold the receiver's token)...
    listed = call("GET", "/api/v1/monitors", read_key)
    assert listed.status_code == 200
    assert listed.json()["data"][0]["webhook_url"] == "http://" + receiver.url.split("/")[2] + "/..."
    assert "secret" not in listed.json()["data"][0]
    assert call("GET", f"/api/v1/monitors/{monitor_id}", read_key).status_code == 200
    assert call("GET", f"/api/v1/monitors/{monitor_id}/states", read_key).status_code == 200
    assert call("GET", f"/api/v1/monitors/{monitor_id}/deliveries", read_key).status_code == 200
    # ...and changes nothing.
    assert call("POST", "/api/v1/monitors", read_key, _monitor()).status_code == 403
    assert call("PATCH", f"/api/v1/monitors/{monitor_id}", read_key, {"threshold": 0.1}).status_code == 403
    assert call("DELETE", f"/api/v1/monitors/{monitor_id}", read_key).status_code == 403
    assert monitor_server.get(f"/api/v1/monitors/{monitor_id}")["threshold"] == 0.8
    assert receiver.received == []


def test_create_get_update_delete(monitor_server: Server) -> None:
    created = monitor_server.http.post("/api/v1/monitors", json=_monitor(version="3", environment="prod"))
    assert created.status_code == 201
    body = created.json()
    assert body["secret"].startswith("whsec_") and body["state"] == "NO_DATA" and body["last_evaluated"] is None
    assert body["id"].startswith("mon_") and body["enabled"] is True and body["webhook_url"] is None
    got = monitor_server.get(f"/api/v1/monitors/{body['id']}")
    assert "secret" not in got
    assert {k: got[k] for k in ("version", "environment", "metric", "op", "threshold", "window")} == {
        "version": "3",
        "environment": "prod",
        "metric": "accuracy",
        "op": "<",
        "threshold": 0.8,
        "window": "1h",
    }
    patched = monitor_server.http.patch(
        f"/api/v1/monitors/{body['id']}", json={"threshold": 0.5, "environment": None, "enabled": False}
    )
    assert patched.status_code == 200
    assert (patched.json()["threshold"], patched.json()["environment"], patched.json()["enabled"]) == (0.5, None, False)
    assert monitor_server.http.patch(f"/api/v1/monitors/{body['id']}", json={"op": None}).status_code == 400
    assert monitor_server.http.patch(f"/api/v1/monitors/{body['id']}", json={"window": "2y"}).status_code == 400
    assert monitor_server.http.delete(f"/api/v1/monitors/{body['id']}").status_code == 204
    for method in ("GET", "DELETE", "PATCH"):
        gone = monitor_server.http.request(method, f"/api/v1/monitors/{body['id']}", json={"threshold": 1})
        assert gone.status_code == 404 and gone.json()["error"]["type"] == "not_found"
    assert monitor_server.http.post("/api/v1/monitors/mon_nope/evaluate").status_code == 404


def test_alert_sends_one_signed_webhook_per_state_change(monitor_server: Server, receiver: Receiver) -> None:
    _send_half_right(monitor_server, n=16)  # 12 labelled, accuracy 0.5
    created = monitor_server.http.post("/api/v1/monitors", json=_monitor(webhook_url=receiver.url)).json()
    secret = created["secret"]

    alert = _evaluate(monitor_server, created["id"])
    assert alert["state"] == "ALERT" and alert["value"] == 0.5 and alert["rows"] == 12
    assert alert["last_evaluated"] is not None
    (first,) = receiver.wait_for(1)
    assert first.headers["Content-Type"] == "application/json"
    assert verify(secret, first.headers["Aither-Signature"], first.body)
    # The signature is HMAC-SHA256 of "<t>.<body>": recomputed here from its parts.
    timestamp = int(first.headers["Aither-Signature"].split(",")[0].removeprefix("t="))
    assert abs(timestamp - time.time()) < 60
    assert first.headers["Aither-Signature"] == sign(secret, timestamp, first.body)
    assert not verify("whsec_other", first.headers["Aither-Signature"], first.body)
    assert not verify(secret, first.headers["Aither-Signature"], first.body + b" ")
    assert not verify(secret, first.headers["Aither-Signature"], first.body, now=time.time() + 3600)
    payload = json.loads(first.body)
    assert payload["state"] == "ALERT" and payload["previous_state"] == "NO_DATA"
    assert payload["value"] == 0.5 and payload["monitor"]["id"] == created["id"]
    assert payload["monitor"]["metric"] == "accuracy" and "secret" not in json.dumps(payload)

    # Still ALERT: no second webhook, however often it is evaluated.
    for _ in range(3):
        assert _evaluate(monitor_server, created["id"])["state"] == "ALERT"
    time.sleep(0.5)
    assert len(receiver.received) == 1

    # Back to OK: one more.
    monitor_server.http.patch(f"/api/v1/monitors/{created['id']}", json={"threshold": 0.4})
    assert _evaluate(monitor_server, created["id"])["state"] == "OK"
    second = receiver.wait_for(2)[1]
    assert verify(secret, second.headers["Aither-Signature"], second.body)
    assert json.loads(second.body)["state"] == "OK" and json.loads(second.body)["previous_state"] == "ALERT"
    time.sleep(0.3)
    assert len(receiver.received) == 2

    states = monitor_server.get(f"/api/v1/monitors/{created['id']}/states")["data"]
    assert [(s["previous"], s["state"]) for s in states] == [("ALERT", "OK"), ("NO_DATA", "ALERT")]
    deliveries = monitor_server.get(f"/api/v1/monitors/{created['id']}/deliveries")["data"]
    assert [(d["attempt"], d["ok"], d["status_code"]) for d in deliveries] == [(1, True, 200), (1, True, 200)]
    assert {d["event_id"] for d in deliveries} == {json.loads(r.body)["event_id"] for r in receiver.received}


def test_below_min_rows_is_no_data_and_sends_nothing(monitor_server: Server, receiver: Receiver) -> None:
    _send_half_right(monitor_server, n=8)  # 6 labelled predictions
    created = monitor_server.http.post("/api/v1/monitors", json=_monitor(min_rows=7, webhook_url=receiver.url)).json()
    evaluated = _evaluate(monitor_server, created["id"])
    assert evaluated["state"] == "NO_DATA" and evaluated["rows"] == 6 and evaluated["value"] == 0.5
    # A model with no traffic at all, and a feature with no drift data: NO_DATA too.
    for fields in ({"model": "nobody"}, {"metric": "drift:age"}, {"metric": "null_rate:age"}):
        other = monitor_server.http.post("/api/v1/monitors", json=_monitor(**fields, webhook_url=receiver.url)).json()
        assert _evaluate(monitor_server, other["id"])["state"] == "NO_DATA"
    # Six rows are enough at min_rows 6: then it alerts.
    monitor_server.http.patch(f"/api/v1/monitors/{created['id']}", json={"min_rows": 6})
    assert _evaluate(monitor_server, created["id"])["state"] == "ALERT"
    assert len(receiver.wait_for(1)) == 1
    time.sleep(0.3)
    assert len(receiver.received) == 1


def test_values_are_the_metrics_endpoints_own(monitor_server: Server) -> None:
    _send_half_right(monitor_server, n=40)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3000))
    expected = monitor_server.metrics("clf", start=start)
    figures = {
        "accuracy": expected["accuracy"],
        "f1": expected["f1"],
        "error_rate": expected["error_rate"],
        "latency_p95_ms": expected["latency_ms"]["p95"],
        "volume": expected["predictions"],
        "label_coverage": expected["label_coverage"],
    }
    assert figures["error_rate"] == 0.25 and figures["volume"] == 30
    for metric, value in figures.items():
        created = monitor_server.http.post("/api/v1/monitors", json=_monitor(metric=metric, op=">", threshold=0))
        evaluated = _evaluate(monitor_server, created.json()["id"])
        assert evaluated["value"] == pytest.approx(value), metric
        assert evaluated["state"] == "ALERT", metric
    # Volume has data even with no traffic: a model that stopped answering alerts on volume < 1.
    quiet = monitor_server.http.post("/api/v1/monitors", json=_monitor(model="quiet", metric="volume", threshold=1))
    assert _evaluate(monitor_server, quiet.json()["id"])["state"] == "ALERT"
    # A regression model's MAE and RMSE.
    spans = []
    for pred, truth in [(1.5, 2.0), (3.25, 3.0), (5.5, 2.0)]:
        trace_id = new_trace_id()
        spans += [prediction_span("reg", pred, trace_id=trace_id), label_span(trace_id, truth)]
    monitor_server.ingest(spans)
    for metric, value in (("mae", 4.25 / 3), ("rmse", (12.5625 / 3) ** 0.5)):
        created = monitor_server.http.post(
            "/api/v1/monitors", json=_monitor(model="reg", metric=metric, op=">", threshold=1, min_rows=3)
        )
        evaluated = _evaluate(monitor_server, created.json()["id"])
        assert evaluated["value"] == pytest.approx(value) and evaluated["state"] == "ALERT"


def test_failed_deliveries_are_retried_with_backoff_and_logged(monitor_server: Server) -> None:
    with Receiver(statuses=[500, 503]) as flaky:
        _send_half_right(monitor_server)
        created = monitor_server.http.post("/api/v1/monitors", json=_monitor(webhook_url=flaky.url)).json()
        began = time.monotonic()
        _evaluate(monitor_server, created["id"])
        received = flaky.wait_for(3)
        # Backoff of 1 s then 2 s before the third attempt.
        assert time.monotonic() - began >= 2.9
        bodies = {r.body for r in received}
        assert len(bodies) == 1  # the same event each time, re-signed
        for request in received:
            assert verify(created["secret"], request.headers["Aither-Signature"], request.body)
        time.sleep(0.3)
    deliveries = monitor_server.get(f"/api/v1/monitors/{created['id']}/deliveries")["data"]
    assert [(d["attempt"], d["ok"], d["status_code"], d["error"]) for d in deliveries] == [
        (3, True, 200, None),
        (2, False, 503, "HTTP 503"),
        (1, False, 500, "HTTP 500"),
    ]


def _evaluators(db: Path | str, count: int) -> tuple[list[Evaluator], list[Any]]:
    """``count`` evaluators on one database, each with its own store and engines, as server processes have."""
    evaluators, closers = [], []
    for _ in range(count):
        store = Store(db)
        drift = DriftStore(store.engine)
        monitors = MonitorStore(store.engine)
        sender = Sender(monitors, allow_private=True)
        evaluators.append(Evaluator(store, drift, monitors, sender))
        closers += [sender.stop, store.close]
    return evaluators, closers


def _race(calls: list[Any]) -> list[Any]:
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        results[i] = calls[i]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


def test_evaluators_racing_on_one_database_evaluate_each_monitor_once_per_cycle(
    monitor_server: Server, receiver: Receiver
) -> None:
    _send_half_right(monitor_server)
    ids = [
        monitor_server.http.post("/api/v1/monitors", json=_monitor(name=f"m{i}", webhook_url=receiver.url)).json()["id"]
        for i in range(12)
    ]
    evaluators, closers = _evaluators(monitor_server.db, 3)
    try:
        interval = 60 * 10**9
        base = time.time_ns()  # cycles now and in the next minutes: the traffic stays in the window
        for cycle in range(3):
            now = base + cycle * interval
            counts = _race([lambda e=e, now=now: e.cycle(now, now + interval) for e in evaluators])
            assert sum(counts) == len(ids), (cycle, counts)
            # Later in the same cycle, nobody claims again.
            assert sum(e.cycle(now + interval // 2, now + interval) for e in evaluators) == 0
        # Each monitor went NO_DATA -> ALERT once: twelve webhooks, one each, whoever evaluated.
        received = receiver.wait_for(len(ids))
        time.sleep(0.5)
        assert len(receiver.received) == len(ids)
        assert sorted(json.loads(r.body)["monitor"]["id"] for r in received) == sorted(ids)
    finally:
        for close in closers:
            close()


def test_two_servers_evaluating_one_monitor_at_once_send_one_webhook(database: Path | str) -> None:
    with Receiver() as receiver:
        first = start_server(database, allow_private_webhooks=True, monitor_interval_s=0)
        second = start_server(database, allow_private_webhooks=True, monitor_interval_s=0)
        clients = [httpx.Client(base_url=t.url, headers={"Authorization": f"Bearer {KEY}"}) for t in (first, second)]
        try:
            spans = []
            for i in range(10):
                trace_id = new_trace_id()
                spans += [prediction_span("clf", 1, trace_id=trace_id), label_span(trace_id, i % 2)]
            sent = clients[0].post("/v1/traces", content=protobuf_body(spans), headers=headers())
            assert sent.status_code == 200
            ids = []
            for i in range(5):
                created = clients[0].post("/api/v1/monitors", json=_monitor(name=f"m{i}", webhook_url=receiver.url))
                ids.append(created.json()["id"])
            for monitor_id in ids:
                path = f"/api/v1/monitors/{monitor_id}/evaluate"
                answers = _race([lambda c=c, path=path: c.post(path) for c in clients * 2])
                assert {a.json()["state"] for a in answers} == {"ALERT"}
            received = receiver.wait_for(len(ids))
            time.sleep(0.5)
            assert len(receiver.received) == len(ids)
            assert sorted(json.loads(r.body)["monitor"]["id"] for r in received) == sorted(ids)
            history = clients[1].get(f"/api/v1/monitors/{ids[0]}/states").json()["data"]
            assert [(h["previous"], h["state"]) for h in history] == [("NO_DATA", "ALERT")]
        finally:
            for client in clients:
                client.close()
            first.stop()
            second.stop()


def test_the_periodic_evaluator_runs_on_its_own(database: Path | str) -> None:
    with Receiver() as receiver:
        for srv in serve_at(database, allow_private_webhooks=True, monitor_interval_s=0.5):
            _send_half_right(srv)
            created = srv.http.post("/api/v1/monitors", json=_monitor(webhook_url=receiver.url)).json()
            disabled = srv.http.post("/api/v1/monitors", json=_monitor(enabled=False)).json()
            (hook,) = receiver.wait_for(1, timeout=10)
            assert json.loads(hook.body)["state"] == "ALERT"
            assert srv.get(f"/api/v1/monitors/{created['id']}")["state"] == "ALERT"
            assert srv.get(f"/api/v1/monitors/{disabled['id']}")["last_evaluated"] is None
