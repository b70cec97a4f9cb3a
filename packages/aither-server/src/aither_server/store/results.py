"""What the store's methods return: ingestion counts, keys, the organisation, usage."""

from __future__ import annotations

import dataclasses
import datetime

__all__ = ["IngestResult", "KeyRecord", "LastAdminKey", "OrgRecord", "UsageRecord", "month_period", "period_key"]


@dataclasses.dataclass(frozen=True)
class IngestResult:
    predictions: int
    """New prediction spans stored (a retried span counts zero)."""
    prediction_rows: int
    labels: int
    """New label spans stored."""
    label_rows: int


@dataclasses.dataclass(frozen=True)
class KeyRecord:
    id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_ns: int
    last_used_ns: int | None
    revoked_ns: int | None


@dataclasses.dataclass(frozen=True)
class OrgRecord:
    id: str
    name: str
    plan: str
    created_ns: int
    user_name: str


@dataclasses.dataclass(frozen=True)
class UsageRecord:
    period_start: datetime.datetime
    period_end: datetime.datetime
    api_calls: int
    predictions: int
    labels: int
    rejected_spans: int = 0
    """Spans refused for a wrong or missing ``ml.*`` value (counted per request received)."""
    ignored_spans: int = 0
    """Spans with no ``ml.*`` attribute: another library's spans, not stored."""


class LastAdminKey(Exception):
    """Revoking this key would leave no admin key, and nobody could manage keys any more."""


def month_period(now_ns: int) -> tuple[datetime.datetime, datetime.datetime]:
    """The calendar month (UTC) holding ``now_ns``: the billing period."""
    now = datetime.datetime.fromtimestamp(now_ns / 1e9, tz=datetime.timezone.utc)
    start = now.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    end = start.replace(year=start.year + 1, month=1) if start.month == 12 else start.replace(month=start.month + 1)
    return start, end


def period_key(now_ns: int) -> str:
    """The usage row of ``now_ns``: its month, ``YYYY-MM``."""
    return month_period(now_ns)[0].strftime("%Y-%m")
