"""Request and response bodies of the HTTP API, as pydantic models: they write the OpenAPI document."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyList",
    "ApiKeyOut",
    "ErrorBody",
    "ErrorResponse",
    "Health",
    "LatencyOut",
    "LinkOut",
    "MetricsOut",
    "ModelList",
    "ModelOut",
    "OrgOut",
    "PredictionList",
    "PredictionOut",
    "SampledRow",
    "UnjoinedLabel",
    "UnjoinedLabels",
    "UsageOut",
    "UserOut",
    "VolumeOut",
]

Scope = Literal["read", "write", "admin"]


class _Out(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorBody(_Out):
    type: str
    message: str


class ErrorResponse(_Out):
    error: ErrorBody


class Health(_Out):
    status: Literal["ok"]
    version: str


class OrgOut(_Out):
    id: str
    name: str
    plan: str
    created_at: str


class UsageOut(_Out):
    period_start: str
    period_end: str
    api_calls: int
    predictions: int = Field(description="Predicted rows stored this period.")
    labels: int = Field(description="Labelled rows received this period.")
    rejected_spans: int = Field(description="Spans refused this period for a wrong or missing ml.* value.")
    ignored_spans: int = Field(description="Spans with no ml.* attribute received this period (not stored).")


class UserOut(_Out):
    id: str
    email: str
    name: str
    role: str


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    scopes: list[Scope] = Field(default=["read", "write"], min_length=1, max_length=3)


class ApiKeyOut(_Out):
    id: str
    name: str
    prefix: str = Field(description="The first 12 characters of the key: enough to recognise it.")
    scopes: list[str]
    created_at: str
    last_used_at: str | None
    revoked: bool


class ApiKeyCreated(ApiKeyOut):
    secret: str = Field(description="The full key. Present only in the answer that created it, never again.")


class ApiKeyList(_Out):
    data: list[ApiKeyOut]


class ModelOut(_Out):
    name: str
    versions: list[str]
    environments: list[str]
    first_seen: str | None
    last_seen: str | None
    calls: int
    predictions: int


class ModelList(_Out):
    data: list[ModelOut]


class LatencyOut(_Out):
    p50: float | None
    p95: float | None
    p99: float | None


class VolumeOut(_Out):
    start: str | None
    predictions: int
    calls: int
    errors: int


class MetricsOut(_Out):
    model: str
    version: str | None
    environment: str | None
    start: str | None
    end: str | None
    bucket: str
    predictions: int
    labels: int
    label_coverage: float | None
    calls: int
    errors: int
    error_rate: float | None
    latency_ms: LatencyOut
    task: Literal["classification", "regression"] | None
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    mae: float | None
    rmse: float | None
    volume: list[VolumeOut]
    dropped: dict[str, int] = Field(
        description="Prediction spans the SDK reported as not delivered (aither.spans.dropped), by reason."
    )


class LinkOut(_Out):
    trace_id: str
    span_id: str


class SampledRow(_Out):
    row: int
    features: Any
    prediction: Any
    label: Any


class PredictionOut(_Out):
    trace_id: str
    span_id: str
    model: str
    version: str | None
    environment: str | None
    method: str | None
    framework: str | None
    start_time: str | None
    latency_ms: float
    status: Literal["ok", "error"]
    batch_size: int | None
    rows: int
    features: Any
    prediction: Any
    labels: dict[str, Any]
    sampled_rows: list[SampledRow] = Field(
        description="The feature sample's rows, each with its batch row (_meta.rows), its prediction and label."
    )
    error: str | None
    link: LinkOut | None = Field(description="The caller's OpenTelemetry span (the prediction span's first link).")


class UnjoinedLabel(_Out):
    trace_id: str
    row: int
    label: Any
    reason: Literal["unknown trace", "row out of range"]
    received_at: str


class UnjoinedLabels(_Out):
    count: int = Field(description="All the labels that cannot join (for this model, with model=).")
    data: list[UnjoinedLabel] = Field(description="The newest of them, up to limit.")


class PredictionList(_Out):
    data: list[PredictionOut]
