"""The shape of ``aither.stats()``, shared by every exporter (network, in-memory capture, disabled)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypedDict

__all__ = ["ExporterStats", "ModelTotals", "Stats", "stats_dict"]


class _DeliveryCounters(TypedDict):
    queued: int
    exported: int
    #: Records dropped, by reason (``queue_full``, ``disabled``, ``shutdown``...).
    dropped: dict[str, int]
    dropped_total: int
    #: Queued, neither exported nor dropped yet: ``queued == exported + dropped_total + pending``.
    pending: int
    retries: int
    export_errors: int
    rejected_spans: int
    truncated_attributes: int
    last_error: str | None


class ExporterStats(_DeliveryCounters, total=False):
    """What an exporter reports; the network exporter adds its overload and metrics counters."""

    #: Under overload, 1 call in ``keep_every`` is sampled (1: every call).
    keep_every: int
    metric_reports: int
    #: Metric reports let go because the metrics endpoint answered 404 or 405 (a backend without OTLP metrics).
    metric_reports_skipped: int
    #: Rows added to profile-only models' sketches (docs/privacy.md).
    profiled_rows: int
    #: Profile-only calls whose input could not be profiled (1-D arrays, tensors, texts).
    unprofiled_batches: int


class ModelTotals(TypedDict):
    calls: int
    rows: int
    errors: int


class Stats(ExporterStats):
    """``aither.stats()``: the exporter's counters, telemetry failures, and per-model totals."""

    internal_errors: int
    #: Keyed by model name, with ``@version`` and ``/environment`` appended when set.
    models: dict[str, ModelTotals]
    #: Values scrubbed out of sampled strings: ``{model: {column: {kind: count}}}`` (never the values).
    redactions: dict[str, dict[str, dict[str, int]]]


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
) -> ExporterStats:
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
