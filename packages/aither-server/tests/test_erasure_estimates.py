"""Erasure and estimated performance: an erased prediction leaves the cached estimate (and realized figures) of
its hour too."""

from __future__ import annotations

from conftest import Server
from sklearn.datasets import load_breast_cancer
from test_estimate import HOUR, Split, _hour_start, _performance, _post_estimator, _send


def test_an_erased_trace_leaves_its_hours_cached_estimate_which_is_computed_again_without_it(server: Server) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    split = Split(X, y)
    start = _hour_start(3)
    traces = _send(server, split, split.held_out[:40], start)  # two traces of 20 rows
    _post_estimator(server, split.estimator)
    before = _performance(server, start, start + HOUR)
    assert before[0]["estimated"]["rows"] == 40
    assert server.sql("SELECT hour, rows FROM estimate_hours") == [(start, 40)]
    assert server.sql("SELECT hour FROM realized_hours") == [(start,)]

    response = server.http.post("/api/v1/erasures", json={"trace_id": traces[0].hex()})
    assert response.status_code == 200, response.text
    assert server.sql("SELECT count(*) FROM estimate_hours") == [(0,)]
    assert server.sql("SELECT count(*) FROM realized_hours") == [(0,)]
    after = _performance(server, start, start + HOUR)
    assert after[0]["estimated"]["rows"] == 20
    assert after[0]["estimated"] != before[0]["estimated"]
