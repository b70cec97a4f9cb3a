"""Drift statistics from sketches against an independent computation on the raw values (numpy, scipy).

Tolerances (the sketch error): KLL with k = 200 has a normalised rank error of about 1.3%, so a bin's share
or a CDF value read from a sketch is within about 0.02 of the exact one. Stated and asserted here:
KS statistic within 0.03 of ``scipy.stats.ks_2samp``; Jensen-Shannon distance within 0.02 and PSI within
0.03 + 10% of the same statistics on exact decile bins of the raw values (over 1,000 draws of the
randomised KLL compaction: largest deviations 0.013 KS, 0.011 JS, 0.027 PSI).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special, stats
from scipy.spatial import distance

from aither.profile import profile_column
from aither_server.drift.stats import EPSILON, KSTWO_MAX_N, compare, out_of_range_rate, unseen_category_rate


def _exact(reference: np.ndarray, current: np.ndarray) -> dict[str, float]:
    edges = np.unique(np.quantile(reference, np.arange(1, 10) / 10))
    bins = np.concatenate([[-np.inf], edges, [np.inf]])
    ref = np.maximum(np.histogram(reference, bins)[0] / reference.size, EPSILON)
    cur = np.maximum(np.histogram(current, bins)[0] / current.size, EPSILON)
    return {
        "psi": float(np.sum(special.rel_entr(cur, ref) + special.rel_entr(ref, cur))),
        "jensenshannon": float(distance.jensenshannon(ref, cur)),
        "ks_statistic": float(stats.ks_2samp(reference, current).statistic),
    }


@pytest.mark.parametrize("shift", [0.0, 0.1, 0.3, 1.0])
@pytest.mark.parametrize("size", [800, 200_000])
def test_numeric_statistics_equal_scipy_on_the_raw_values(shift: float, size: int) -> None:
    rng = np.random.default_rng(7)
    reference = rng.normal(size=size)
    current = rng.normal(loc=shift, size=20_000)
    found = compare(profile_column(reference), profile_column(current)).statistics
    exact = _exact(reference, current)
    assert found["ks_statistic"] == pytest.approx(exact["ks_statistic"], abs=0.03)
    assert found["jensenshannon"] == pytest.approx(exact["jensenshannon"], abs=0.02)
    assert found["psi"] == pytest.approx(exact["psi"], abs=0.03, rel=0.1)
    # The p-value is scipy's asymptotic one for that statistic (its limiting form at large n, within 2%).
    effective = round(size * 20_000 / (size + 20_000))
    expected = stats.kstwo.sf(found["ks_statistic"], effective)
    assert found["ks"] == pytest.approx(expected, rel=1e-9 if effective <= KSTWO_MAX_N else 0.05, abs=1e-12)


def test_categorical_statistics_equal_scipy_and_see_a_new_category() -> None:
    rng = np.random.default_rng(3)
    reference = rng.choice(["A", "B", "C"], size=5000, p=[0.5, 0.3, 0.2])
    current = rng.choice(["A", "B", "C", "D"], size=3000, p=[0.35, 0.25, 0.1, 0.3])
    ref_profile, cur_profile = profile_column(reference), profile_column(current)
    result = compare(ref_profile, cur_profile)
    names = ["A", "B", "C", "D"]
    ref_counts = np.array([(reference == n).sum() for n in names], dtype=float)
    cur_counts = np.array([(current == n).sum() for n in names], dtype=float)
    exact_js = distance.jensenshannon(ref_counts / ref_counts.sum(), cur_counts / cur_counts.sum())
    exact_chi2 = stats.chi2_contingency(np.vstack([ref_counts, cur_counts]), correction=False)
    # Below 768 categories the frequent-items sketch counts exactly: equal to rounding.
    assert result.statistics["jensenshannon"] == pytest.approx(exact_js, abs=1e-9)
    assert result.statistics["chisquare_statistic"] == pytest.approx(exact_chi2[0], rel=1e-9)
    assert result.method == "jensenshannon" and result.drifted
    assert unseen_category_rate(ref_profile, cur_profile) == pytest.approx((current == "D").mean())


def test_out_of_range_rate_is_the_share_outside_the_reference_min_and_max() -> None:
    rng = np.random.default_rng(5)
    reference = rng.uniform(0, 1, size=10_000)
    current = rng.uniform(0.5, 1.5, size=10_000)
    rate = out_of_range_rate(profile_column(reference), profile_column(current))
    assert rate == pytest.approx(((current < reference.min()) | (current > reference.max())).mean(), abs=0.02)
    assert out_of_range_rate(profile_column(reference), profile_column(reference[:100])) == 0.0


def test_no_shift_over_20_seeds_flags_at_most_the_nominal_rate_and_no_distance_drift() -> None:
    """p-value tests (small references) flag at most their nominal 5%; distances (large ones) flag nothing."""
    small_flags = small_tests = large_flags = 0
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        for column in range(10):
            numeric = column < 8

            def draw(n: int, rng: np.random.Generator = rng, numeric: bool = numeric) -> np.ndarray:
                return rng.normal(size=n) if numeric else rng.choice(["x", "y", "z"], size=n, p=[0.6, 0.3, 0.1])

            small = compare(profile_column(draw(500)), profile_column(draw(500)))
            assert small.method == ("ks" if numeric else "chisquare")
            small_flags += small.drifted
            small_tests += 1
            large = compare(profile_column(draw(50_000)), profile_column(draw(5_000)))
            assert large.method == "jensenshannon"
            large_flags += large.drifted
    assert small_flags / small_tests <= 0.05
    assert large_flags == 0
