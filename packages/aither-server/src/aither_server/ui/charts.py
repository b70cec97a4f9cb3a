"""Charts drawn on the server as inline SVG: a time series with labelled axes and units, and a sparkline.

No JavaScript: the page is complete when its HTML arrives, the browser draws SVG natively, and a chart of 100
points weighs about 4 KB of markup (docs/dashboard.md says why this over a charting library). Values are
escaped by building the markup with ``markupsafe``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping, Sequence

from markupsafe import Markup, escape

from aither_server.ui.window import duration

__all__ = ["Band", "Series", "Shade", "line_chart", "readable", "sparkline"]

#: (name, points of (time in ns, value or None for a gap)).
Series = tuple[str, Sequence[tuple[int, float | None]]]
#: (name, points of (time in ns, low, high)): an interval drawn as a shaded band around its series.
Band = tuple[str, Sequence[tuple[int, float, float]]]
#: (start ns, end ns, what it marks): a shaded stretch of the time axis.
Shade = tuple[int, int, str]

_W, _H = 640, 232
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 28, 30, 40
_COLOURS = ("#2563eb", "#dc2626", "#059669", "#9333ea")


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks if span > 0 else 1.0
    power: float = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def readable(value: float, step: float | None = None) -> str:
    """A number as people write it: ``5,940``, ``1.2M``, ``0.25``; never ``5.94e+03``. With ``step`` (an axis's
    tick step), as many decimals as the step needs."""
    if not math.isfinite(value):
        return str(value)
    size = abs(value)
    if size >= 1e9:
        return f"{value / 1e9:.3g}B"
    if size >= 1e6:
        return f"{value / 1e6:.3g}M"
    if size >= 1e4:
        return f"{value / 1e3:.3g}k"
    if step is not None and step > 0:
        # As many decimals as the step has: 0.25 needs two (0.25, 0.5, 0.75 are not 0.2, 0.5, 0.8).
        cap = max(0, 2 - math.floor(math.log10(step)))
        decimals = next((d for d in range(cap) if abs(step * 10**d - round(step * 10**d)) < 1e-6), cap)
        return f"{value:,.{decimals}f}"
    if size >= 100 or value == int(value):
        return f"{value:,.0f}"
    if size >= 0.0001:
        return f"{value:.3g}"
    return f"{value:.2e}" if value else "0"


def _number(value: float, unit: str, step: float | None = None) -> str:
    if unit == "%":
        return readable(value * 100, None if step is None else step * 100) + "%"
    text = readable(value, step)
    return f"{text} {unit}".strip() if unit else text


def _time_label(ns: int, span_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    if span_ns > 3 * 86400 * 10**9:
        return moment.strftime("%d %b")
    if span_ns > 86400 * 10**9:
        return moment.strftime("%d %b %H:%M")
    return moment.strftime("%H:%M")


def _moment(ns: int) -> str:
    return datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc).strftime("%d %b %H:%M")


def line_chart(
    title: str,
    series: Sequence[Series],
    *,
    unit: str = "",
    start_ns: int,
    end_ns: int,
    slice_ns: int | None = None,
    notes: Mapping[str, Sequence[str | None]] | None = None,
    bands: Sequence[Band] = (),
    shades: Sequence[Shade] = (),
) -> Markup:
    """An SVG line chart of ``series`` over [start, end): y axis in ``unit`` (``%`` for rates), x in UTC.

    Each point carries its value in an SVG ``<title>`` (the browser shows it on hover, no script needed), with
    ``notes[series name][i]`` appended when given (a point's label count and interval, say); ``bands`` shade an
    interval around a series, ``shades`` a stretch of time (slices whose labels are still arriving)."""
    values = [v for _, points in series for _, v in points if v is not None and math.isfinite(v)]
    values += [v for _, band in bands for _, low, high in band for v in (low, high) if math.isfinite(v)]
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    if not values:
        parts.append(
            f'<text class="empty" x="{_W / 2}" y="{_H / 2}" text-anchor="middle">No data in this range</text></svg>'
        )
        return Markup("".join(parts))
    lo, hi = min(0.0, min(values)), max(values)
    step = _nice_step(hi - lo)
    lo = math.floor(lo / step) * step
    hi = math.ceil(hi / step) * step if hi > lo else lo + step
    span_ns = max(1, end_ns - start_ns)

    def x(ns: int) -> float:
        return _LEFT + plot_w * (ns - start_ns) / span_ns

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - (value - lo) / (hi - lo))

    for shade_lo, shade_hi, what in shades:
        left, right = x(max(start_ns, shade_lo)), x(min(end_ns, shade_hi))
        parts.append(
            f'<rect class="shade" x="{left:.1f}" y="{_TOP}" width="{max(0.0, right - left):.1f}" height="{plot_h}">'
            f"<title>{escape(what)}</title></rect>"
        )
    # Axes: horizontal grid lines on whole multiples of the step, and five time labels along the bottom (UTC).
    for i in range(round((hi - lo) / step) + 1):
        tick = lo + i * step
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        label = escape(_number(tick, unit, step))
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{label}</text>')
    for i in range(5):
        ns = start_ns + span_ns * i // 4
        parts.append(
            f'<text class="axis" x="{x(ns):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">'
            f"{escape(_time_label(ns, span_ns))}</text>"
        )
    axis = "time (UTC)" if slice_ns is None else f"time (UTC), one point per {duration(slice_ns // 1_000_000_000)}"
    parts.append(f'<text class="axis" x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle">{axis}</text>')
    colours = {name: _COLOURS[i % len(_COLOURS)] for i, (name, _) in enumerate(series)}
    for band_name, band in bands:
        if band:
            outline = [f"{x(ns):.1f},{y(top):.1f}" for ns, _, top in band]
            outline += [f"{x(ns):.1f},{y(bottom):.1f}" for ns, bottom, _ in reversed(band)]
            parts.append(
                f'<polygon class="band" fill="{colours.get(band_name, _COLOURS[0])}" points="{" ".join(outline)}">'
                f"<title>{escape(band_name)}: 95% interval</title></polygon>"
            )
    half = (slice_ns or 0) // 2
    legend_x = _LEFT
    for name, points in series:
        colour = colours[name]
        runs: list[list[str]] = [[]]
        dots = []
        extra = (notes or {}).get(name, ())
        for i, (ns, value) in enumerate(points):
            if value is None or not math.isfinite(value):
                runs.append([])
                continue
            runs[-1].append(f"{x(ns):.1f},{y(value):.1f}")
            when = f"{_moment(ns - half)} to {_moment(ns + half)}" if half else _moment(ns)
            note = extra[i] if i < len(extra) else None
            text = f"{when}: {name} {_number(value, unit)}" + (f" ({note})" if note else "")
            dots.append(
                f'<circle class="dot" cx="{x(ns):.1f}" cy="{y(value):.1f}" r="3" fill="{colour}">'
                f"<title>{escape(text)}</title></circle>"
            )
        for run in runs:
            if len(run) > 1:
                parts.append(f'<polyline class="line" stroke="{colour}" points="{" ".join(run)}"/>')
        parts.extend(dots)
        parts.append(f'<rect x="{legend_x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{legend_x + 14}" y="17" fill="{colour}">{escape(name)}</text>')
        legend_x += 24 + 8 * len(name) + 10
    parts.append("</svg>")
    return Markup("".join(parts))


def sparkline(values: Sequence[float | None], threshold: float | None = None) -> Markup:
    """A 100 x 20 sparkline of ``values`` (gaps for None), with the threshold as a dashed line if given."""
    known = [v for v in values if v is not None and math.isfinite(v)]
    if not known:
        return Markup('<span class="muted">-</span>')
    hi = max(known + ([threshold] if threshold is not None else [])) or 1.0
    n = max(1, len(values) - 1)
    points = " ".join(
        f"{100 * i / n:.1f},{20 - 18 * v / hi:.1f}" for i, v in enumerate(values) if v is not None and math.isfinite(v)
    )
    line = ""
    if threshold is not None:
        ty = 20 - 18 * threshold / hi
        line = f'<line x1="0" x2="100" y1="{ty:.1f}" y2="{ty:.1f}" class="threshold"/>'
    return Markup(
        f'<svg class="spark" viewBox="0 0 100 20" preserveAspectRatio="none" aria-hidden="true">{line}'
        f'<polyline points="{points}"/></svg>'
    )
