"""Charts drawn on the server as inline SVG: a time series with labelled axes and units, and a sparkline.

No JavaScript: the page is complete when its HTML arrives, the browser draws SVG natively, and a chart of 100
points weighs about 4 KB of markup (docs/dashboard.md says why this over a charting library). Values are
escaped by building the markup with ``markupsafe``.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Sequence

from markupsafe import Markup, escape

__all__ = ["Series", "line_chart", "sparkline"]

#: (name, points of (time in ns, value or None for a gap)).
Series = tuple[str, Sequence[tuple[int, float | None]]]

_W, _H = 640, 220
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 28, 14, 40
_COLOURS = ("#2563eb", "#dc2626", "#059669", "#9333ea")


def _nice_step(span: float, ticks: int = 4) -> float:
    raw = span / ticks if span > 0 else 1.0
    power: float = 10.0 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * power:
            return factor * power
    return 10 * power


def _number(value: float, unit: str) -> str:
    if unit == "%":
        return f"{value * 100:.3g}%"
    if abs(value) >= 1e6:
        text = f"{value / 1e6:.3g}M"
    elif abs(value) >= 1e3:
        text = f"{value / 1e3:.3g}k"
    else:
        text = f"{value:.3g}"
    return f"{text} {unit}".strip() if unit and unit != "%" else text


def _time_label(ns: int, span_ns: int) -> str:
    moment = datetime.datetime.fromtimestamp(ns / 1e9, tz=datetime.timezone.utc)
    return moment.strftime("%d %b" if span_ns > 3 * 86400 * 10**9 else "%H:%M")


def line_chart(title: str, series: Sequence[Series], *, unit: str = "", start_ns: int, end_ns: int) -> Markup:
    """An SVG line chart of ``series`` over [start, end): y axis in ``unit`` (``%`` for rates), x in UTC."""
    values = [v for _, points in series for _, v in points if v is not None and math.isfinite(v)]
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
    hi = math.ceil(hi / step) * step if hi > lo else lo + step
    span_ns = max(1, end_ns - start_ns)

    def x(ns: int) -> float:
        return _LEFT + plot_w * (ns - start_ns) / span_ns

    def y(value: float) -> float:
        return _TOP + plot_h * (1 - (value - lo) / (hi - lo))

    # Axes: horizontal grid lines with the y labels, and five time labels along the bottom (UTC).
    tick = lo
    while tick <= hi + step / 2:
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        label = escape(_number(tick, unit))
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{label}</text>')
        tick += step
    for i in range(5):
        ns = start_ns + span_ns * i // 4
        parts.append(
            f'<text class="axis" x="{x(ns):.1f}" y="{_H - _BOTTOM + 16}" text-anchor="middle">'
            f"{escape(_time_label(ns, span_ns))}</text>"
        )
    parts.append(f'<text class="axis" x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle">time (UTC)</text>')
    for index, (name, points) in enumerate(series):
        colour = _COLOURS[index % len(_COLOURS)]
        runs: list[list[str]] = [[]]
        for ns, value in points:
            if value is None or not math.isfinite(value):
                runs.append([])
                continue
            runs[-1].append(f"{x(ns):.1f},{y(value):.1f}")
        for run in runs:
            if len(run) == 1:
                cx, cy = run[0].split(",")
                parts.append(f'<circle cx="{cx}" cy="{cy}" r="2.5" fill="{colour}"/>')
            elif run:
                parts.append(f'<polyline class="line" stroke="{colour}" points="{" ".join(run)}"/>')
        parts.append(
            f'<text class="legend" x="{_LEFT + 8 + 110 * index}" y="{_TOP + 10}" fill="{colour}">{escape(name)}</text>'
        )
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
