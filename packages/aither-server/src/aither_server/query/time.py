"""Time in the query API: nanoseconds since the epoch in, ISO 8601 out, and the buckets a range is split into."""

from __future__ import annotations

import datetime

__all__ = [
    "BUCKETS",
    "MAX_BUCKETS",
    "MAX_NS",
    "NS",
    "BucketTooSmall",
    "auto_bucket",
    "iso",
    "parse_bucket",
    "series_window",
    "to_ns",
]

NS = 1_000_000_000
#: The latest time an SQLite integer holds.
MAX_NS = 2**63 - 1
#: Automatic bucket sizes for ``volume``, smallest first.
BUCKETS = {"1m": 60, "5m": 300, "15m": 900, "1h": 3600, "6h": 21600, "1d": 86400, "7d": 604800}
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_AUTO_BUCKETS = 200
MAX_BUCKETS = 10_000


class BucketTooSmall(ValueError):
    """The requested bucket would split the time range into too many buckets."""


def iso(ns: int | None) -> str | None:
    if ns is None:
        return None
    moment = datetime.datetime.fromtimestamp(ns // NS, tz=datetime.timezone.utc)
    moment = moment.replace(microsecond=(ns % NS) // 1000)
    return moment.isoformat().replace("+00:00", "Z")


def parse_bucket(text: str) -> int:
    """Seconds in a bucket written ``<n><s|m|h|d>`` (``30s``, ``5m``, ``1h``, ``1d``)."""
    text = text.strip().lower()
    if len(text) < 2 or text[-1] not in _UNITS or not text[:-1].isdigit():
        raise ValueError("bucket must look like 30s, 5m, 1h or 1d")
    seconds = int(text[:-1]) * _UNITS[text[-1]]
    if not 1 <= seconds <= 366 * 86400:
        raise ValueError("bucket must be between 1s and 366d")
    return seconds


def auto_bucket(lo: int, hi: int) -> str:
    span_s = max(hi - lo, 0) / NS
    for label, seconds in BUCKETS.items():
        if span_s / seconds <= _AUTO_BUCKETS:
            return label
    return "7d"


_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def to_ns(moment: datetime.datetime | None) -> int | None:
    """Nanoseconds since the epoch, in integers (a float timestamp loses microseconds); naive times are UTC."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * NS + delta.microseconds * 1000


def series_window(
    bucket: str, start: datetime.datetime | None, end: datetime.datetime | None, max_buckets: int, now_ns: int
) -> tuple[int, int, int]:
    """A series' bucket in seconds and its ``[start, end)`` in ns: ``end`` defaults to ``now_ns``, ``start`` to the
    last 30 days or the last ``max_buckets`` buckets when they are fewer. ``ValueError`` for a bad bucket or a
    start not before the end."""
    bucket_s = parse_bucket(bucket)
    end_ns = to_ns(end) or now_ns
    start_ns = to_ns(start) or end_ns - min(30 * 86400, max_buckets * bucket_s) * NS
    if start_ns >= end_ns:
        raise ValueError("start must be before end")
    return bucket_s, start_ns, end_ns
