"""Admission: which predictions enter the exporter's queue, and which labels follow them.

The keep-every policy (SPEC "Delivery under load"): while the worker keeps up every prediction is kept. When
it falls behind, the caller keeps 1 prediction in ``k``, uniformly (every k-th call), and each kept span says
``ml.sample_rate = 1/k``. ``k`` doubles as the queue passes 3/4 of its bound (in records or bytes), then 7/8,
15/16...: a worker stuck in a slow request cannot lower the rate itself, and the queue must not fill meanwhile.
After each send the worker doubles ``k`` while the queue stays past half its bound and halves it once it is
under an eighth. Every change of ``k`` goes through :meth:`Admission._set`.

A label whose prediction was dropped is not sent either: the trace ids of the last
:data:`DROPPED_IDS_REMEMBERED` dropped predictions are remembered.

Not thread-safe on its own: every method but :meth:`Admission.admit` runs under the exporter's queue lock.
"""

from __future__ import annotations

import itertools

__all__ = ["DROPPED_IDS_REMEMBERED", "MAX_KEEP_EVERY", "Admission"]

#: Trace ids of dropped predictions remembered, so that their labels are not sent either.
DROPPED_IDS_REMEMBERED = 65_536
#: The most calls one kept span may stand for.
MAX_KEEP_EVERY = 1 << 20
#: The queue's fill (of its record or byte bound) after a send above which fewer spans are kept, and below which
#: more.
_OVERLOAD_FILL = 0.5
_RECOVERED_FILL = 0.125
#: The fill at which the caller starts keeping fewer spans on its own.
_HIGH_WATER = 0.75


class Admission:
    """The keep-every policy over a queue bounded at ``max_records`` records and ``max_bytes`` bytes."""

    __slots__ = (
        "_admitted",
        "_dropped_ids",
        "_high_water",
        "_high_water_bytes",
        "_max_bytes",
        "_max_records",
        "keep_every",
        "raise_at",
        "raise_at_bytes",
    )

    def __init__(self, max_records: int, max_bytes: int) -> None:
        self._max_records = max_records
        self._max_bytes = max_bytes
        self._high_water = max(1, int(max_records * _HIGH_WATER))
        self._high_water_bytes = int(max_bytes * _HIGH_WATER)
        #: 1 while every prediction is kept; else 1 in ``keep_every`` is. Read by the caller without the lock.
        self.keep_every = 1
        #: The queue's size (records, bytes) at which the caller keeps fewer spans (see :meth:`passed_mark`).
        self.raise_at = self._high_water
        self.raise_at_bytes = self._high_water_bytes
        self._admitted = itertools.count()
        self._dropped_ids: dict[int, None] = {}

    # ---------------------------------------------------------------- predictions

    def admit(self) -> int:
        """0 to skip the next prediction, else ``k`` when it stands for ``k`` calls (1 normally). No lock: a
        race only shifts which call of the k is kept."""
        keep_every = self.keep_every
        if keep_every == 1:
            return 1
        return keep_every if next(self._admitted) % keep_every == 0 else 0

    def passed_mark(self, held: int, size: int) -> None:
        """(Caller thread.) The queue, now ``held`` records and ``size`` bytes, reached ``raise_at`` or
        ``raise_at_bytes``: keep half as many spans."""
        if self.keep_every < MAX_KEEP_EVERY:
            self._set(self.keep_every * 2, held, size)

    def sent(self, held: int, size: int) -> None:
        """(Worker.) After a send, with ``held`` records and ``size`` bytes still queued or in flight: keep fewer
        spans while the queue stays past half its bound, more once it drains."""
        fill = max(held / self._max_records, size / self._max_bytes)
        keep_every = self.keep_every
        if fill >= _OVERLOAD_FILL and keep_every < MAX_KEEP_EVERY:
            keep_every *= 2
        elif fill <= _RECOVERED_FILL and keep_every > 1:
            keep_every //= 2
        self._set(keep_every, held, size)

    def _set(self, keep_every: int, held: int, size: int) -> None:
        """The one place ``keep_every`` changes: the caller's next marks are halfway from here to the bound."""
        self.keep_every = keep_every
        self.raise_at = max(self._high_water, held + max(1, (self._max_records - held) // 2))
        self.raise_at_bytes = max(self._high_water_bytes, size + max(1, (self._max_bytes - size) // 2))

    # ---------------------------------------------------------------- labels

    def remember_dropped(self, trace_id: int) -> None:
        """A prediction was dropped: its label, if one comes, is dropped too."""
        ids = self._dropped_ids
        ids[trace_id] = None
        if len(ids) > DROPPED_IDS_REMEMBERED:
            del ids[next(iter(ids))]

    def was_dropped(self, trace_id: int) -> bool:
        return trace_id in self._dropped_ids

    def remembered(self) -> int:
        return len(self._dropped_ids)
