"""Running sums kept per key: the rollup reads add the rows of several tables (days, hours, minutes, raw rows)
into one cell a key."""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

__all__ = ["add_sums"]

K = TypeVar("K", bound=Hashable)
N = TypeVar("N", int, float)


def add_sums(out: dict[K, list[N]], key: K, *values: N) -> None:
    """Add ``values`` into ``key``'s cell, made at zero first."""
    cell = out.get(key)
    if cell is None:
        out[key] = list(values)
    else:
        for i, value in enumerate(values):
            cell[i] += value
