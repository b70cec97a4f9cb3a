"""``aither.log_reference``: the whole set profiled on the client, one POST, and a missing extra named."""

from __future__ import annotations

import json
import sys

import numpy as np
import pandas as pd
import polars as pl
import pytest

import aither
from aither.profile import CATEGORICAL, NUMERIC, Profile, merge, profile_table
from aither.testing import OTLPReceiver


def test_every_kind_of_table_is_profiled_column_by_column() -> None:
    rng = np.random.default_rng(0)
    numbers = rng.normal(size=1000)
    numbers[:10] = np.nan
    frame = pd.DataFrame({"x": numbers, "k": rng.choice(["a", "b"], size=1000), "n": np.arange(1000)})
    profiles = profile_table(frame)
    assert profiles["x"].kind == NUMERIC and profiles["x"].count == 990 and profiles["x"].nulls == 10
    assert profiles["x"].minimum == np.nanmin(numbers) and profiles["x"].maximum == np.nanmax(numbers)
    assert profiles["k"].kind == CATEGORICAL and profiles["k"].count == 1000
    assert profiles["n"].dtype == "int64"
    assert profiles["x"].kll().get_quantile(0.5) == pytest.approx(np.nanmedian(numbers), abs=0.1)
    for same in (pl.from_pandas(frame), frame.to_dict("list"), frame.to_dict("records")):
        other = profile_table(same)
        assert {c: (p.kind, p.count, p.nulls) for c, p in other.items()} == {
            c: (p.kind, p.count, p.nulls) for c, p in profiles.items()
        }
    array = profile_table(np.ones((5, 3)))
    assert list(array) == ["0", "1", "2"] and array["0"].count == 5


def test_profiles_travel_as_json_and_merge() -> None:
    first = profile_table(pd.DataFrame({"x": np.arange(100.0)}))["x"]
    second = profile_table(pd.DataFrame({"x": np.arange(100.0, 300.0)}))["x"]
    again = Profile.from_json(json.loads(json.dumps(first.to_json())))
    assert again == first
    merged = merge([again, second])
    assert merged is not None and merged.count == 300 and (merged.minimum, merged.maximum) == (0.0, 299.0)
    assert merged.kll().get_quantile(0.5) == pytest.approx(150, abs=6)


def test_log_reference_posts_the_profile_to_the_references_route() -> None:
    frame = pd.DataFrame({"x": np.arange(10.0), "k": list("ababababab")})
    with OTLPReceiver() as receiver:
        aither.init(api_key="aith_k", base_url=receiver.url)
        try:
            aither.log_reference("m/odel", frame, predictions=np.zeros(10), version="2", name="train-2026")
        except aither.APIError:
            pass  # the plain OTLP receiver answers 404 to an API route; the request is what is checked
        (request,) = [r for r in receiver.requests if "/references" in r.path]
    assert request.path == "/api/v1/models/m%2Fodel/references"
    assert request.headers["authorization"] == "Bearer aith_k"
    body = json.loads(request.body)
    assert (body["name"], body["version"], body["rows"]) == ("train-2026", "2", 10)
    assert sorted(body["features"]) == ["k", "x"] and body["predictions"]["count"] == 10
    assert Profile.from_json(body["features"]["x"]).count == 10


def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "datasketches", None)  # as if it were not installed
    with pytest.raises(aither.MissingDependencyError, match=r"datasketches.*'reference' extra"):
        aither.log_reference("m", {"x": [1.0]})
    with pytest.raises(ValueError, match="window:"):
        aither.log_reference("m", {"x": [1.0]}, name="window:1/2")
