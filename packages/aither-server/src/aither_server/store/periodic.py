"""A daemon thread that runs one job again and again until stopped (retention's passes, the monitors' cycles):
a job that fails is logged and the next run tries again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import TypeVar

__all__ = ["Periodic"]

_NS = 1_000_000_000
logger = logging.getLogger("aither_server")
_P = TypeVar("_P", bound="Periodic")


class Periodic:
    """Runs ``job(now_ns, until_ns)`` on a thread named ``name``: the first time after ``first_s``, then
    ``interval_s`` after each run ends, or with ``aligned`` at each multiple of ``interval_s`` of the wall clock
    (``until_ns``: the next one; otherwise ``now_ns`` plus the interval). A run that raises is logged at
    ``level`` with ``failed``."""

    def __init__(
        self,
        name: str,
        job: Callable[[int, int], object],
        interval_s: float,
        *,
        failed: str,
        first_s: float = 0.0,
        aligned: bool = False,
        level: int = logging.ERROR,
        join_s: float | None = None,
    ) -> None:
        self._job = job
        self._interval_s = interval_s
        self._interval_ns = int(interval_s * _NS)
        self._failed = failed
        self._first_s = first_s
        self._aligned = aligned
        self._level = level
        self._join_s = join_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self: _P) -> _P:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(self._join_s)

    def _run(self) -> None:
        wait_s = self._first_s
        while not self._stop.wait(wait_s):
            now = time.time_ns()
            until = now - now % self._interval_ns + self._interval_ns if self._aligned else now + self._interval_ns
            try:
                self._job(now, until)
            except Exception:  # a closing store, the database away for a moment: the next run tries again
                logger.log(self._level, self._failed, exc_info=True)
            wait_s = max(0.0, (until - time.time_ns()) / _NS) if self._aligned else self._interval_s
