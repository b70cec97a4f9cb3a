"""Usage counters: API calls and key uses counted in memory, written by the next write transaction.

A read never waits for the writer to count itself: it adds one to memory, and the next write transaction (or
the store's maintenance thread, within a second) writes the sum. ``usage`` adds what this process has counted
but not written yet, so a read sees its own call at once; other processes' calls show once they write them.
"""

from __future__ import annotations

import threading
import time

from sqlalchemy import bindparam, func, select, update

from aither_server.store.core_tables import api_keys, usage
from aither_server.store.engine import Connection, greatest, run, run_many, upsert
from aither_server.store.results import UsageRecord, month_period, period_key

__all__ = ["Counts", "add_usage"]

_u = usage.c
_COUNTERS = ("api_calls", "predictions", "labels", "rejected_spans", "ignored_spans")

#: Once per ingestion request; through ``engine.run`` rather than a string on the driver's own path: 4.7 -> 5.9-6.2 us
#: of CPU a call on SQLite and 60-66 -> 62-66 us on PostgreSQL (``benchmarks/server_usage_bridge.py``, quiet VM).
_ADD_USAGE = upsert(
    usage,
    {name: bindparam(name) for name in ("period", *_COUNTERS)},
    [_u.period],
    lambda new: {name: _u[name] + new[name] for name in _COUNTERS},
)
_READ = select(*(_u[name] for name in _COUNTERS)).where(_u.period == bindparam("period"))


_TOUCH = (
    update(api_keys)
    .where(api_keys.c.id == bindparam("key_id"))
    .values(last_used_ns=greatest(func.coalesce(api_keys.c.last_used_ns, 0), bindparam("used_ns")))
)


def add_usage(
    conn: Connection,
    period: str,
    calls: int,
    predictions: int,
    labels: int,
    rejected_spans: int = 0,
    ignored_spans: int = 0,
) -> None:
    """Add to one month's usage row (commutative: writers on several processes add up)."""
    run(
        conn,
        _ADD_USAGE,
        {
            "period": period,
            "api_calls": calls,
            "predictions": predictions,
            "labels": labels,
            "rejected_spans": rejected_spans,
            "ignored_spans": ignored_spans,
        },
    )


class Counts:
    """The calls and key uses this process counted and has not written yet."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._calls: dict[str, int] = {}
        self._touches: dict[str, int] = {}
        # Calls taken by the open transaction: still counted by read() until it commits. The epoch is odd
        # while a commit moves them into the database, so read() never counts them twice or not at all.
        self._writing: dict[str, int] = {}
        self._epoch = 0

    def pending(self) -> bool:
        return bool(self._calls or self._touches)

    def count_call(self) -> None:
        period = period_key(time.time_ns())
        with self._lock:
            self._calls[period] = self._calls.get(period, 0) + 1

    def touch(self, key_id: str, now_ns: int) -> None:
        with self._lock:
            self._touches[key_id] = now_ns

    def write(self, conn: Connection) -> None:
        """Write the counted calls and key uses; called inside a write transaction."""
        with self._lock:
            calls, self._calls = self._calls, {}
            touches, self._touches = self._touches, {}
            for period, n in calls.items():
                self._writing[period] = self._writing.get(period, 0) + n
        try:
            for period, n in sorted(calls.items()):
                add_usage(conn, period, n, 0, 0)
            run_many(conn, _TOUCH, [{"used_ns": ns, "key_id": key_id} for key_id, ns in sorted(touches.items())])
        except BaseException:
            self.rolled_back()
            with self._lock:
                for key_id, ns in touches.items():
                    self._touches.setdefault(key_id, ns)
            raise

    def rolled_back(self) -> None:
        """The transaction that took the counted calls did not commit: they wait for the next write."""
        with self._lock:
            for period, n in self._writing.items():
                self._calls[period] = self._calls.get(period, 0) + n
            self._writing.clear()

    def commit(self, conn: Connection) -> None:
        """COMMIT the transaction holding the counted calls, which then stop being counted from memory."""
        self._epoch += 1
        try:
            conn.execute("COMMIT")
            with self._lock:
                self._writing.clear()
        finally:
            self._epoch += 1

    def read(self, reader: Connection, now_ns: int) -> UsageRecord:
        """The month of ``now_ns``: the database's counts plus this process's unwritten calls."""
        start, end = month_period(now_ns)
        period = period_key(now_ns)
        while True:
            epoch = self._epoch
            row = run(reader, _READ, {"period": period}).fetchone()
            with self._lock:  # calls counted but not committed yet: reads never wait to count them
                unwritten = self._calls.get(period, 0) + self._writing.get(period, 0)
            if epoch % 2 == 0 and self._epoch == epoch:
                break
            time.sleep(0.001)  # a COMMIT moved calls into the database meanwhile: read again
        calls, preds, labels, rejected, ignored = row if row is not None else (0, 0, 0, 0, 0)
        return UsageRecord(start, end, calls + unwritten, preds, labels, rejected, ignored)
