"""The per-model aggregates report: every ``flush_interval`` (and at each flush and close) what the calling
threads counted since the last report, and the drops by model and reason, go to ``/v1/metrics``.

A report that fails is not lost: the aggregates are committed, the drops marked reported and the profile-only
models' sketches (``_sketches.py``) cleared only once the server accepted it, so the next report covers its
interval too. Whether and when a report is sent is decided
here, in :meth:`MetricsReport.due` and :meth:`MetricsReport.send`.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Mapping

from .. import _aggregates
from .._records import ModelIdentity
from .._sketches import ProfileSketches
from ._delivery import OK, Delivery
from ._metric_encoder import MetricEncoder

__all__ = ["MetricsReport"]


class MetricsReport:
    """Owns the drop counts by model and reason (updated under the exporter's ``lock``) and sends the reports."""

    def __init__(
        self,
        resource: Mapping[str, str],
        delivery: Delivery,
        lock: threading.Lock,
        *,
        interval: float,
        clock: Callable[[], float],
        sketches: ProfileSketches | None = None,
    ) -> None:
        self._sketches = sketches
        self._encoder = MetricEncoder(resource)
        self._delivery = delivery
        self._lock = lock
        self._interval = interval
        self._clock = clock
        self.next_at = clock() + interval
        #: Predictions dropped, by model and reason (the exporter adds to it holding ``lock``).
        self.drops: collections.Counter[tuple[ModelIdentity, str]] = collections.Counter()
        self._drops_reported: dict[tuple[ModelIdentity, str], int] = {}
        self.reports = 0
        #: Reports let go because the endpoint answered 404/405: a backend that takes no OTLP metrics.
        self.skipped = 0
        self._refused = False

    def due(self, forced: bool) -> bool:
        """Whether a report is due: ``forced`` (a flush or close), or the interval passed. If so the next interval
        starts now."""
        now = self._clock()
        if not forced and now < self.next_at:
            return False
        self.next_at = now + self._interval
        return True

    def send(self, flush_deadline: float | None) -> None:
        """Send what changed since the last accepted report, if anything did."""
        collection = _aggregates.collect()
        sketches = self._sketches
        profiles = sketches.collect() if sketches is not None else []
        if collection is None and not profiles:
            return
        if self._refused:  # the counts are let go, and counted, so the next report does not grow forever
            end_ns = time.time_ns()
            if collection is not None:
                collection.commit(end_ns)  # commit releases the collection too
            if sketches is not None:
                sketches.commit(end_ns)
            with self._lock:
                self.skipped += 1
            return
        try:
            with self._lock:
                drops = {
                    key: count - self._drops_reported.get(key, 0)
                    for key, count in self.drops.items()
                    if count != self._drops_reported.get(key, 0)
                }
                snapshot = dict(self.drops)
            end_ns = time.time_ns()
            deltas = collection.deltas if collection is not None else []
            start_ns = collection.start_ns if collection is not None else end_ns
            # The sketches' interval is their own: a batch is profiled on the worker after its call was counted.
            profile_start = min(sketches.start_ns, end_ns - 1) if sketches is not None else 0
            body = self._encoder.request(deltas, drops, start_ns, end_ns, profiles, profile_start)
            if body is None:
                if collection is not None:
                    collection.commit(end_ns)
                return
            endpoint = self._delivery.metrics
            payload = endpoint.encode(body, _no_pause)
            outcome = self._delivery.post(endpoint, payload, flush_deadline, "metrics")
            if outcome == OK:
                if collection is not None:
                    collection.commit(end_ns)
                if sketches is not None and profiles:
                    sketches.commit(end_ns)
                with self._lock:
                    self._drops_reported = snapshot
                    self.reports += 1
            elif outcome in ("http_404", "http_405"):
                self._refused = True
                self._delivery.log.once(
                    "metrics",
                    "aither: %s answered %s: this backend takes no OTLP metrics, so no more are sent to it "
                    "(spans still are; stats()['metric_reports_skipped'] counts the reports let go)",
                    endpoint.url,
                    outcome.replace("http_", "HTTP "),
                )
        finally:
            if collection is not None:
                collection.release()
            if sketches is not None and profiles:
                sketches.release()


def _no_pause() -> None:
    """A metrics report is small (a few KiB per model): compressed in one go."""
