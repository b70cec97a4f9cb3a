"""The periodic thread retention and the monitors run on: a failing run is logged and the next one still comes,
an aligned run is told the end of its wall-clock period, and stop ends the thread."""

from __future__ import annotations

import logging
import threading

import pytest

from aither_server.store.periodic import Periodic

_NS = 1_000_000_000


def test_a_failing_run_is_logged_and_the_next_run_still_comes(caplog: pytest.LogCaptureFixture) -> None:
    runs: list[tuple[int, int]] = []
    second = threading.Event()

    def job(now_ns: int, until_ns: int) -> None:
        runs.append((now_ns, until_ns))
        if len(runs) == 1:
            raise RuntimeError("the database is away")
        second.set()

    with caplog.at_level(logging.WARNING, logger="aither_server"):
        periodic = Periodic("test-periodic", job, 0.01, failed="test pass failed", level=logging.WARNING).start()
        try:
            assert second.wait(30)
        finally:
            periodic.stop()
    failures = [r for r in caplog.records if r.getMessage() == "test pass failed"]
    assert failures[0].levelno == logging.WARNING
    assert failures[0].exc_info is not None and isinstance(failures[0].exc_info[1], RuntimeError)
    assert all(until - now == _NS // 100 for now, until in runs)


def test_an_aligned_run_is_told_the_next_multiple_of_the_interval() -> None:
    runs: list[tuple[int, int]] = []
    ran = threading.Event()

    def job(now_ns: int, until_ns: int) -> None:
        runs.append((now_ns, until_ns))
        ran.set()

    periodic = Periodic("test-aligned", job, 3600.0, failed="never", aligned=True).start()
    try:
        assert ran.wait(30)
    finally:
        periodic.stop()
    ((now, until),) = runs
    assert until % (3600 * _NS) == 0 and now < until <= now + 3600 * _NS


def test_stop_ends_the_thread_even_during_a_long_first_wait() -> None:
    calls: list[int] = []
    periodic = Periodic("test-stop", lambda now, _until: calls.append(now), 1.0, failed="never", first_s=3600.0)
    periodic.start().stop()
    assert not any(t.name == "test-stop" for t in threading.enumerate())
    assert calls == []


def test_stopping_a_thread_never_started_is_harmless() -> None:
    Periodic("test-unstarted", lambda _now, _until: None, 1.0, failed="never").stop()
