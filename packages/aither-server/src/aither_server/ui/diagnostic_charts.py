"""The diagnostics' charts, as inline SVG like ``ui/charts.py``'s: grouped bars (score distribution by class,
residuals by predicted value), and x-y plots (calibration against the diagonal, predicted against actual), every
mark with its value in an SVG ``<title>``."""

from __future__ import annotations

import math
from collections.abc import Sequence

from markupsafe import Markup, escape

from aither_server.ui.charts import readable

__all__ = ["bars", "interval_bar", "xy_chart"]

_W, _H = 640, 260
_LEFT, _RIGHT, _TOP, _BOTTOM = 60, 20, 30, 48
_COLOURS = ("#2563eb", "#dc2626", "#059669", "#9333ea", "#d97706", "#0891b2")


def _open(title: str) -> list[str]:
    return [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]


def _legend(parts: list[str], names: Sequence[str]) -> None:
    x = _LEFT
    for index, name in enumerate(names):
        colour = _COLOURS[index % len(_COLOURS)]
        parts.append(f'<rect x="{x}" y="8" width="10" height="10" fill="{colour}"/>')
        parts.append(f'<text class="legend" x="{x + 14}" y="17" fill="{colour}">{escape(name)}</text>')
        x += 34 + 8 * len(name)


def _step(span: float) -> float:
    raw = span / 4 if span > 0 else 1.0
    power: float = 10.0 ** math.floor(math.log10(raw))
    return next((f * power for f in (1, 2, 2.5, 5, 10) if raw <= f * power), 10 * power)


def bars(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[float]]],
    *,
    y_label: str,
    x_label: str,
    percent: bool = False,
) -> Markup:
    """Grouped bars: one group per label, one bar per series (negative values hang below zero)."""
    values = [v for _, vs in series for v in vs] or [0.0]
    lo, hi = min(0.0, *values), max(0.0, *values)
    step = _step(hi - lo)
    lo, hi = math.floor(lo / step) * step, max(math.ceil(hi / step) * step, lo + step)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM
    parts = _open(title)

    def y(v: float) -> float:
        return _TOP + plot_h * (1 - (v - lo) / (hi - lo))

    def text(v: float, tick: float | None = None) -> str:
        return readable(v * 100, None if tick is None else tick * 100) + "%" if percent else readable(v, tick)

    for i in range(round((hi - lo) / step) + 1):
        tick = lo + i * step
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{y(tick):.1f}" y2="{y(tick):.1f}"/>')
        parts.append(
            f'<text class="axis" x="{_LEFT - 6}" y="{y(tick) + 4:.1f}" text-anchor="end">{text(tick, step)}</text>'
        )
    slot = plot_w / max(1, len(labels))
    width = slot * 0.8 / max(1, len(series))
    for index, label in enumerate(labels):
        x0 = _LEFT + slot * index + slot * 0.1
        for k, (name, vs) in enumerate(series):
            v = vs[index] if index < len(vs) else 0.0
            top, bottom = (y(v), y(0.0)) if v >= 0 else (y(0.0), y(v))
            parts.append(
                f'<rect x="{x0 + width * k:.1f}" y="{top:.1f}" width="{width:.1f}" height="{bottom - top:.1f}"'
                f' fill="{_COLOURS[k % len(_COLOURS)]}" fill-opacity="0.85">'
                f"<title>{escape(f'{name}, {label}: {text(v)}')}</title></rect>"
            )
        if len(labels) <= 12 or index % 2 == 0:
            parts.append(
                f'<text class="axis" x="{x0 + slot * 0.4:.1f}" y="{_TOP + plot_h + 14}" text-anchor="middle">'
                f"{escape(label[:12])}</text>"
            )
    parts.append(
        f'<text class="axis" x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis" x="12" y="{_TOP + plot_h / 2}" text-anchor="middle"'
        f' transform="rotate(-90 12 {_TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    if len(series) > 1:
        _legend(parts, [name for name, _ in series])
    parts.append("</svg>")
    return Markup("".join(parts))


def xy_chart(
    title: str,
    points: Sequence[tuple[float, float, str]],
    *,
    x_label: str,
    y_label: str,
    whiskers: Sequence[tuple[float, float, float]] = (),
    diagonal: bool = True,
    bounds: tuple[float, float] | None = None,
) -> Markup:
    """Points (x, y, hover text) on shared axes, the y = x diagonal (a perfect model), and vertical whiskers
    (x, low, high) for intervals. ``bounds`` fixes both axes (``(0, 1)`` for calibration)."""
    parts = _open(title)
    if not points:
        parts.append(f'<text class="empty" x="{_W / 2}" y="{_H / 2}" text-anchor="middle">No labelled rows</text>')
        return Markup("".join(parts) + "</svg>")
    if bounds is None:
        values = [v for x, y, _ in points for v in (x, y)]
        lo, hi = min(values), max(values)
        step = _step(hi - lo)
        lo, hi = math.floor(lo / step) * step, max(math.ceil(hi / step) * step, lo + step)
    else:
        lo, hi = bounds
        step = _step(hi - lo)
    plot_w, plot_h = _W - _LEFT - _RIGHT, _H - _TOP - _BOTTOM

    def px(v: float) -> float:
        return _LEFT + plot_w * (v - lo) / (hi - lo)

    def py(v: float) -> float:
        return _TOP + plot_h * (1 - (v - lo) / (hi - lo))

    for i in range(round((hi - lo) / step) + 1):
        tick = lo + i * step
        label = escape(readable(tick, step))
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - _RIGHT}" y1="{py(tick):.1f}" y2="{py(tick):.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{py(tick) + 4:.1f}" text-anchor="end">{label}</text>')
        parts.append(
            f'<text class="axis" x="{px(tick):.1f}" y="{_TOP + plot_h + 14}" text-anchor="middle">{label}</text>'
        )
    if diagonal:
        parts.append(
            f'<line class="grid diagonal" x1="{px(lo):.1f}" y1="{py(lo):.1f}" x2="{px(hi):.1f}" y2="{py(hi):.1f}"'
            ' stroke="#9ca3af" stroke-dasharray="4 3"><title>a perfect model</title></line>'
        )
    for x, low, high in whiskers:
        parts.append(
            f'<line x1="{px(x):.1f}" x2="{px(x):.1f}" y1="{py(low):.1f}" y2="{py(high):.1f}" stroke="#93c5fd"'
            ' stroke-width="3"/>'
        )
    radius = 4 if len(points) <= 50 else 2
    for x, y, text in points:
        parts.append(
            f'<circle class="dot" cx="{px(x):.1f}" cy="{py(y):.1f}" r="{radius}" fill="{_COLOURS[0]}"'
            f' fill-opacity="0.7"><title>{escape(text)}</title></circle>'
        )
    parts.append(
        f'<text class="axis" x="{_LEFT + plot_w / 2}" y="{_H - 6}" text-anchor="middle">{escape(x_label)}</text>'
    )
    parts.append(
        f'<text class="axis" x="12" y="{_TOP + plot_h / 2}" text-anchor="middle"'
        f' transform="rotate(-90 12 {_TOP + plot_h / 2})">{escape(y_label)}</text>'
    )
    parts.append("</svg>")
    return Markup("".join(parts))


def interval_bar(
    value: float | None, low: float | None, high: float | None, overall: float | None, top: float
) -> Markup:
    """A 200 x 14 strip: a segment's interval (grey), its value (dot) and the overall figure (dashed), on [0, top]."""
    if value is None or top <= 0:
        return Markup("")

    def x(v: float) -> float:
        return 4 + 192 * max(0.0, min(1.0, v / top))

    parts = [
        '<svg class="interval" viewBox="0 0 200 14" aria-hidden="true">',
        '<line class="axis" x1="4" x2="196" y1="7" y2="7"/>',
    ]
    if low is not None and high is not None:
        parts.append(f'<line class="range" x1="{x(low):.1f}" x2="{x(high):.1f}" y1="7" y2="7"/>')
    if overall is not None:
        parts.append(f'<line class="overall" x1="{x(overall):.1f}" x2="{x(overall):.1f}" y1="1" y2="13"/>')
    parts.append(f'<circle cx="{x(value):.1f}" cy="7" r="3.5"/></svg>')
    return Markup("".join(parts))
