"""Values the server is sent are stored and read back as docs/wire-contract.md ("Values") says, or refused with the
reason; one bad value costs its span at most, never its request, and nothing stored makes a page answer 500."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest
from conftest import Server
from otlp_builders import KEY, label_span, new_trace_id, parse_response, prediction_span, span_with

import aither
import aither.profile

#: What the SDK writes for a lone surrogate (a cut emoji): a JSON escape, as RFC 8259 allows.
LONE = '"a\\ud83db"'


def _prediction(server: Server, trace_id: bytes) -> dict[str, object]:
    return server.get(f"/api/v1/predictions/{trace_id.hex()}")  # type: ignore[no-any-return]


def test_a_lone_surrogate_is_stored_as_the_replacement_character(server: Server) -> None:
    trace_id = new_trace_id()
    features = '{"sample": {"t": "\\udc00"}}'
    spans = [
        span_with({"ml.model.name": "uni", "ml.prediction": LONE, "ml.features": features}, trace_id=trace_id),
        span_with({"ml.label": LONE}, trace_id=trace_id, name="label"),
        prediction_span("uni", 1),
    ]
    response = server.ingest(spans)
    assert response.status_code == 200, response.text
    assert not parse_response(response.content).HasField("partial_success")
    found = _prediction(server, trace_id)
    assert found["prediction"] == "a\ufffdb"
    assert found["labels"] == {"0": "a\ufffdb"}
    assert found["features"] == {"sample": {"t": "\ufffd"}}
    listed = server.get("/api/v1/models/uni/predictions")
    assert len(listed["data"]) == 2
    assert server.http.get("/api/v1/labels/unjoined").status_code == 200


def test_a_lone_surrogate_in_an_otlp_json_body_costs_nothing(server: Server) -> None:
    good, odd = new_trace_id().hex(), new_trace_id().hex()

    def span(trace_id: str, prediction: str) -> str:
        attributes = [
            {"key": "ml.model.name", "value": {"stringValue": "json-model"}},
            {"key": "ml.prediction", "value": {"stringValue": prediction}},
        ]
        item = {"traceId": trace_id, "spanId": "0102030405060708", "name": "predict", "attributes": attributes}
        return json.dumps(item).replace("LONE", "\\ud83d")  # the escape JSON reads into a lone surrogate

    body = '{"resourceSpans": [{"scopeSpans": [{"spans": [' + span(good, "1") + ", " + span(odd, '"aLONEb"') + "]}]}]}"
    response = server.raw.post(
        "/v1/traces", content=body, headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"}
    )
    assert response.status_code == 200, response.text
    assert _prediction(server, bytes.fromhex(good))["prediction"] == 1
    assert _prediction(server, bytes.fromhex(odd))["prediction"] == "a\ufffdb"


def test_a_paired_surrogate_escape_is_the_character(server: Server) -> None:
    trace_id = new_trace_id()
    server.ingest([prediction_span("uni", None, trace_id=trace_id, raw_prediction='"\\ud83d\\ude00"')])
    assert _prediction(server, trace_id)["prediction"] == "\U0001f600"


def test_a_plain_string_prediction_or_label_is_that_string(server: Server) -> None:
    trace_id = new_trace_id()
    spans = [
        span_with({"ml.model.name": "words", "ml.prediction": "cat"}, trace_id=trace_id),
        span_with({"ml.label": "dog"}, trace_id=trace_id, name="label"),
        span_with({"ml.model.name": "words", "ml.prediction": "{not json"}),
    ]
    response = server.ingest(spans)
    assert not parse_response(response.content).HasField("partial_success"), response.content
    found = _prediction(server, trace_id)
    assert (found["prediction"], found["labels"]) == ("cat", {"0": "dog"})
    assert server.metrics("words")["calls"] == 2


def test_array_and_map_features_are_their_json(server: Server) -> None:
    ids = [new_trace_id(), new_trace_id()]
    spans = [
        span_with({"ml.model.name": "otel", "ml.prediction": 1, "ml.features": [1.5, 2.5]}, trace_id=ids[0]),
        span_with({"ml.model.name": "otel", "ml.prediction": 1, "ml.features": ["a", "b"]}, trace_id=ids[1]),
    ]
    assert not parse_response(server.ingest(spans).content).HasField("partial_success")
    assert _prediction(server, ids[0])["features"] == [1.5, 2.5]
    assert _prediction(server, ids[1])["features"] == ["a", "b"]


def test_a_label_of_one_row_keeps_its_request(server: Server) -> None:
    trace_id = new_trace_id()
    good = [prediction_span("kept", [0, 1], trace_id=trace_id), label_span(trace_id, 1, row=0)]
    bad = span_with({"ml.label": json.dumps("x"), "ml.label.row": "many"}, trace_id=trace_id, name="label")
    partial = parse_response(server.ingest([*good, bad]).content).partial_success
    assert partial.rejected_spans == 1 and "ml.label.row" in partial.error_message
    assert _prediction(server, trace_id)["labels"] == {"0": 1}


# ---------------------------------------------------------------------------------------------- drift


@pytest.fixture
def sdk(server: Server) -> Iterator[Server]:
    aither.init(api_key=KEY, base_url=server.url, flush_interval=0.2)
    try:
        yield server
    finally:
        aither.close()


def _counts(server: Server, model: str) -> dict[str, int]:
    found = server.get(f"/api/v1/models/{model}/drift")
    return {f["name"]: f["current_count"] for f in found["features"]}


def test_a_list_or_dict_valued_feature_costs_that_value_not_its_request(sdk: Server) -> None:
    rng = np.random.default_rng(3)
    aither.log_reference("healthy", pd.DataFrame({"x": rng.normal(size=200)}))
    aither.log_reference("tagged", {"amount": rng.normal(size=200), "country": ["FR", "DE"] * 100})
    for i in range(40):  # one request: both models' spans together
        aither.log_prediction("healthy", {"x": float(i)}, 1)
        features = {"amount": float(i), "country": "FR", "tags": ["a", "b"], "extra": {"k": 1}, "series": [1.0, 2.0]}
        aither.log_prediction("tagged", features, 1)
    assert aither.flush(30)
    assert _counts(sdk, "healthy") == {"x": 40}
    assert _counts(sdk, "tagged") == {"amount": 40, "country": 40}


def _shifted(server: Server, model: str, rows: int, shift: float) -> dict[str, Any]:
    rng = np.random.default_rng(rows)
    aither.log_reference(model, pd.DataFrame({"x": rng.normal(size=rows), "city": rng.choice(["A", "B"], rows)}))
    for _ in range(100):  # 5 rows sampled of each call: 500 current values
        aither.log_prediction(
            model,
            pd.DataFrame({"x": rng.normal(loc=shift, size=50), "city": rng.choice(["A", "C"], 50)}),
            np.zeros(50),
        )
    assert aither.flush(30)
    return {f["name"]: f for f in server.get(f"/api/v1/models/{model}/drift")["features"]}


def test_the_drift_score_grows_with_drift_and_the_p_value_is_its_own_field(sdk: Server) -> None:
    for rows, method, categorical in ((500, "ks", "chisquare"), (5000, "jensenshannon", "jensenshannon")):
        still = _shifted(sdk, f"still-{rows}", rows, 0.0)
        moved = _shifted(sdk, f"moved-{rows}", rows, 2.0)
        assert moved["x"]["method"] == method and moved["city"]["method"] == categorical
        assert moved["x"]["score"] > still["x"]["score"], rows
        assert moved["x"]["drifted"] and not still["x"]["drifted"], rows
        if method == "ks":
            assert moved["x"]["p_value"] < 0.05 < still["x"]["p_value"]
            assert moved["x"]["score"] == moved["x"]["statistics"]["ks_statistic"]
            assert moved["city"]["score"] == moved["city"]["statistics"]["cramers_v"]
        else:
            assert moved["x"]["p_value"] is None


def test_a_drift_monitor_reads_the_same_distance_whatever_the_references_size(sdk: Server) -> None:
    for rows in (500, 5000):
        moved = _shifted(sdk, f"watched-{rows}", rows, 2.0)
        monitor = aither.monitors.create(f"x drift {rows}", f"watched-{rows}", "drift:x", ">=", 0.1, min_rows=10)
        evaluated = aither.monitors.evaluate(monitor.id)
        assert evaluated.state == "ALERT", rows
        assert evaluated.value == pytest.approx(moved["x"]["statistics"]["jensenshannon"], rel=0.05)


def test_a_method_that_does_not_apply_to_a_column_skips_that_column_by_name(sdk: Server) -> None:
    _shifted(sdk, "mixed", 5000, 2.0)
    found = sdk.get("/api/v1/models/mixed/drift", method="psi")
    by_name = {f["name"]: f for f in found["features"]}
    assert by_name["x"]["method"] == "psi" and by_name["x"]["score"] > 0.1
    assert by_name["city"]["skipped"] == "method 'psi' does not apply to a categorical column"
    assert by_name["city"]["score"] is None and by_name["city"]["drifted"] is False


def test_a_reference_with_nan_or_infinite_bounds_is_refused(sdk: Server) -> None:
    profile = aither.profile.profile_column([1.0, 2.0, 3.0]).to_json()
    for bound in ("NaN", "Infinity"):
        body = {"rows": 3, "features": {"x": {**profile, "max": bound}}}
        text = json.dumps(body).replace(f'"{bound}"', bound)  # a bare NaN or Infinity, as Python's json writes
        response = sdk.http.post(
            "/api/v1/models/bounded/references", content=text, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400, response.text
        assert response.json()["error"]["message"] == "features.x: min and max must be finite numbers or null"
    assert sdk.http.get("/api/v1/models/bounded/drift").status_code == 404


def test_log_reference_refuses_repeated_column_names_and_ragged_columns(sdk: Server) -> None:
    with pytest.raises(ValueError, match="repeated: a"):
        aither.log_reference("refs", pd.DataFrame([[1, 2]], columns=["a", "a"]))
    with pytest.raises(ValueError, match="one length; got a: 3, b: 2"):
        aither.log_reference("refs", {"a": [1, 2, 3], "b": [1, 2]})


# ---------------------------------------------------------------------------------------------- NUL characters


def test_a_nul_character_costs_nothing_on_either_engine(sdk: Server) -> None:
    """PostgreSQL text cannot hold NUL: there it becomes U+FFFD (SQLite keeps it); no request fails for it."""

    @aither.track(name="nul-model", version="v\x001")
    def scored(x: float) -> float:
        if x == 3:
            raise ValueError("bad \x00 input")
        return x * 2

    for i in range(10):
        try:
            scored(float(i))
        except ValueError:
            pass
    aither.log_prediction("na\x00me", {"x": 1}, 1)
    assert aither.flush(30)
    assert aither.stats()["dropped"] == {}
    (versions,) = [m["versions"] for m in sdk.get("/api/v1/models")["data"] if m["name"] == "nul-model"]
    assert versions in (["v\x001"], ["v\ufffd1"])
    version = versions[0]
    assert sdk.metrics("nul-model", version=version)["calls"] == 10
    assert sdk.metrics("nul-model", version=version)["errors"] == 1
    assert sdk.http.get("/api/v1/models/x/metrics", params={"version": "a\x00b"}).status_code in (200, 404)
    assert sdk.http.get("/api/v1/models/na%00me/predictions").status_code in (200, 404)
    reference = aither.log_reference("nul-model", pd.DataFrame({"x": [1.0, 2.0]}), name="ref\x00erence")
    assert reference["name"] in ("ref\x00erence", "ref\ufffderence")
    monitor = sdk.http.post(
        "/api/v1/monitors",
        json={"name": "watch\x00", "model": "nul-model", "metric": "volume", "op": "<", "threshold": 1, "window": "1h"},
    )
    assert monitor.status_code == 201, monitor.text
    key = sdk.http.post("/api/v1/api-keys", json={"name": "key\x00", "scopes": ["read"]})
    assert key.status_code == 201, key.text


# ---------------------------------------------------------------------------------------------- monitors


def test_a_monitor_on_a_model_or_column_without_data_is_created_with_the_warning(sdk: Server) -> None:
    nobody = aither.monitors.create("ghost", "nobody", "accuracy", "<", 0.8)
    assert nobody.warnings == ("no model named 'nobody' has sent data yet: the monitor stays NO_DATA until it does",)
    aither.log_prediction("watched", {"age": 30}, 1)
    assert aither.flush(30)
    no_reference = aither.monitors.create("age drift", "watched", "drift:age", ">=", 0.1)
    assert no_reference.warnings == (
        "model 'watched' has no reference yet: drift:age stays NO_DATA until one is logged",
    )
    aither.log_reference("watched", pd.DataFrame({"age": [30.0, 40.0]}))
    missing = aither.monitors.create("height nulls", "watched", "null_rate:height", ">", 0.1)
    assert missing.warnings == ("the reference of model 'watched' has no column 'height': the monitor stays NO_DATA",)
    fine = aither.monitors.create("age nulls", "watched", "null_rate:age", ">", 0.1)
    calls = aither.monitors.create("volume", "watched", "volume", "<", 1)
    assert fine.warnings == () and calls.warnings == ()
    assert aither.monitors.get(nobody.id).state == "NO_DATA"  # created all the same: the model may come later
