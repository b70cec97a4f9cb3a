"""A feature's reference and current distributions, overlaid in one SVG: numeric columns as histograms over
shared bins (from the KLL sketches' PMF), categorical ones as bars per category (from the frequent-items
sketches). The profiles are the drift query's own (``_drift_query._Sides``), merged over the window."""

from __future__ import annotations

from typing import TypedDict

from markupsafe import Markup, escape

from aither.profile import Profile
from aither_server.drift.query import NotFound, Window, _Sides
from aither_server.drift.store import DriftStore
from aither_server.ui.charts import readable

__all__ = ["Distributions", "distributions", "overlay"]

_BINS = 20
_W, _H, _LEFT, _BOTTOM, _TOP = 640, 240, 48, 56, 24


def _numeric(reference: Profile, current: Profile | None) -> list[tuple[str, float, float]]:
    profiles = [p for p in (reference, current) if p is not None and p.count]
    lo = min(p.minimum for p in profiles if p.minimum is not None)
    hi = max(p.maximum for p in profiles if p.maximum is not None)
    if hi <= lo:
        hi = lo + 1.0
    edges = [lo + (hi - lo) * i / _BINS for i in range(1, _BINS)]

    def masses(profile: Profile | None) -> list[float]:
        if profile is None or not profile.count:
            return [0.0] * _BINS
        return [float(m) for m in profile.kll().get_pmf(edges)]

    ref, cur = masses(reference), masses(current)
    starts = [lo, *edges]
    step = (hi - lo) / _BINS
    return [(readable(starts[i], step), ref[i], cur[i]) for i in range(_BINS)]


def _categorical(reference: Profile, current: Profile | None) -> list[tuple[str, float, float]]:
    import datasketches

    def shares(profile: Profile | None) -> dict[str, float]:
        if profile is None or not profile.count:
            return {}
        items = profile.frequent().get_frequent_items(datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES)
        return {str(item[0]): float(item[1]) / profile.count for item in items}

    ref, cur = shares(reference), shares(current)
    names = sorted(set(ref) | set(cur), key=lambda n: -(ref.get(n, 0.0) + cur.get(n, 0.0)))[:20]
    return [(n, ref.get(n, 0.0), cur.get(n, 0.0)) for n in names]


class Distributions(TypedDict):
    kind: str
    reference_count: int
    current_count: int
    bars: list[tuple[str, float, float]]
    """(bin or category, reference share, current share)."""


def distributions(
    store: DriftStore, model: str, feature: str, *, version: str | None, environment: str | None, window: Window
) -> Distributions | None:
    """Bars of (label, reference share, current share), with the kind and counts; None without a reference."""
    try:
        sides = _Sides(store, model, version, environment, window, None)
    except NotFound:
        return None
    reference_kinds = sides.reference_features.get(feature)
    if not reference_kinds:
        return None
    reference = max(reference_kinds.values(), key=lambda p: p.count)
    current = sides.current_features.get(feature, {}).get(reference.kind)
    bars = _numeric(reference, current) if reference.kind == "numeric" else _categorical(reference, current)
    return {
        "kind": reference.kind,
        "reference_count": reference.count,
        "current_count": 0 if current is None else current.count,
        "bars": bars,
    }


def overlay(title: str, bars: list[tuple[str, float, float]]) -> Markup:
    """Reference (blue) and current (red) shares side by side per bin or category, y axis in percent."""
    top = max([max(r, c) for _, r, c in bars] + [0.01])
    plot_w, plot_h = _W - _LEFT - 10, _H - _TOP - _BOTTOM
    slot = plot_w / max(1, len(bars))
    parts = [
        f'<svg class="chart" viewBox="0 0 {_W} {_H}" role="img" aria-label="{escape(title)}"'
        ' xmlns="http://www.w3.org/2000/svg">',
        f"<title>{escape(title)}</title>",
    ]
    for i in range(5):
        value = top * i / 4
        y = _TOP + plot_h * (1 - i / 4)
        parts.append(f'<line class="grid" x1="{_LEFT}" x2="{_W - 10}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{_LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{value * 100:.0f}%</text>')
    for index, (label, ref, cur) in enumerate(bars):
        x = _LEFT + slot * index
        for offset, share, colour, side in ((0.1, ref, "#2563eb", "reference"), (0.5, cur, "#dc2626", "current")):
            height = plot_h * share / top
            parts.append(
                f'<rect x="{x + slot * offset:.1f}" y="{_TOP + plot_h - height:.1f}" width="{slot * 0.4:.1f}"'
                f' height="{height:.1f}" fill="{colour}" fill-opacity="0.8">'
                f"<title>{escape(f'{label}: {side} {share * 100:.1f}%')}</title></rect>"
            )
        if len(bars) <= 12 or index % 2 == 0:
            lx, ly = x + slot / 2, _TOP + plot_h + 12
            parts.append(
                f'<text class="axis" x="{lx:.1f}" y="{ly:.1f}" text-anchor="end"'
                f' transform="rotate(-35 {lx:.1f} {ly:.1f})">{escape(label[:14])}</text>'
            )
    parts.append(f'<text class="legend" x="{_LEFT + 8}" y="14" fill="#2563eb">reference</text>')
    parts.append(f'<text class="legend" x="{_LEFT + 100}" y="14" fill="#dc2626">current</text>')
    parts.append("</svg>")
    return Markup("".join(parts))
