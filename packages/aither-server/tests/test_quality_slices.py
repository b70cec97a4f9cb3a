"""Quality over time and by segment, from the SDK's sampled rows joined to their labels, through a real server."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import Server

import aither


class Scorer:
    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return np.asarray(frame["a"].to_numpy() > 0).astype(int)


def test_segments_and_series_show_where_and_when_the_model_is_wrong(sdk: Server) -> None:
    rng = np.random.default_rng(21)
    reference = pd.DataFrame({"a": rng.normal(size=4000), "city": rng.choice(["A", "B"], size=4000)})
    aither.log_reference("segmented", reference)
    tracked = aither.wrap(Scorer(), name="segmented", sample_rows=20)
    for _ in range(30):
        frame = pd.DataFrame({"a": rng.normal(size=60), "city": rng.choice(["A", "B", "C"], size=60)})
        truth = (frame["a"].to_numpy() > 0).astype(int)
        truth = np.where(frame["city"].to_numpy() == "B", 1 - truth, truth)  # the model is always wrong on B
        tracked.predict(frame)
        aither.log_label(tracked.last_trace_id, truth.tolist())
    assert aither.flush(30)

    by_city = sdk.get("/api/v1/models/segmented/segments", feature="city")
    assert by_city["kind"] == "categorical" and by_city["rows"] == 30 * 20
    cities = {s["value"]: s for s in by_city["segments"]}
    assert set(cities) == {"A", "B", "C"}
    assert cities["A"]["accuracy"] == 1.0 and cities["C"]["accuracy"] == 1.0 and cities["B"]["accuracy"] == 0.0
    assert sum(s["rows"] for s in by_city["segments"]) == 600

    by_a = sdk.get("/api/v1/models/segmented/segments", feature="a")
    assert by_a["kind"] == "numeric" and len(by_a["segments"]) == 4  # the reference's quartiles
    assert by_a["segments"][0]["value"].startswith("< ") and by_a["segments"][-1]["value"].startswith(">= ")
    assert sum(s["rows"] for s in by_a["segments"]) == 600

    series = sdk.get("/api/v1/models/segmented/metrics/series", bucket="1h")
    filled = [p for p in series["points"] if p["labels"]]
    assert sum(p["labels"] for p in filled) == 30 * 60 and all(p["task"] == "classification" for p in filled)
    overall = sum(p["accuracy"] * p["labels"] for p in filled) / sum(p["labels"] for p in filled)
    assert overall == pytest.approx(sdk.metrics("segmented")["accuracy"])
    assert sdk.http.get("/api/v1/models/nobody/segments", params={"feature": "a"}).status_code == 404

    # The same through the SDK's typed reads.
    typed = aither.models.segments("segmented", "city")
    assert {g.value: (g.rows, g.accuracy) for g in typed.segments} == {
        s["value"]: (s["rows"], s["accuracy"]) for s in by_city["segments"]
    }
    points = [p for p in aither.models.metrics_series("segmented", bucket="1h") if p.labels]
    assert sum(p.labels for p in points) == 30 * 60 and points[0].start is not None
