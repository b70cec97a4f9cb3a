"""Monitors' request and response bodies: what a monitor may watch (metric, op, window), checked on the way in.

A metric is one of the metrics endpoint's figures (``_query.metrics``) or a feature's drift score or null rate
(``drift/query.py``); the window is how far back from the evaluation it looks (``30m``, ``1h``, ``1d``).
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "DeliveryList",
    "DeliveryOut",
    "MonitorCreate",
    "MonitorCreated",
    "MonitorList",
    "MonitorOut",
    "MonitorUpdate",
    "StateList",
    "StateOut",
    "metric_parts",
    "window_seconds",
]

#: Figures of ``_query.metrics`` a monitor may watch, by the name of its field there.
PLAIN_METRICS = (
    "accuracy",
    "f1",
    "auc",
    "mae",
    "rmse",
    "error_rate",
    "latency_p95_ms",
    "volume",
    "label_coverage",
)
#: Estimated performance (``estimate/``): figures before labels arrive, from a reference's calibration.
ESTIMATED_METRICS = (
    "estimated_accuracy",
    "estimated_precision",
    "estimated_recall",
    "estimated_f1",
    "estimated_auc",
    "estimated_mae",
    "estimated_rmse",
)
#: Per-feature metrics, written ``<kind>:<feature>``.
FEATURE_METRICS = ("drift", "null_rate")
Op = Literal["<", "<=", ">", ">="]
State = Literal["OK", "ALERT", "NO_DATA"]

_WINDOW = re.compile(r"^([0-9]{1,5})([mhd])$")
_UNIT_S = {"m": 60, "h": 3600, "d": 86400}
#: The longest window: the hourly rollups and drift's day sketches answer it quickly; a year would not.
MAX_WINDOW_S = 90 * 86400


def window_seconds(text: str) -> int:
    """Seconds in a window such as ``30m``, ``1h`` or ``7d``; ValueError if it is not one (1 minute to 90 days)."""
    found = _WINDOW.match(text)
    if found is None:
        raise ValueError("window must be a number and a unit m, h or d, such as 30m, 1h or 7d")
    seconds = int(found.group(1)) * _UNIT_S[found.group(2)]
    if not 60 <= seconds <= MAX_WINDOW_S:
        raise ValueError("window must be between 1m and 90d")
    return seconds


def metric_parts(text: str) -> tuple[str, str | None]:
    """(kind, feature): ``("accuracy", None)`` or ``("drift", "age")``; ValueError for an unknown metric."""
    if text in PLAIN_METRICS or text in ESTIMATED_METRICS:
        return text, None
    kind, sep, feature = text.partition(":")
    if sep and kind in FEATURE_METRICS and feature:
        return kind, feature
    names = ", ".join(PLAIN_METRICS + ESTIMATED_METRICS)
    raise ValueError(f"metric must be one of {names}, drift:<feature> or null_rate:<feature>")


def _check_metric(value: str) -> str:
    metric_parts(value)
    return value


def _check_window(value: str) -> str:
    window_seconds(value)
    return value


class _Fields(BaseModel):
    model_config = ConfigDict(extra="forbid")

    @field_validator("metric", check_fields=False)
    @classmethod
    def _metric(cls, value: str | None) -> str | None:
        return None if value is None else _check_metric(value)

    @field_validator("window", check_fields=False)
    @classmethod
    def _window(cls, value: str | None) -> str | None:
        return None if value is None else _check_window(value)


class MonitorCreate(_Fields):
    name: str = Field(min_length=1, max_length=256)
    model: str = Field(min_length=1, max_length=256)
    version: str | None = Field(default=None, min_length=1, max_length=256)
    environment: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str = Field(max_length=1100)
    op: Op
    threshold: float = Field(allow_inf_nan=False)
    window: str = Field(default="1h", max_length=16)
    min_rows: int = Field(default=1, ge=0, le=1_000_000_000)
    webhook_url: str | None = Field(default=None, max_length=2000)
    enabled: bool = True


class MonitorUpdate(_Fields):
    """Only the fields sent change; ``version``, ``environment`` and ``webhook_url`` may be set to null."""

    name: str | None = Field(default=None, min_length=1, max_length=256)
    model: str | None = Field(default=None, min_length=1, max_length=256)
    version: str | None = Field(default=None, min_length=1, max_length=256)
    environment: str | None = Field(default=None, min_length=1, max_length=256)
    metric: str | None = Field(default=None, max_length=1100)
    op: Op | None = None
    threshold: float | None = Field(default=None, allow_inf_nan=False)
    window: str | None = Field(default=None, max_length=16)
    min_rows: int | None = Field(default=None, ge=0, le=1_000_000_000)
    webhook_url: str | None = Field(default=None, max_length=2000)
    enabled: bool | None = None


class MonitorOut(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    name: str
    model: str
    version: str | None
    environment: str | None
    metric: str
    op: Op
    threshold: float
    window: str
    min_rows: int
    webhook_url: str | None
    enabled: bool
    state: State
    value: float | None = Field(description="The metric at the last evaluation (null without enough rows).")
    rows: int | None = Field(description="The rows behind that value: labels, calls, predictions or samples.")
    last_evaluated: str | None
    created_at: str


class MonitorCreated(MonitorOut):
    secret: str = Field(description="The webhooks' signing secret. In this answer only.")
    warnings: list[str] = Field(
        default_factory=list,
        description="Why the monitor would stay NO_DATA as things stand: an unknown model, a missing column.",
    )


class MonitorList(BaseModel):
    data: list[MonitorOut]


class StateOut(BaseModel):
    state: State
    previous: State
    value: float | None
    rows: int | None
    at: str


class StateList(BaseModel):
    data: list[StateOut]


class DeliveryOut(BaseModel):
    event_id: str
    attempt: int
    url: str
    at: str
    status_code: int | None
    ok: bool
    error: str | None


class DeliveryList(BaseModel):
    data: list[DeliveryOut]
