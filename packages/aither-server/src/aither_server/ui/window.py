"""The time window a page shows: a preset range (``24h``) or a custom start and end, cut into equal slices.

A slice is the smallest of :data:`SLICES` that cuts the window into at most :data:`MAX_SLICES` (a minute for a
quarter of an hour, an hour for a day, a day for a month). Slices lie on whole multiples of their width (whole
hours from an hour up, whole UTC days from a day up), so a slice of an hour or more is read from the hourly
rollups alone, and a slice of a day or more from the daily ones.
"""

from __future__ import annotations

import dataclasses
import datetime
import time

from aither_server.query.time import NS

__all__ = ["MAX_SLICES", "RANGES", "SLICES", "Window", "duration", "iso_minute", "parse_moment", "window"]

#: The preset ranges, in seconds.
RANGES = {"15m": 900, "1h": 3600, "6h": 6 * 3600, "24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}
#: Slice widths, in seconds, smallest first.
SLICES = (60, 120, 300, 600, 900, 1800, 3600, 2 * 3600, 3 * 3600, 6 * 3600, 12 * 3600, 86400, 7 * 86400)
MAX_SLICES = 36
#: The longest custom window: past it, even a week's slices would be too many to draw.
_MAX_SPAN_S = 366 * 86400
_HOUR_NS = 3600 * NS
_DAY_NS = 24 * _HOUR_NS
_MAX_NS = 2**63 - 1 - _MAX_SPAN_S * NS


@dataclasses.dataclass(frozen=True)
class Window:
    start_ns: int
    end_ns: int
    slice_ns: int
    #: The preset's name, or ``"custom"``.
    range: str

    @property
    def slices(self) -> int:
        return (self.end_ns - self.start_ns) // self.slice_ns

    @property
    def slice_text(self) -> str:
        return duration(self.slice_ns // NS)


def duration(seconds: int) -> str:
    """``90`` -> ``1 min 30 s``... in the largest units: ``1 h``, ``6 h``, ``1 day``, ``7 days``."""
    for unit, name in ((86400, "day"), (3600, "h"), (60, "min")):
        if seconds >= unit and seconds % unit == 0:
            count = seconds // unit
            return f"{count} {name}{'s' if name == 'day' and count > 1 else ''}"
    return f"{seconds} s"


def iso_minute(ns: int) -> str:
    """A time as a ``datetime-local`` field shows it, in UTC: ``2026-12-06T14:30``."""
    moment = datetime.datetime.fromtimestamp(ns // NS, tz=datetime.timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M")


def parse_moment(text: str | None) -> int | None:
    """A ``datetime-local`` field's value (``2026-12-06T14:30``, UTC) or ISO 8601 time, in ns; ``None`` if blank
    or unreadable."""
    if not text or not text.strip():
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    ns = int(moment.timestamp()) * NS
    # Nanoseconds since 1970 fit a 64-bit integer until 2262: later (or earlier than 1970) is no time we store.
    return ns if 0 <= ns <= _MAX_NS else None


def _unit(width_ns: int) -> int:
    """What a window's slices are whole multiples of: their own width under an hour, an hour up to a day, a UTC
    day from a day (a 30-day page reads 30 days of the daily rollups, not 720 hours)."""
    return _DAY_NS if width_ns >= _DAY_NS else min(width_ns, _HOUR_NS)


def _slice_s(span_s: int) -> int:
    return next((s for s in SLICES if span_s / s <= MAX_SLICES), SLICES[-1])


def window(range_name: str, start: str | None = None, end: str | None = None, now_ns: int | None = None) -> Window:
    """The window a page's parameters ask for: from ``start`` to ``end`` when they parse (end after start; one
    alone runs to now, or from the preset's span before it), else the preset ``range_name`` (``24h`` when
    unknown) ending now."""
    now = time.time_ns() if now_ns is None else now_ns
    lo, hi = parse_moment(start), parse_moment(end)
    # One end alone: up to now, or the preset's span before it.
    if lo is not None and hi is None:
        hi = now
    elif hi is not None and lo is None:
        lo = hi - RANGES.get(range_name, RANGES["24h"]) * NS
    if lo is not None and hi is not None and hi > lo:
        hi = min(hi, lo + _MAX_SPAN_S * NS)
        width = _slice_s(max(1, (hi - lo) // NS)) * NS
        unit = _unit(width)
        first = lo // unit * unit
        count = -(-(hi - first) // width)
        return Window(first, first + count * width, width, "custom")
    name = range_name if range_name in RANGES else "24h"
    span = RANGES[name] * NS
    width = _slice_s(RANGES[name]) * NS
    # Ends on the first whole hour (or slice, for slices under an hour; day, for slices of a day or more) at or
    # after now.
    unit = _unit(width)
    last = -(-now // unit) * unit
    return Window(last - span, last, width, name)
