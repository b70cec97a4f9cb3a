"""Cumulative metric points -> delta points, as the OpenTelemetry Collector's ``cumulativetodelta`` processor does.

The OTel SDK's default temporality is cumulative: each point holds everything counted since the series'
``start_time_unix_nano``. The store keeps deltas (docs/wire-contract.md, "/v1/metrics"), so each series (one
process, metric, model, version, environment and drop reason) remembers its last point here, and a new point
becomes the difference over ``(last end, end]``:

- the first point of a series is a delta from its own start when that start is after this server started (the
  series began while we were listening), else it only sets the series' origin, like the processor's
  ``initial_value: auto``: counts from before the server started cannot be told from counts already stored;
- a point with another start time, or a value (or a bucket) below the last one, is a reset: a new series whose
  first delta is its whole value from its own start;
- a point not after the last one (a retried request, or out of order) adds nothing.

The state is in memory, bounded, and lost at a restart, like the processor's.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

__all__ = ["CumulativeSeries"]

_Key = tuple[str, str, str, str, str, str]


class _Last:
    __slots__ = ("buckets", "end_ns", "start_ns", "value")

    def __init__(self, start_ns: int, end_ns: int, value: int, buckets: tuple[int, ...] | None) -> None:
        self.start_ns = start_ns
        self.end_ns = end_ns
        self.value = value
        self.buckets = buckets


class CumulativeSeries:
    """The last point of each cumulative series; :meth:`delta` turns the next one into a delta."""

    def __init__(self, max_series: int = 100_000, started_ns: int | None = None) -> None:
        self._lock = threading.Lock()
        self._last: OrderedDict[_Key, _Last] = OrderedDict()
        self._max_series = max_series
        self._started_ns = time.time_ns() if started_ns is None else started_ns

    def delta(
        self, key: _Key, start_ns: int, end_ns: int, value: int, buckets: tuple[int, ...] | None
    ) -> tuple[int, int, tuple[int, ...] | None] | None:
        """``(delta start, delta value, delta buckets)`` of a cumulative point ending at ``end_ns``; ``None``
        when it adds nothing (the first point of a series older than this server, or one already counted)."""
        with self._lock:
            last = self._last.get(key)
            if last is not None and last.start_ns == start_ns and end_ns <= last.end_ns:
                return None  # a retry or a late point: counted already
            self._last[key] = _Last(start_ns, end_ns, value, buckets)
            self._last.move_to_end(key)
            if len(self._last) > self._max_series:
                self._last.popitem(last=False)
        if last is None or last.start_ns != start_ns or _went_down(last, value, buckets):
            if start_ns and start_ns >= self._started_ns:
                return start_ns, value, buckets  # a new series (or a reset): everything since its start
            return None
        step = (
            None
            if buckets is None or last.buckets is None
            else tuple(now - before for now, before in zip(buckets, last.buckets, strict=True))
        )
        return last.end_ns, value - last.value, step


def _went_down(last: _Last, value: int, buckets: tuple[int, ...] | None) -> bool:
    if value < last.value:
        return True
    if buckets is None or last.buckets is None:
        return False
    return len(buckets) != len(last.buckets) or any(a < b for a, b in zip(buckets, last.buckets, strict=False))
