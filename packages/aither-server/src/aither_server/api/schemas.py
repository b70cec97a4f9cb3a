"""Request and response bodies of the HTTP API, as pydantic models: they write the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

# The query answers, declared once where they are built (TypedDicts the API validates and documents).
from aither_server.query.labels import UnjoinedLabel, UnjoinedLabels
from aither_server.query.metrics import LatencyOut, MetricsOut, VolumeOut
from aither_server.query.models import ModelOut
from aither_server.query.predictions import LinkOut, PredictionOut, SampledRow

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


class ModelList(_Out):
    data: list[ModelOut]


class PredictionList(_Out):
    data: list[PredictionOut]
