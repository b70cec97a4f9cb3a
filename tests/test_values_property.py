"""docs/wire-contract.md ("Values") as a property: random values of every type it names go through the real SDK
to a real server; every request is decoded with opentelemetry-proto on its way (a proxy between the two), every
value is read back through the query API, and both are compared with what the contract says they become.

At least 2,000 cases by default (about a minute here); ``AITHER_PROPERTY_EXAMPLES=20000`` runs ten times more.
"""

from __future__ import annotations

import datetime
import decimal
import gzip
import http.client
import json
import math
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

import aither
from aither import _client
from aither_server import ServerThread, Store

ADMIN_KEY = "aith_property_admin_key_0123456789"
#: Cases of the whole module; each test takes its share.
EXAMPLES = int(os.environ.get("AITHER_PROPERTY_EXAMPLES", "2000"))


def _share(fraction: float) -> settings:
    return settings(
        max_examples=max(10, int(EXAMPLES * fraction)),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
    )


# ---------------------------------------------------------------------------------------------- the proxy


class _Proxy:
    """Between the SDK and the server: decodes each body with opentelemetry-proto, then forwards it."""

    def __init__(self, target: str) -> None:
        self.target = httpx.URL(target)
        self.spans: dict[str, dict[str, Any]] = {}
        self._requests: dict[str, list[ExportTraceServiceRequest]] = {}
        self.corrupt: list[str] = []
        self.statuses: list[int] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                proxy.decode(self.path, gzip.decompress(body) if self.headers.get("Content-Encoding") else body)
                status, answer, kind = proxy.forward(self.path, body, dict(self.headers))
                proxy.statuses.append(status)
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def decode(self, path: str, body: bytes) -> None:
        try:
            if path.endswith("/v1/metrics"):
                ExportMetricsServiceRequest.FromString(body)
                return
            request = ExportTraceServiceRequest.FromString(body)
        except Exception as exc:
            self.corrupt.append(f"{path}: {exc}")
            return
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {kv.key: getattr(kv.value, kv.value.WhichOneof("value")) for kv in span.attributes}
                    key = span.trace_id.hex() + ("/label" if span.name == "label" else "")
                    self.spans[key] = attributes
                    self._requests.setdefault(span.trace_id.hex(), []).append(request)

    def requests_of(self, trace_id: str) -> list[ExportTraceServiceRequest]:
        """The decoded requests that carried spans of ``trace_id``, in arrival order."""
        return self._requests.get(trace_id, [])

    def forward(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
        connection = http.client.HTTPConnection(self.target.host, self.target.port, timeout=60)
        try:
            kept = {k: v for k, v in headers.items() if k.lower() not in ("host", "connection")}
            connection.request("POST", path, body=body, headers=kept)
            response = connection.getresponse()
            return response.status, response.read(), response.getheader("Content-Type") or ""
        finally:
            connection.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture(scope="module")
def wire(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[_Proxy, httpx.Client]]:
    store = Store(tmp_path_factory.mktemp("property") / "aither.db")
    store.bootstrap(ADMIN_KEY)
    previous = _client.get_client()
    with ServerThread(store) as server:
        proxy = _Proxy(server.url)
        _client.init(api_key=ADMIN_KEY, base_url=proxy.url, flush_interval=0.01)
        with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as http:
            try:
                yield proxy, http
            finally:
                _client.get_client().exporter.close(timeout=10)
                _client.restore(previous)
                proxy.close()
    assert not proxy.corrupt, proxy.corrupt
    assert all(status < 500 for status in proxy.statuses)


# ---------------------------------------------------------------------------------------------- the contract

_ZONES = st.builds(
    lambda seconds: datetime.timezone(datetime.timedelta(seconds=seconds)),
    st.integers(min_value=-86399, max_value=86399),
)
_TEXT = st.text(st.characters(codec=None, exclude_categories=()), max_size=30)
_FLOATS = st.floats(allow_nan=True, allow_infinity=True).filter(lambda f: math.isnan(f) or abs(f) <= 1e100)
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    _FLOATS,
    _TEXT,
    st.binary(max_size=20),
    st.datetimes(timezones=st.one_of(st.none(), _ZONES)),
    st.dates(),
    st.timedeltas(),
    st.decimals(allow_nan=False, allow_infinity=False).filter(lambda d: abs(d) <= decimal.Decimal("1e100")),
    st.complex_numbers(max_magnitude=1e100, allow_nan=False, allow_infinity=False),
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(np.int64),
    st.floats(width=32, allow_nan=False).map(np.float32),
    st.floats(allow_nan=False, allow_infinity=False).filter(lambda f: abs(f) <= 1e100).map(np.longdouble),
    st.integers(min_value=-(2**62), max_value=2**62).map(lambda n: np.datetime64(n, "ns")),
    st.booleans().map(np.bool_),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(_TEXT, inner, max_size=4)),
    max_leaves=8,
)


def _float(value: float) -> Any:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def on_the_wire(value: Any) -> Any:
    """What docs/wire-contract.md ("Values") says the SDK writes for ``value`` (as JSON reads it back)."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.datetime64):
        stamp = pd.Timestamp(value)
        return "NaT" if pd.isna(stamp) else stamp.isoformat()
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, decimal.Decimal, np.floating)):
        return _float(float(value))
    if isinstance(value, complex):
        return [_float(value.real), _float(value.imag)]
    if isinstance(value, (datetime.datetime, datetime.date)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, bytes):
        return {"_type": "bytes", "size": len(value)}
    if isinstance(value, list):
        return [on_the_wire(v) for v in value]
    if isinstance(value, dict):
        return {k: on_the_wire(v) for k, v in value.items()}
    raise AssertionError(f"no rule for {type(value)}")


def stored(value: Any) -> Any:
    """What the server keeps of the wire's value: a lone surrogate becomes U+FFFD (a pair, its character)."""
    if isinstance(value, str):
        return value.encode("utf-16", "surrogatepass").decode("utf-16", "replace")
    if isinstance(value, list):
        return [stored(v) for v in value]
    if isinstance(value, dict):
        return {stored(k): stored(v) for k, v in value.items()}
    return value


def _same(found: Any, expected: Any) -> bool:
    """Equal, floats to their last bit (``-0.0`` and ``0.0`` alike, as JSON's ``-0.0``)."""
    if isinstance(expected, float) and isinstance(found, (int, float)) and not isinstance(found, bool):
        return float(found) == expected
    if isinstance(expected, list):
        return isinstance(found, list) and len(found) == len(expected) and all(map(_same, found, expected))
    if isinstance(expected, dict):
        return (
            isinstance(found, dict)
            and found.keys() == expected.keys()
            and all(_same(found[k], expected[k]) for k in expected)
        )
    return type(found) is type(expected) and found == expected


def _read(http: httpx.Client, trace_id: str) -> Any:
    response = http.get(f"/api/v1/predictions/{trace_id}")
    assert response.status_code == 200, response.text
    return response.json()


# ---------------------------------------------------------------------------------------------- properties


@_share(0.5)
@given(prediction=_VALUES, label=st.one_of(st.booleans(), st.integers(-(2**62), 2**62), _FLOATS, _TEXT))
def test_a_prediction_and_its_label_come_back_as_the_contract_says(
    wire: tuple[_Proxy, httpx.Client], prediction: Any, label: Any
) -> None:
    proxy, http = wire
    trace_id = aither.log_prediction("property", {"x": 1}, prediction)
    aither.log_label(trace_id, label)
    assert aither.flush(30), aither.stats()
    sent = proxy.spans[trace_id]
    expected = on_the_wire(prediction)
    assert _same(json.loads(sent["ml.prediction"]), expected)
    assert _same(json.loads(proxy.spans[trace_id + "/label"]["ml.label"]), on_the_wire(label))
    found = _read(http, trace_id)
    assert _same(found["prediction"], stored(expected)), (trace_id, prediction, found)
    assert _same(found["labels"], {"0": stored(on_the_wire(label))}), (trace_id, prediction, label, found)


@_share(0.25)
@given(features=st.dictionaries(st.text(max_size=8), _SCALARS, min_size=1, max_size=6))
def test_a_dict_of_features_comes_back_as_the_contract_says(
    wire: tuple[_Proxy, httpx.Client], features: dict[str, Any]
) -> None:
    proxy, http = wire
    trace_id = aither.log_prediction("property-features", features, 1)
    assert aither.flush(30), aither.stats()
    sent = proxy.spans[trace_id]
    assert sent["ml.batch_size"] == 1
    expected = {k: on_the_wire(v) for k, v in features.items()}
    assert _same(json.loads(sent["ml.features"])["sample"], expected)
    assert _same(_read(http, trace_id)["features"]["sample"], stored(expected))


@_share(0.1)
@given(
    row=st.integers(min_value=-(2**70), max_value=2**70),
    names=st.lists(st.sampled_from(["a", "b", "1"]), min_size=1, max_size=5),
)
def test_rows_outside_int64_are_refused_and_repeated_columns_stay_apart(
    wire: tuple[_Proxy, httpx.Client], row: int, names: list[str]
) -> None:
    proxy, http = wire
    frame = pd.DataFrame([list(range(len(names)))], columns=names)
    trace_id = aither.log_prediction("property-rows", frame, 1)
    if 0 <= row < 2**63:
        aither.log_label(trace_id, 1, row=row)
    else:
        with pytest.raises(ValueError, match="int64"):
            aither.log_label(trace_id, 1, row=row)
    assert aither.flush(30), aither.stats()
    sample = json.loads(proxy.spans[trace_id]["ml.features"])["sample"][0]
    assert list(sample.values()) == list(range(len(names)))  # no column hides another
    if 0 <= row < 2**63:
        assert proxy.spans[trace_id + "/label"]["ml.label.row"] == row
    assert _read(http, trace_id)["features"]["sample"][0] == sample


_OTEL_SCALARS = st.one_of(
    st.text(st.characters(codec="utf-8"), max_size=20),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    _FLOATS,
)
_OTEL_VALUES = st.one_of(
    _OTEL_SCALARS,
    st.lists(st.integers(min_value=-(2**63), max_value=2**63 - 1), max_size=4),
    st.lists(_FLOATS, max_size=4),
    st.lists(st.booleans(), max_size=4),
    st.lists(st.text(max_size=5), max_size=4),
)


def _otel_stored(value: Any) -> Any:
    """What the contract says the server stores of an OTel attribute: a string as the JSON it holds (else as
    the text itself), a number, bool or array as its JSON (NaN and the infinities as the contract's strings)."""
    if isinstance(value, str):
        try:
            parsed = json.loads(value, parse_constant=str)
        except ValueError:
            return value
        return parsed
    if isinstance(value, float):
        return _float(value)
    if isinstance(value, list):
        return [_otel_stored(v) if not isinstance(v, str) else v for v in value]
    return value


@pytest.fixture(scope="module")
def otel(wire: tuple[_Proxy, httpx.Client]) -> Iterator[Any]:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.id_generator import IdGenerator

    class Urandom(IdGenerator):
        """The SDK's default draws from ``random``, which hypothesis seeds the same way for every example."""

        def generate_span_id(self) -> int:
            return int.from_bytes(os.urandom(8), "big") or 1

        def generate_trace_id(self) -> int:
            return int.from_bytes(os.urandom(16), "big") or 1

    proxy, _ = wire
    resource = Resource.create({"service.name": "otel-property"})
    provider = TracerProvider(resource=resource, id_generator=Urandom())
    exporter = OTLPSpanExporter(endpoint=f"{proxy.url}/v1/traces", headers={"Authorization": f"Bearer {ADMIN_KEY}"})
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    try:
        yield provider.get_tracer("property")
    finally:
        provider.shutdown()


@_share(0.15)
@given(prediction=_OTEL_VALUES, label=_OTEL_SCALARS)
def test_an_opentelemetry_producers_values_are_stored_as_the_contract_says_in_both_encodings(
    wire: tuple[_Proxy, httpx.Client], otel: Any, prediction: Any, label: Any
) -> None:
    from google.protobuf import json_format

    proxy, http = wire
    with otel.start_as_current_span("predict") as span:
        span.set_attribute("ml.model.name", "otel-property")
        span.set_attribute("ml.prediction", prediction)
        trace_id = f"{span.get_span_context().trace_id:032x}"
        with otel.start_as_current_span("label") as labelled:  # the same trace: it joins the prediction
            labelled.set_attribute("ml.label", label)
    expected = {"prediction": stored(_otel_stored(prediction)), "labels": {"0": stored(_otel_stored(label))}}
    found = _read(http, trace_id)
    assert _same({"prediction": found["prediction"], "labels": found["labels"]}, expected), (prediction, label)
    # Both requests again in OTLP/JSON (ids as hex, as OTLP/JSON writes them), under a new trace id.
    json_trace = os.urandom(16).hex()
    for request in proxy.requests_of(trace_id):
        body = json_format.MessageToDict(request)
        for resource_spans in body["resourceSpans"]:
            for scope_spans in resource_spans["scopeSpans"]:
                for item in scope_spans["spans"]:
                    item["traceId"], item["spanId"] = json_trace, os.urandom(8).hex()
                    item.pop("parentSpanId", None)
        answer = http.post("/v1/traces", json=body)
        assert answer.status_code == 200, answer.text
    found = _read(http, json_trace)
    assert _same({"prediction": found["prediction"], "labels": found["labels"]}, expected), (prediction, label)


def test_the_suite_runs_at_least_the_documented_number_of_cases() -> None:
    shares = (0.5, 0.25, 0.1, 0.15)
    assert sum(max(10, int(EXAMPLES * share)) for share in shares) >= min(EXAMPLES, 2000)
    assert Path(__file__).name in (Path(__file__).parents[1] / "docs" / "wire-contract.md").read_text()
