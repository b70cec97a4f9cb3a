"""The shape of ``aither.stats()``, shared by every exporter (network, in-memory capture, disabled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["stats_dict"]


def stats_dict(
    *,
    queued: int,
    exported: int,
    dropped: Mapping[str, int] | None = None,
    retries: int = 0,
    export_errors: int = 0,
    rejected_spans: int = 0,
    truncated_attributes: int = 0,
    last_error: str | None = None,
) -> dict[str, Any]:
    """The counters, with the derived ones: ``queued == exported + dropped_total + pending`` always."""
    by_reason = dict(dropped or {})
    dropped_total = sum(by_reason.values())
    return {
        "queued": queued,
        "exported": exported,
        "dropped": by_reason,
        "dropped_total": dropped_total,
        "pending": queued - exported - dropped_total,
        "retries": retries,
        "export_errors": export_errors,
        "rejected_spans": rejected_spans,
        "truncated_attributes": truncated_attributes,
        "last_error": last_error,
    }
