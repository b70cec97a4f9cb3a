"""Embedding drift on the server: the domain classifier's verdicts, the hours' bounded reservoirs fed from the spans'
``_meta.embeddings``, a reference's projected rows, and the one "embeddings" row in /drift and on the model page."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from conftest import Server
from otlp_builders import new_trace_id, prediction_span
from sqlalchemy import create_engine, inspect
from test_dashboard import _signed_in

from aither_server.drift.embedding_store import RESERVOIR_ROWS, metadata
from aither_server.drift.embeddings import ALPHA, MIN_AUC, domain_classifier
from aither_server.store.migrations import migrate
from aither_server.store.retention import Retention, expire

DIM = 32


def test_the_migration_creates_the_tables_the_embedding_store_defines(tmp_path: Path) -> None:
    db = tmp_path / "aither.db"
    migrate(db)
    engine = create_engine(f"sqlite:///{db}")
    try:
        found = inspect(engine)
        for table in metadata.sorted_tables:
            columns = {c["name"]: c for c in found.get_columns(table.name)}
            assert list(columns) == [c.name for c in table.columns], table.name
            for column in table.columns:
                made = columns[column.name]["type"].compile(dialect=engine.dialect)
                assert made == column.type.compile(dialect=engine.dialect), (table.name, column.name)
            primary = found.get_pk_constraint(table.name)["constrained_columns"]
            assert primary == [c.name for c in table.primary_key.columns], table.name
    finally:
        engine.dispose()


def test_the_classifier_tells_a_small_shift_apart_and_states_its_threshold() -> None:
    rng = np.random.default_rng(0)
    reference = rng.normal(size=(2000, DIM))
    shifted = rng.normal(size=(800, DIM))
    shifted[:, 5] += 0.6
    found = domain_classifier(reference, shifted)
    assert found["drifted"] is True and found["score"] >= found["threshold"] >= MIN_AUC
    assert found["statistics"]["rows_per_side"] == 800 and found["statistics"]["alpha"] == ALPHA


def test_the_classifier_flags_like_samples_at_most_at_its_nominal_level() -> None:
    rng = np.random.default_rng(1)
    flagged = [
        domain_classifier(rng.normal(size=(1000, DIM)), rng.normal(size=(300, DIM)), seed=seed)["drifted"]
        for seed in range(40)
    ]
    assert sum(flagged) <= 1  # ALPHA is 1%: 40 tries expect 0.4


def test_few_rows_raise_the_threshold_above_evidentlys_floor() -> None:
    rng = np.random.default_rng(2)
    found = domain_classifier(rng.normal(size=(30, DIM)), rng.normal(size=(30, DIM)))
    assert found["threshold"] > MIN_AUC  # 30 rows a side: a classifier with no purchase often passes 0.55


def _features(vectors: list[list[float]], dim: int = 16) -> dict[str, Any]:
    return {"sample": [{"x": 1.0}] * len(vectors), "_meta": {"embeddings": {"dim": dim, "vectors": vectors}}}


def _post_reference(server: Server, model: str, embeddings: Any) -> Any:
    profile = {"name": "training", "rows": 1, "features": _reference_features()}
    if embeddings is not None:
        profile["embeddings"] = embeddings
    return server.http.post(f"/api/v1/models/{model}/references", json=profile)


def _reference_features() -> dict[str, Any]:
    from aither.profile import profile_column

    return {"x": profile_column([1.0, 1.0, 1.0]).to_json()}


@pytest.mark.parametrize("shift", [0.0, 1.0])
def test_spans_embeddings_are_compared_with_the_references_in_drift_and_on_the_model_page(
    server: Server, shift: float
) -> None:
    rng = np.random.default_rng(3)
    reference = rng.normal(size=(1000, DIM)).round(4).tolist()
    answer = _post_reference(server, "encoder", {"dim": 16, "vectors": reference})
    assert answer.status_code == 201 and answer.json()["embeddings"] == 1000
    spans = []
    for _ in range(150):
        rows = rng.normal(size=(8, DIM))
        rows[:, 0] += shift
        spans.append(prediction_span("encoder", [0] * 8, features=_features(rows.round(4).tolist())))
    assert server.ingest(spans).status_code == 200
    found = server.get("/api/v1/models/encoder/drift")["embeddings"]
    assert found["method"] == "domain_classifier" and found["name"] == "embeddings"
    assert found["current_count"] == 1200 and found["reference_count"] == 1000
    assert found["drifted"] is (shift > 0) and found["threshold"] >= MIN_AUC
    (kept,) = server.sql("SELECT seen, length(vectors) FROM drift_embeddings WHERE model = 'encoder'")
    assert kept[0] == 1200  # every row counted, at most RESERVOIR_ROWS kept
    assert RESERVOIR_ROWS < 1200
    page = _signed_in(server).get("/models/encoder").text
    row = page.split('id="drift-embeddings"', 1)[1].split("</tr>", 1)[0]
    assert "domain_classifier" in row and "ROC AUC &ge;" in row
    assert ("drifted" in row) is (shift > 0)


def test_a_reference_without_embeddings_is_named_as_the_reason_and_bad_ones_are_refused(server: Server) -> None:
    assert _post_reference(server, "plain", {"dim": 16, "vectors": [[1.0] * 3]}).status_code == 400
    assert _post_reference(server, "plain", {"dim": 0, "vectors": [[1.0] * DIM]}).status_code == 400
    assert _post_reference(server, "plain", None).status_code == 201
    assert server.get("/api/v1/models/plain/drift")["embeddings"] is None  # no embeddings anywhere: no row
    vectors = np.zeros((4, DIM)).tolist()
    span = prediction_span("plain", [0] * 4, features=_features(vectors))
    assert server.ingest([span]).status_code == 200
    found = server.get("/api/v1/models/plain/drift")["embeddings"]
    assert found["score"] is None and "log_reference(..., embeddings=)" in found["skipped"]


def test_malformed_span_embeddings_are_left_out_and_the_rest_is_stored(server: Server) -> None:
    _post_reference(server, "odd", {"dim": 16, "vectors": np.zeros((50, DIM)).tolist()})
    good = prediction_span("odd", [0], features=_features([[0.5] * DIM]))
    short = prediction_span("odd", [0], features=_features([[0.5] * 3]))
    text = prediction_span("odd", [0], features={"sample": [{"x": 1.0}], "_meta": {"embeddings": json.dumps([1])}})
    assert server.ingest([good, short, text]).status_code == 200
    found = server.get("/api/v1/models/odd/drift")["embeddings"]
    assert found["current_count"] == 1 and "at least" in found["skipped"]


def test_old_hours_reservoirs_go_with_the_other_rollups(server: Server) -> None:
    day_ns = 86_400 * 10**9
    now = time.time_ns()
    spans = [
        prediction_span("aged", [0], features=_features([[0.1] * DIM]), start_ns=now - 800 * day_ns),
        prediction_span("aged", [0], features=_features([[0.2] * DIM]), start_ns=now),
    ]
    assert server.ingest(spans).status_code == 200
    count = "SELECT count(*) FROM drift_embeddings WHERE model = 'aged'"
    deadline = time.monotonic() + 60
    while server.sql(count)[0][0] < 2 and time.monotonic() < deadline:  # the feeder merges about once a second
        time.sleep(0.05)
    assert server.sql(count)[0][0] == 2
    expire(server.thread.store, Retention(raw_days=None, rollup_days=730))
    assert server.sql(count)[0][0] == 1  # this hour's reservoir stays


def test_erasing_with_the_sketches_empties_the_hours_embedding_reservoir_too(server: Server) -> None:
    rng = np.random.default_rng(5)
    assert (
        _post_reference(server, "erased", {"dim": 16, "vectors": rng.normal(size=(50, DIM)).tolist()}).status_code
        == 201
    )
    trace_id = new_trace_id()
    span = prediction_span("erased", [0] * 4, trace_id=trace_id, features=_features(rng.normal(size=(4, DIM)).tolist()))
    assert server.ingest([span]).status_code == 200
    server.get("/api/v1/models/erased/drift")  # the drift feeder merges what it was sent first
    count = "SELECT count(*) FROM drift_embeddings WHERE model = 'erased'"
    assert server.sql(count) == [(1,)]
    erased = server.http.post("/api/v1/erasures", json={"trace_id": trace_id.hex(), "sketches": True})
    assert erased.status_code == 200, erased.text
    assert erased.json()["sketches"] >= 1
    assert server.sql(count) == [(0,)]
