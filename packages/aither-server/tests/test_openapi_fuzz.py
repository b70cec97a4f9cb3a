"""Schemathesis against the served OpenAPI document: no input makes the server answer 5xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from conftest import start_server
from hypothesis import HealthCheck, given, settings
from otlp_builders import KEY, prediction_span, protobuf_body
from schemathesis.checks import not_a_server_error, response_schema_conformance

from aither_server import ServerThread


@pytest.fixture(scope="module")
def fuzz_server(module_database: Path | str) -> Iterator[ServerThread]:
    thread = start_server(module_database)
    # Some data, so the query routes have something to compute on.
    httpx.post(
        thread.url + "/v1/traces",
        content=protobuf_body([prediction_span("clf", [0, 1]), prediction_span("clf", 1.5)]),
        headers={
            "Authorization": f"Bearer {KEY}",
            "Content-Type": "application/x-protobuf",
            "Content-Encoding": "gzip",
        },
    )
    yield thread
    thread.stop()


def test_no_generated_request_gets_a_5xx_or_an_undocumented_body(fuzz_server: ServerThread) -> None:
    schema = schemathesis.openapi.from_url(fuzz_server.url + "/openapi.json")
    operations = [result.ok() for result in schema.get_all_operations()]  # type: ignore[union-attr]
    assert len(operations) >= 11
    auth = {"Authorization": f"Bearer {KEY}"}
    calls: list[int] = []
    for operation in operations:
        # A few examples per route keeps the run to seconds; derandomize makes it the same run every time.
        @given(case=operation.as_strategy())
        @settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
        def check(case: schemathesis.Case[Any]) -> None:
            response = case.call_and_validate(headers=auth, checks=[not_a_server_error, response_schema_conformance])
            calls.append(response.status_code)

        check()
    assert len(calls) >= 2 * len(operations)
