"""Sampling error of the quality figures: how far a rate measured on n labelled rows may be from the truth."""

from __future__ import annotations

import math

__all__ = ["Z95", "mean_interval", "wilson"]

#: The normal quantile of a two-sided 95% interval.
Z95 = 1.959963984540054


def wilson(successes: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (``successes`` of ``n``); ``None`` for no rows.

    Wilson's, not the normal approximation's: it stays inside [0, 1] and is honest at 0 or n successes and for
    the handful of labels a fresh slice has."""
    if n <= 0:
        return None
    p = successes / n
    denominator = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, centre - half), min(1.0, centre + half)


def mean_interval(total: float, total_sq: float, n: float, z: float = Z95) -> tuple[float, float] | None:
    """The normal interval of a mean (of absolute errors, say) from its sum and sum of squares over n rows."""
    if n <= 1:
        return None
    mean = total / n
    variance = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = z * math.sqrt(variance / n)
    return mean - half, mean + half
