"""Drift and data quality end to end: the SDK's reference and sampled traffic, through a real server."""

from __future__ import annotations

import datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import Server

import aither


class Scorer:
    """A model whose output follows its first feature, so prediction drift follows that feature."""

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"].to_numpy() > 0).astype(int)


def _frame(rng: np.random.Generator, rows: int, *, shift_b: float = 0.0, new_category: float = 0.0) -> pd.DataFrame:
    categories = rng.choice(["A", "B", "C"], size=rows, p=[0.5, 0.3, 0.2])
    if new_category:
        categories = np.where(rng.random(rows) < new_category, "D", categories)
    return pd.DataFrame(
        {
            "a": rng.normal(size=rows),
            "b": rng.normal(loc=shift_b, size=rows),
            "c": rng.uniform(0, 10, size=rows),
            "d": rng.exponential(size=rows),
            "city": categories,
        }
    )


def _traffic(tracked: Any, rng: np.random.Generator, calls: int, **shift: float) -> None:
    for _ in range(calls):
        tracked.predict(_frame(rng, 200, **shift))
    assert aither.flush(30)


def test_a_planted_shift_is_found_in_exactly_the_shifted_columns(sdk: Server) -> None:
    rng = np.random.default_rng(11)
    reference = _frame(rng, 20_000)
    stored = aither.log_reference("scorer", reference, predictions=Scorer().predict(reference), version="1")
    assert stored["name"] == "training" and stored["columns"] == ["a", "b", "c", "city", "d"]
    tracked = aither.wrap(Scorer(), name="scorer", version="1", sample_rows=40)
    _traffic(tracked, rng, 100, shift_b=1.0, new_category=0.3)

    found = sdk.get("/api/v1/models/scorer/drift", version="1")
    assert found["reference"]["name"] == "training" and found["reference"]["rows"] == 20_000
    by_name = {f["name"]: f for f in found["features"]}
    assert {name for name, f in by_name.items() if f["drifted"]} == {"b", "city"}
    assert by_name["b"]["method"] == "jensenshannon" and by_name["b"]["threshold"] == 0.1
    assert by_name["city"]["kind"] == "categorical" and by_name["a"]["kind"] == "numeric"
    assert by_name["a"]["current_count"] == 4000 and by_name["a"]["reference_count"] == 20_000
    assert found["prediction"]["drifted"] is False  # the output follows column a, which did not move

    quality = sdk.get("/api/v1/models/scorer/data-quality", version="1")
    rows = {f["name"]: f for f in quality["features"]}
    assert rows["city"]["unseen_category_rate"] == pytest.approx(0.3, abs=0.04)
    assert rows["a"]["out_of_range_rate"] == pytest.approx(0.0, abs=0.005)
    assert rows["a"]["dtype"] == rows["a"]["reference_dtype"] == "float64"
    assert quality["new_columns"] == [] and quality["missing_columns"] == []


def test_no_shift_no_drift_and_a_past_window_serves_as_reference(sdk: Server) -> None:
    rng = np.random.default_rng(12)
    aither.log_reference("steady", _frame(rng, 20_000))
    tracked = aither.wrap(Scorer(), name="steady", sample_rows=40)
    _traffic(tracked, rng, 60)
    found = sdk.get("/api/v1/models/steady/drift")
    assert [f["name"] for f in found["features"] if f["drifted"]] == []
    now = datetime.datetime.now(datetime.timezone.utc)
    window = (
        f"window:{(now - datetime.timedelta(hours=2)).isoformat()}/{(now + datetime.timedelta(hours=1)).isoformat()}"
    )
    against_itself = sdk.get("/api/v1/models/steady/drift", reference=window)
    assert against_itself["reference"]["name"] == window
    # The same values, merged in another order (days against hours): equal up to KLL's randomised compaction.
    assert all(f["score"] == pytest.approx(0.0, abs=0.02) for f in against_itself["features"])
    assert not any(f["drifted"] for f in against_itself["features"])
    series = sdk.get("/api/v1/models/steady/drift/series", feature="b", bucket="1h")
    assert series["points"] and all(p["drifted"] is False for p in series["points"])
    assert sum(p["current_count"] for p in series["points"]) == 60 * 40


def test_data_quality_sees_nulls_new_missing_and_retyped_columns(sdk: Server) -> None:
    rng = np.random.default_rng(13)
    aither.log_reference("quality", _frame(rng, 5000))
    tracked = aither.wrap(Scorer(), name="quality", sample_rows=40)
    for _ in range(30):
        frame = _frame(rng, 100).drop(columns=["d"])
        frame.loc[frame.sample(frac=0.5, random_state=1).index, "c"] = np.nan
        frame.loc[:24, "b"] = 100.0  # a quarter of the rows far above anything the reference saw
        frame["extra"] = 1.0
        frame["city"] = frame["city"].astype("category")
        tracked.predict(frame)
    assert aither.flush(30)
    quality = sdk.get("/api/v1/models/quality/data-quality")
    rows = {f["name"]: f for f in quality["features"]}
    assert quality["new_columns"] == ["extra"] and quality["missing_columns"] == ["d"]
    assert rows["c"]["null_rate"] == pytest.approx(0.5, abs=0.1) and rows["c"]["reference_null_rate"] == 0.0
    assert rows["city"]["dtype"] == "category" and rows["city"]["dtype_changed"] is True
    assert rows["a"]["dtype_changed"] is False
    assert rows["b"]["out_of_range_rate"] == pytest.approx(0.25, abs=0.08)
    assert rows["a"]["out_of_range_rate"] == pytest.approx(0.0, abs=0.02)


def test_a_wide_input_declares_its_schema_by_hash_and_rotates_into_every_column(sdk: Server) -> None:
    rng = np.random.default_rng(14)
    names = [f"w{i}" for i in range(120)]
    reference = pd.DataFrame(rng.normal(size=(3000, 120)), columns=names)
    aither.log_reference("wide", reference)
    tracked = aither.wrap(Scorer(), name="wide", sample_rows=20)
    for _ in range(24):  # 12 windows of 10 columns, each twice
        frame = pd.DataFrame(rng.normal(size=(50, 120)), columns=names)
        frame["a"] = 0.0
        tracked.predict(frame)
    assert aither.flush(30)
    found = sdk.get("/api/v1/models/wide/drift")
    assert all(f["current_count"] > 0 for f in found["features"])
    quality = sdk.get("/api/v1/models/wide/data-quality")
    assert quality["missing_columns"] == [] and quality["new_columns"] == ["a"]


def test_references_need_write_and_are_checked(sdk: Server) -> None:
    response = sdk.raw.post("/api/v1/models/m/references", json={"features": {}})
    assert response.status_code == 401
    bad = sdk.http.post(
        "/api/v1/models/m/references",
        json={"rows": 1, "features": {"x": {"kind": "numeric", "count": 1, "sketch": "bm90IGEgc2tldGNo"}}},
    )
    assert bad.status_code == 400 and "features.x" in bad.json()["error"]["message"]
    missing = sdk.http.get("/api/v1/models/nobody/drift")
    assert missing.status_code == 404
    unknown = sdk.http.get("/api/v1/models/m/drift", params={"method": "magic"})
    assert unknown.status_code == 400


def test_each_sampled_row_joins_its_prediction_row_and_its_label(sdk: Server) -> None:
    rng = np.random.default_rng(15)
    frame = _frame(rng, 50)
    tracked = aither.wrap(Scorer(), name="joined", sample_rows=5)
    output = tracked.predict(frame)
    labels = [int(v) for v in rng.integers(0, 2, size=50)]
    aither.log_label(tracked.last_trace_id, labels)
    assert aither.flush(30)
    found = sdk.get(f"/api/v1/predictions/{tracked.last_trace_id}")
    joined = found["sampled_rows"]
    assert len(joined) == 5 and [r["row"] for r in joined] == found["features"]["_meta"]["rows"]
    for entry in joined:
        assert entry["features"]["b"] == pytest.approx(frame["b"].iloc[entry["row"]])
        assert entry["prediction"] == output[entry["row"]]
        assert entry["label"] == labels[entry["row"]]


def test_the_sdk_reads_models_metrics_drift_quality_and_predictions_as_typed_objects(sdk: Server) -> None:
    rng = np.random.default_rng(16)
    aither.log_reference("typed", _frame(rng, 5000), version="3")
    tracked = aither.wrap(Scorer(), name="typed", version="3", sample_rows=40)
    for _ in range(20):
        frame = _frame(rng, 100, shift_b=2.0)
        tracked.predict(frame)
        aither.log_label(tracked.last_trace_id, [int(v) for v in frame["a"].to_numpy() > 0])
    assert aither.flush(30)

    (model,) = [m for m in aither.models.list() if m.name == "typed"]
    assert model.versions == ("3",) and model.calls == 20 and model.predictions == 2000
    metrics = aither.models.metrics("typed", version="3")
    assert metrics.task == "classification" and metrics.accuracy == 1.0 and metrics.labels == 2000
    report = aither.models.drift("typed", version="3")
    assert isinstance(report, aither._models.DriftReport)
    assert report.drifted == ["b"] and report.reference["name"] == "training"
    by_name = {c.name: c for c in report.features}
    assert by_name["b"].score is not None and by_name["b"].score >= by_name["b"].threshold  # type: ignore[operator]
    quality = aither.models.data_quality("typed", version="3")
    assert {c.name for c in quality.features} == {"a", "b", "c", "d", "city"} and quality.new_columns == ()
    (latest, *_) = aither.models.predictions("typed", limit=3)
    assert latest.batch_size == 100 and len(latest.sampled_rows) == 40
    assert all(r["label"] == r["prediction"] for r in latest.sampled_rows)
    with pytest.raises(aither.NotFoundError):
        aither.models.drift("nobody")
