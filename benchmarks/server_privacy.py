"""The cost of the server's privacy step at ingest (``privacy/enforce.py``), per prediction span, beside the
store's budget (42 us a span for all of ingestion on SQLite at 24,000 spans/s). Prints a table.

    .venv/bin/python benchmarks/server_privacy.py [--spans 2000]

Spans are the SDK's shape: a 5-row, 10-column sample (4 string columns, one an e-mail address), decoded by
``ingest/spans.py`` from a real OTLP body. Each case runs ``enforce_batch`` on a fresh decode of the same body,
so the decode is timed apart and subtracted:

- no policy (every server until an administrator sets one);
- one model policy dropping a column and hashing another;
- the same with ``"scrub": true`` (the SDK's scrubbers over every string value).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from aither_server.ingest.spans import decode_body
from aither_server.privacy.enforce import enforce_batch
from aither_server.privacy.policy import EffectivePolicy, effective, parse_spec

KEY = b"bench-key"


def _body(spans: int) -> bytes:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    rows = [
        {
            **{f"x{j}": float(i * j) for j in range(6)},
            "email": f"user{i}@example.com",
            "customer_id": f"c-{i}",
            "city": "paris",
            "note": "call me at +44 20 7946 0958",
        }
        for i in range(5)
    ]
    features = json.dumps({"sample": rows, "_meta": {"columns": list(rows[0]), "rows": list(range(5))}})
    now = time.time_ns()
    for _ in range(spans):
        attributes = {"ml.model.name": "bench", "ml.features": features, "ml.prediction": "[0,1,0,1,1]"}
        scope.spans.append(
            Span(
                trace_id=os.urandom(16),
                span_id=os.urandom(8),
                name="predict",
                start_time_unix_nano=now,
                end_time_unix_nano=now + 1000,
                attributes=[KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attributes.items()],
            )
        )
    return request.SerializeToString()


def _per_span_us(body: bytes, spans: int, policy: EffectivePolicy | None, rounds: int = 5) -> tuple[float, float]:
    """(decode alone, enforce alone), median microseconds per span."""
    decode_us, enforce_us = [], []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        batch = decode_body(body, "protobuf")
        decoded = time.perf_counter_ns()
        if policy is not None:
            enforce_batch(batch, lambda model: policy)
        done = time.perf_counter_ns()
        assert len(batch.predictions) == spans
        decode_us.append((decoded - start) / spans / 1000)
        enforce_us.append((done - decoded) / spans / 1000)
    return statistics.median(decode_us), statistics.median(enforce_us)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--spans", type=int, default=2000)
    spans = parser.parse_args().spans
    body = _body(spans)
    rules: dict[str, Any] = {"columns": {"email": "drop", "customer_id": "hash"}}
    cases = {
        "no policy": effective(None, None, KEY),
        "drop + hash": effective(None, parse_spec(rules, KEY), KEY),
        "drop + hash + scrub": effective(None, parse_spec({**rules, "scrub": True}, KEY), KEY),
    }
    print(f"{spans} spans, SDK shape (5 rows x 10 columns); microseconds per span, median of 5")
    print(f"{'case':<22}{'decode':>10}{'privacy':>10}")
    for name, policy in cases.items():
        decode_us, enforce_us = _per_span_us(body, spans, policy)
        print(f"{name:<22}{decode_us:>10.1f}{enforce_us:>10.1f}")


if __name__ == "__main__":
    main()
