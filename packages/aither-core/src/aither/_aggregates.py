"""Per-model counts kept on the calling thread: calls, rows, errors and a latency histogram, exact whatever spans
are dropped or sampled out.

Each thread counts into its own list (a few integer adds per call, no lock). The export worker reads every
thread's list and reports the difference since its last successful report, so nothing is reset under a
counting thread's feet and nothing is lost or counted twice: a report that fails leaves the baseline where it
was, and the next one covers the longer interval.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
import weakref

from ._records import ModelIdentity
from ._stats import ModelTotals

__all__ = [
    "BOUNDS_MS",
    "Collection",
    "ModelCounts",
    "ModelDelta",
    "collect",
    "counts_for",
    "totals",
]

#: Latency histogram bounds in milliseconds: 10 µs to about 84 s, each bucket 19% wider than the last
#: (docs/wire-contract.md). 93 bounds, 94 buckets.
BOUNDS_MS: tuple[float, ...] = tuple(0.01 * 2 ** (i / 4) for i in range(93))
#: The same bounds in nanoseconds, for ``bisect`` on the calling thread.
BOUNDS_NS: list[float] = [bound * 1e6 for bound in BOUNDS_MS]

# A thread's counters for one model: [calls, rows, errors, summed duration in ns, bucket 0, ..., bucket 93].
CALLS, ROWS, ERRORS, DURATION_NS, FIRST_BUCKET = 0, 1, 2, 3, 4
_CELL_SIZE = FIRST_BUCKET + len(BOUNDS_MS) + 1


class _Owner:
    """Lives in a thread's ``threading.local``: when the thread ends, its local dies and the weak reference to
    this object tells the collector that the thread's counts are final."""

    __slots__ = ("__weakref__",)


class _Slot:
    __slots__ = ("cell", "owner", "reported")

    def __init__(self, cell: list[int], owner: weakref.ref[_Owner]) -> None:
        self.cell = cell
        self.reported = [0] * _CELL_SIZE
        self.owner = owner


class ModelCounts:
    """The counters of one model identity in this process, one list per thread that called it."""

    __slots__ = ("_retired", "_slots", "identity", "local")

    def __init__(self, identity: ModelIdentity) -> None:
        self.identity = identity
        self.local = threading.local()
        self._slots: list[_Slot] = []
        #: What threads that ended had counted (already reported), for the process totals.
        self._retired = [0] * _CELL_SIZE

    def cell(self) -> list[int]:
        """This thread's counter list (created on its first call)."""
        try:
            cell: list[int] = self.local.cell
        except AttributeError:
            cell = self._new_cell()
        return cell

    def _new_cell(self) -> list[int]:
        cell = [0] * _CELL_SIZE
        owner = _Owner()
        self.local.cell = cell
        self.local.owner = owner
        with _lock:
            self._slots.append(_Slot(cell, weakref.ref(owner)))
        return cell

    def _delta(self) -> tuple[list[int], list[tuple[_Slot, list[int]]]]:
        """The counts since the last report, summed over threads, and each thread's snapshot."""
        total = [0] * _CELL_SIZE
        snapshots: list[tuple[_Slot, list[int]]] = []
        for slot in self._slots:
            snapshot = list(slot.cell)  # one C-level copy: consistent enough, the next report has the rest
            for index, (now, before) in enumerate(zip(snapshot, slot.reported, strict=True)):
                if now != before:
                    total[index] += now - before
            snapshots.append((slot, snapshot))
        return total, snapshots

    def _forget_finished_threads(self) -> None:
        kept: list[_Slot] = []
        for slot in self._slots:
            if slot.owner() is not None or slot.cell != slot.reported:
                kept.append(slot)
            else:
                self._retired = [a + b for a, b in zip(self._retired, slot.cell, strict=True)]
        self._slots = kept


@dataclasses.dataclass(frozen=True)
class ModelDelta:
    """What one model did in an interval."""

    identity: ModelIdentity
    calls: int
    rows: int
    errors: int
    duration_sum_ms: float
    #: ``len(BOUNDS_MS) + 1`` counts.
    buckets: list[int]


class Collection:
    """The deltas of one report. ``commit()`` once they were delivered; ``release()`` otherwise (the next
    report then covers this interval too)."""

    def __init__(self, deltas: list[ModelDelta], snapshots: list[tuple[_Slot, list[int]]], start_ns: int) -> None:
        self.deltas = deltas
        #: Where this report's interval starts: the end of the last committed one.
        self.start_ns = start_ns
        self._snapshots = snapshots
        self._done = False

    def commit(self, end_ns: int) -> None:
        """The report covering ``(start_ns, end_ns]`` was delivered."""
        global _reported_until_ns
        with _lock:
            if not self._done:
                _reported_until_ns = end_ns
                for slot, snapshot in self._snapshots:
                    slot.reported = snapshot
                for counts in _registry.values():
                    counts._forget_finished_threads()
            self._release()

    def release(self) -> None:
        with _lock:
            self._release()

    def _release(self) -> None:
        global _claimed
        if not self._done:
            self._done = True
            _claimed = False


_lock = threading.Lock()
_registry: dict[ModelIdentity, ModelCounts] = {}
_claimed = False
_reported_until_ns = time.time_ns()


def counts_for(identity: ModelIdentity) -> ModelCounts:
    """The process-wide counters of a model identity (every wrapper of the same identity shares them)."""
    counts = _registry.get(identity)
    if counts is None:
        with _lock:
            counts = _registry.setdefault(identity, ModelCounts(identity))
    return counts


def collect() -> Collection | None:
    """Every model's counts since the last committed report; None when another report is under way."""
    global _claimed
    with _lock:
        if _claimed:
            return None
        _claimed = True
        deltas: list[ModelDelta] = []
        snapshots: list[tuple[_Slot, list[int]]] = []
        for identity, counts in list(_registry.items()):
            total, taken = counts._delta()
            snapshots += taken
            if total[CALLS] or total[ERRORS]:
                deltas.append(
                    ModelDelta(
                        identity,
                        total[CALLS],
                        total[ROWS],
                        total[ERRORS],
                        total[DURATION_NS] / 1e6,
                        total[FIRST_BUCKET:],
                    )
                )
    return Collection(deltas, snapshots, _reported_until_ns)


def _reset_after_fork() -> None:
    """In a child process: the parent's counts are the parent's to report; start from zero."""
    global _lock, _claimed, _reported_until_ns
    _lock = threading.Lock()
    _claimed = False
    _reported_until_ns = time.time_ns()
    for counts in _registry.values():
        counts._retired = [0] * _CELL_SIZE
        for slot in counts._slots:
            slot.cell[:] = [0] * _CELL_SIZE
            slot.reported = [0] * _CELL_SIZE


def totals() -> dict[str, ModelTotals]:
    """Calls, rows and errors of each model since the process started, for ``stats()["models"]``.

    Keyed by model name, with ``@version`` and ``/environment`` appended when set.
    """
    out: dict[str, ModelTotals] = {}
    with _lock:
        for identity, counts in _registry.items():
            key = identity.name + (f"@{identity.version}" if identity.version else "")
            key += f"/{identity.environment}" if identity.environment else ""
            entry = out.setdefault(key, {"calls": 0, "rows": 0, "errors": 0})
            for cell in [counts._retired, *(slot.cell for slot in counts._slots)]:
                entry["calls"] += cell[CALLS]
                entry["rows"] += cell[ROWS]
                entry["errors"] += cell[ERRORS]
    return out


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)
