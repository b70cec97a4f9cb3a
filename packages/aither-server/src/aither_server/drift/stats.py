"""Drift statistics between a reference profile and a current one, read from their sketches (numpy, scipy).

Numeric columns (KLL sketches):

- bins: the reference's deciles (:data:`BINS` bins of equal reference mass; fewer when quantiles tie);
  each side's share per bin is read from its sketch (``get_pmf``), zero shares raised to :data:`EPSILON`;
- PSI: ``sum((cur - ref) * ln(cur / ref))``, as ``scipy.special.rel_entr(cur, ref) + rel_entr(ref, cur)``;
- Jensen-Shannon distance: ``scipy.spatial.distance.jensenshannon(ref, cur)`` (natural log) over those bins;
- Kolmogorov-Smirnov: the largest gap between the two sketches' CDFs over both sketches' quantiles (a grid of
  :data:`KS_GRID` points each), its p-value ``scipy.stats.kstwo.sf(D, round(n * m / (n + m)))`` as
  ``scipy.stats.ks_2samp`` computes it in its asymptotic mode (above :data:`KSTWO_MAX_N`, the limiting
  distribution ``scipy.stats.kstwobign.sf(D * sqrt(en))``, within 2% of it and a hundred times faster).

Categorical columns (frequent-items sketches): the counts of every category either side tracked, plus one
"other" count for what a sketch could not track; Jensen-Shannon distance over the shares, and Pearson's
chi-squared test of homogeneity (``scipy.stats.chi2_contingency``) on the 2 x K table of counts.

Which one decides, and at what threshold (Evidently's defaults, docs/drift.md): a reference of at most
:data:`SMALL_REFERENCE` values is judged by a p-value test (KS for numeric, chi-squared for categorical,
drifted when p < 0.05); a larger one by the Jensen-Shannon distance (drifted when >= 0.1), because on large
samples a p-value test flags shifts too small to matter. PSI (drifted when >= 0.1) may be asked for.

The ``score`` always grows with drift: a distance (Jensen-Shannon, PSI) as it is; for a test, its effect size
(the KS statistic D; Cramer's V of the chi-squared table), with the test's p-value in ``p_value``.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypedDict

from aither.profile import CATEGORICAL, NUMERIC, Profile

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray


class QuantileSketch(Protocol):
    """What drift reads of a KLL sketch (``Profile.kll()``, datasketches' ``kll_doubles_sketch``)."""

    def get_quantiles(self, ranks: Sequence[float] | NDArray[np.float64]) -> Sequence[float]: ...
    def get_pmf(self, split_points: Sequence[float]) -> Sequence[float]: ...
    def get_cdf(self, split_points: NDArray[np.float64]) -> Sequence[float]: ...


__all__ = [
    "BINS",
    "EPSILON",
    "KSTWO_MAX_N",
    "KS_GRID",
    "METHODS",
    "SMALL_REFERENCE",
    "SCORES",
    "THRESHOLDS",
    "Drift",
    "DriftEntry",
    "applies",
    "categorical_shares",
    "compare",
    "numeric_shares",
    "out_of_range_rate",
    "unseen_category_rate",
]

BINS = 10
EPSILON = 1e-4
KS_GRID = 512
KSTWO_MAX_N = 10_000
SMALL_REFERENCE = 1000
#: method -> (threshold, True when a score at or above it is drift; False when a p-value below it is)
THRESHOLDS: dict[str, tuple[float, bool]] = {
    "psi": (0.1, True),
    "jensenshannon": (0.1, True),
    "ks": (0.05, False),
    "chisquare": (0.05, False),
}
METHODS = frozenset(THRESHOLDS)
_NUMERIC_METHODS = frozenset({"psi", "jensenshannon", "ks"})
_CATEGORICAL_METHODS = frozenset({"jensenshannon", "chisquare"})


#: What ``score`` is for each method (higher is always more drift).
SCORES = {"psi": "psi", "jensenshannon": "jensenshannon", "ks": "ks_statistic", "chisquare": "cramers_v"}


@dataclasses.dataclass(frozen=True)
class Drift:
    method: str
    score: float | None
    """Higher means more drift, whatever the method (:data:`SCORES`)."""
    p_value: float | None
    """The test's p-value (``ks``, ``chisquare``); ``None`` for a distance."""
    threshold: float
    drifted: bool
    statistics: dict[str, float | None]


def applies(method: str, kind: str) -> bool:
    """Whether ``method`` can compare columns of ``kind`` (``numeric`` or ``categorical``)."""
    return method in (_NUMERIC_METHODS if kind == NUMERIC else _CATEGORICAL_METHODS)


def _edges(reference: QuantileSketch) -> list[float]:
    quantiles = reference.get_quantiles([i / BINS for i in range(1, BINS)])
    edges: list[float] = []
    for q in quantiles:
        if not edges or q > edges[-1]:
            edges.append(float(q))
    return edges


def numeric_shares(
    reference: QuantileSketch, current: QuantileSketch
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Each side's share of values per bin of the reference's deciles (zeros raised to EPSILON)."""
    import numpy as np

    edges = _edges(reference)
    ref = np.maximum(np.asarray(reference.get_pmf(edges), dtype=np.float64), EPSILON)
    cur = np.maximum(np.asarray(current.get_pmf(edges), dtype=np.float64), EPSILON)
    return ref, cur


def _ks(reference: QuantileSketch, current: QuantileSketch, n: int, m: int) -> tuple[float, float]:
    import numpy as np
    from scipy import stats

    ranks = np.linspace(0.0, 1.0, KS_GRID)
    grid = np.unique(np.concatenate([reference.get_quantiles(ranks), current.get_quantiles(ranks)]))
    gap = np.abs(np.asarray(reference.get_cdf(grid))[:-1] - np.asarray(current.get_cdf(grid))[:-1])
    statistic = float(gap.max()) if gap.size else 0.0
    effective = max(1, round(n * m / (n + m)))
    if effective <= KSTWO_MAX_N:
        return statistic, float(stats.kstwo.sf(statistic, effective))
    # kstwo's exact tail costs up to 0.2 s per column at large n; its limit is within 2% there.
    return statistic, float(stats.kstwobign.sf(statistic * math.sqrt(effective)))


def categorical_shares(
    reference: Profile, current: Profile
) -> tuple[list[str], NDArray[np.float64], NDArray[np.float64]]:
    """Categories (every one either sketch tracked, then "other" for what they could not) and counts."""
    import datasketches
    import numpy as np

    no_false_negatives = datasketches.frequent_items_error_type.NO_FALSE_NEGATIVES
    ref_counts = {item: est for item, est, _, _ in reference.frequent().get_frequent_items(no_false_negatives)}
    cur_counts = {item: est for item, est, _, _ in current.frequent().get_frequent_items(no_false_negatives)}
    names = sorted(set(ref_counts) | set(cur_counts))
    ref = np.asarray([ref_counts.get(c, 0) for c in names] + [0], dtype=np.float64)
    cur = np.asarray([cur_counts.get(c, 0) for c in names] + [0], dtype=np.float64)
    ref[-1] = max(0.0, reference.count - ref[:-1].sum())
    cur[-1] = max(0.0, current.count - cur[:-1].sum())
    return [*names, "\x00other"], ref, cur


class _Verdict(TypedDict):
    name: str
    kind: str
    reference_count: int
    current_count: int
    method: str | None
    score: float | None
    p_value: float | None
    threshold: float | None
    drifted: bool
    statistics: dict[str, float | None]


class DriftEntry(_Verdict, total=False):
    """One row of a drift answer: a column, the prediction, or the embeddings (``drift/embeddings.py``)."""

    skipped: str
    """Why the row has no verdict, when the method could not be applied."""


def compare(reference: Profile, current: Profile, method: str | None = None) -> Drift:
    """Drift of ``current`` against ``reference`` (both of one kind), by ``method`` or the default rule."""
    import numpy as np
    from scipy import special, stats
    from scipy.spatial import distance

    small = reference.count <= SMALL_REFERENCE
    statistics: dict[str, float | None] = {}
    if reference.kind == NUMERIC:
        if method is not None and method not in _NUMERIC_METHODS:
            raise ValueError(f"method {method!r} does not apply to a numeric column")
        chosen = method or ("ks" if small else "jensenshannon")
        ref_sketch, cur_sketch = reference.kll(), current.kll()
        ref, cur = numeric_shares(ref_sketch, cur_sketch)
        statistics["psi"] = float(np.sum(special.rel_entr(cur, ref) + special.rel_entr(ref, cur)))
        statistics["jensenshannon"] = float(distance.jensenshannon(ref, cur))
        ks, p = _ks(ref_sketch, cur_sketch, reference.count, current.count)
        statistics["ks_statistic"], statistics["ks"] = ks, p
    else:
        if method is not None and method not in _CATEGORICAL_METHODS:
            raise ValueError(f"method {method!r} does not apply to a categorical column")
        chosen = method or ("chisquare" if small else "jensenshannon")
        _, ref, cur = categorical_shares(reference, current)
        statistics["jensenshannon"] = float(distance.jensenshannon(ref / ref.sum(), cur / cur.sum()))
        table = np.vstack([ref, cur])
        table = table[:, table.sum(axis=0) > 0]
        if table.shape[1] > 1:
            chi2, p, _, _ = stats.chi2_contingency(table, correction=False)
            statistics["chisquare_statistic"], statistics["chisquare"] = float(chi2), float(p)
            # Cramer's V of a 2 x K table: sqrt(chi2 / n), from 0 (the same shares) to 1 (no category shared).
            statistics["cramers_v"] = float(math.sqrt(chi2 / table.sum()))
        else:  # one category on both sides: nothing can have moved
            statistics["chisquare_statistic"], statistics["chisquare"], statistics["cramers_v"] = 0.0, 1.0, 0.0
    threshold, above = THRESHOLDS[chosen]
    score = statistics[SCORES[chosen]]
    p_value = None if above else statistics[chosen]
    decided = score if above else p_value
    drifted = decided is not None and math.isfinite(decided) and ((decided >= threshold) == above)
    return Drift(chosen, score, p_value, threshold, drifted, statistics)


def out_of_range_rate(reference: Profile, current: Profile) -> float | None:
    """Share of current numeric values below the reference's minimum or above its maximum."""
    if reference.kind != NUMERIC or current.kind != NUMERIC or current.count == 0:
        return None
    if reference.minimum is None or reference.maximum is None:
        return None
    low, high = reference.minimum, reference.maximum
    if (
        current.minimum is not None
        and current.maximum is not None
        and low <= current.minimum <= current.maximum <= high
    ):
        return 0.0
    sketch = current.kll()
    below = sketch.get_rank(low, inclusive=False)
    above = 1.0 - sketch.get_rank(high, inclusive=True)
    return float(max(0.0, below) + max(0.0, above))


def unseen_category_rate(reference: Profile, current: Profile) -> float | None:
    """Share of current categorical values whose category the reference never had."""
    if reference.kind != CATEGORICAL or current.kind != CATEGORICAL or current.count == 0:
        return None
    names, ref, cur = categorical_shares(reference, current)
    unseen = sum(c for name, r, c in zip(names[:-1], ref[:-1], cur[:-1], strict=True) if r == 0)
    return float(unseen / current.count)
