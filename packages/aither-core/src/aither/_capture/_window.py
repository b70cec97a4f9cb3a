"""Which rows and which columns of a table are sampled: rows uniformly at random, columns a rotating window.

Rows are drawn without replacement, uniformly at random per call, and kept in ascending order; their indices
go to ``_meta.rows`` so a sampled row joins its prediction row and its label. A sorted or grouped batch is
thus sampled from everywhere, not from one end.

When a table has more columns than ``sample_columns``, each call samples a window of ``sample_columns``
consecutive columns, and the window moves one step per call of the same model (the last window ends at the
last column), so every column is observed within ``ceil(width / sample_columns)`` calls. The step is the
model's call count, set by the model's logger just before it captures (:func:`set_turn`), so two models
called in turn each still rotate through all their columns.
"""

from __future__ import annotations

import random

__all__ = ["column_window", "random_rows", "set_turn"]

_turn = 0
_sample = random.sample  # the process-wide generator: reseeded in a forked child by Python itself


def set_turn(turn: int) -> None:
    """The calling model's call count: which column window its next capture takes."""
    global _turn
    _turn = turn


def random_rows(total: int, rows: int) -> list[int]:
    """``rows`` row indices of ``range(total)``, uniformly at random without replacement, ascending.

    O(rows), whatever ``total`` is (``random.sample`` draws into a set when the population is large)."""
    if total <= rows:
        return list(range(total))
    picked = _sample(range(total), rows)
    picked.sort()
    return picked


def column_window(width: int, columns: int) -> tuple[int, int]:
    """``(start, stop)`` of the columns this call samples out of ``width``."""
    if width <= columns:
        return 0, width
    if columns == 0:
        return 0, 0
    windows = -(-width // columns)
    start = min((_turn % windows) * columns, width - columns)
    return start, start + columns
