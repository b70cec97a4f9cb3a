"""The rollup tables' keys, shared by ingestion (which maintains them) and the query layer (which reads them).

/metrics must not scan a million rows, so ingestion keeps, in the same transaction as the spans:

- ``volume_minutes``: calls, errors and predicted rows per model row and minute (volume buckets of whole
  minutes are sums of these);
- ``latency_hours``: calls per model row, hour and latency bucket. Buckets grow by 4% from 1 microsecond, so
  the histogram locates the bucket of each percentile; the exact value is then read from the
  (model, latency) index inside that one bucket. Percentiles stay exact;
- ``quality_hours``: labelled rows, confusion-matrix cells and regression error sums per model row, hour and
  (kind, label kind, predicted class, label class), updated when a label joins or replaces another;
  ``quality_days`` (revision 0018) holds the same cells per UTC day, written with it.

A time range is answered from the rollups for its whole minutes or hours and from the raw rows for the
partial ones at either end (:func:`split`), so every answer is exact. No SQL here.
"""

from __future__ import annotations

import bisect

__all__ = [
    "AGGREGATE_BOUNDS_MS",
    "AGGREGATE_BUCKETS",
    "DAY_NS",
    "HOUR_NS",
    "LATENCY_BOUNDS",
    "MINUTE_NS",
    "NO_KEY",
    "NO_KIND",
    "SCORE_BINS",
    "aggregate_bucket",
    "aggregate_bucket_of_range",
    "aggregate_percentile_ms",
    "latency_bucket",
    "latency_range",
    "quality_key",
    "score_bin",
    "split",
    "split_days",
]

MINUTE_NS = 60 * 1_000_000_000
HOUR_NS = 3600 * 1_000_000_000
DAY_NS = 24 * HOUR_NS
#: Equal-width bins of a binary ``predict_proba`` score in ``score_hours`` / ``score_days`` (0.01 wide).
SCORE_BINS = 100
#: NULL kinds and keys in the rollups' primary keys (which must be NOT NULL); '' is never a canonical JSON key.
NO_KIND = -1
NO_KEY = ""


def _bounds() -> list[int]:
    out: list[int] = []
    value = 1000.0
    while value < 2**63:
        bound = int(value)
        if not out or bound > out[-1]:
            out.append(bound)
        value *= 1.04
    return out


#: Lower bounds (ns) of latency buckets 1..N; bucket 0 holds everything under 1 microsecond (and negatives).
LATENCY_BOUNDS = _bounds()


def latency_bucket(latency_ns: int) -> int:
    return bisect.bisect_right(LATENCY_BOUNDS, latency_ns)


#: The SDK's latency histogram bounds (docs/wire-contract.md, "/v1/metrics"), in milliseconds: each bucket is
#: 2 ** (1/4), about 19%, wider than the one before. Span latencies of instances that send no aggregates are
#: counted in these same buckets (``instance_latency_hours``), so one merge gives the percentiles.
AGGREGATE_BOUNDS_MS = tuple(0.01 * 2 ** (i / 4) for i in range(93))
#: Buckets of that histogram: bucket 0 is (-inf, 0.01 ms], bucket i is (bound i-1, bound i], the last unbounded.
AGGREGATE_BUCKETS = len(AGGREGATE_BOUNDS_MS) + 1
_AGGREGATE_BOUNDS_NS = tuple(bound * 1e6 for bound in AGGREGATE_BOUNDS_MS)
_BUCKET_RATIO = 2**0.25


def aggregate_bucket(latency_ns: float) -> int:
    """The bucket of the aggregate latency histogram holding ``latency_ns`` (OTLP: upper bounds inclusive)."""
    return bisect.bisect_left(_AGGREGATE_BOUNDS_NS, latency_ns)


def aggregate_bucket_of_range(low_ms: float, high_ms: float) -> int:
    """The aggregate bucket for a foreign histogram bucket (low_ms, high_ms]: the one holding its geometric
    middle (its upper bound when it starts at or below zero, its lower bound when it has no upper bound)."""
    if high_ms == float("inf"):
        middle = low_ms
    elif low_ms <= 0:
        middle = high_ms
    else:
        middle = (low_ms * high_ms) ** 0.5
    return bisect.bisect_left(AGGREGATE_BOUNDS_MS, middle)


def aggregate_percentile_ms(histogram: dict[int, int], rank: int) -> float | None:
    """The value of the nearest-rank ``rank`` (0-based) read from an aggregate histogram, interpolated
    geometrically inside its bucket (within about 9.5% of the exact value); ``None`` past the last count."""
    below = 0
    for bucket in sorted(histogram):
        count = histogram[bucket]
        if count <= 0:
            continue
        if rank < below + count:
            fraction = (rank - below + 0.5) / count
            if bucket >= len(AGGREGATE_BOUNDS_MS):
                return AGGREGATE_BOUNDS_MS[-1]
            high = AGGREGATE_BOUNDS_MS[bucket]
            low = high / _BUCKET_RATIO
            return float(low * (high / low) ** fraction)
        below += count
    return None


def latency_range(bucket: int) -> tuple[int | None, int | None]:
    """The half-open [low, high) latency range of a bucket; ``None`` for an open end."""
    low = LATENCY_BOUNDS[bucket - 1] if bucket > 0 else None
    high = LATENCY_BOUNDS[bucket] if bucket < len(LATENCY_BOUNDS) else None
    return low, high


def split(lo: int, hi: int, unit: int) -> tuple[tuple[int, int] | None, list[tuple[int, int]]]:
    """Split [lo, hi) into whole ``unit``s [first, last) (unit numbers; ``None`` when there are none) and the
    partial [start, end) nanosecond ranges left at either end."""
    first = -(-lo // unit)
    last = hi // unit
    if first >= last:
        return None, [(lo, hi)] if lo < hi else []
    edges = []
    if lo < first * unit:
        edges.append((lo, first * unit))
    if last * unit < hi:
        edges.append((last * unit, hi))
    return (first, last), edges


def score_bin(score: float) -> int:
    """The bin of a score: the first i with score < (i + 1) / SCORE_BINS (the last bin for 1 and above), as SQL's
    ``CASE WHEN score < 0.01 THEN 0 ...`` places it. With these bounds, bin // 10 is the bin among ten."""
    if score != score or score >= 1.0:
        return SCORE_BINS - 1  # NaN is less than nothing, like SQL's comparison
    if score < 0.0:
        return 0
    guess = min(SCORE_BINS - 1, int(score * SCORE_BINS))
    while guess > 0 and score < guess / SCORE_BINS:
        guess -= 1
    while guess < SCORE_BINS - 1 and score >= (guess + 1) / SCORE_BINS:
        guess += 1
    return guess


def quality_key(
    kind: int | None, label_kind: int, pred_key: str | None, label_key: str | None, score: float | None
) -> tuple[int, int, str, str, int]:
    """(kind, label_kind, predicted class, label class, scored) of one labelled row in ``quality_hours``.

    Classes are kept only for class-like pairs (a class label, a class or ``predict_proba`` prediction), so
    regression rows collapse into a handful of groups; the KIND_* values are those of ``model/records.py``.
    """
    class_like = label_kind == 0 and kind in (0, 2)
    return (
        NO_KIND if kind is None else kind,
        label_kind,
        (pred_key or NO_KEY) if class_like else NO_KEY,
        (label_key or NO_KEY) if class_like else NO_KEY,
        int(score is not None),
    )


def split_days(lo: int, hi: int) -> tuple[tuple[int, int] | None, list[tuple[int, int]], list[tuple[int, int]]]:
    """Split [lo, hi) into whole UTC days [first, last) (``None`` when none), the whole hours [first, last) left
    at either end, and the partial nanosecond ranges left at the ends of those."""
    days, edges = split(lo, hi, DAY_NS)
    hours: list[tuple[int, int]] = []
    raw: list[tuple[int, int]] = []
    for a, b in edges:
        whole, rest = split(a, b, HOUR_NS)
        if whole is not None:
            hours.append(whole)
        raw.extend(rest)
    return days, hours, raw
