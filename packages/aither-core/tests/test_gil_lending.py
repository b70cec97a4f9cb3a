"""The calling threads lend a starving worker the GIL; a worker that wakes on time is never lent it; no lending
where it cannot help (free-threaded, gevent, an event loop's thread) or when switched off."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

import aither
from aither import ConfigurationError
from aither._config import load_settings
from aither._export._gil_lending import GRACE, LATE, MAX_BACKOFF, GilLending, lending_wanted
from aither.testing import OTLPReceiver

INFINITY = float("inf")


@pytest.fixture
def blocked_worker() -> Iterator[GilLending]:
    """A worker thread that waits on an event, as the exporter's waits on a response: it never runs."""
    lending = GilLending()
    registered, release = threading.Event(), threading.Event()

    def worker() -> None:
        lending.worker_started()
        registered.set()
        release.wait()

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    registered.wait()
    clock = time.pthread_getcpuclockid(thread.ident or 0)
    while True:  # until it is in its wait: its CPU clock stands still
        before = time.clock_gettime_ns(clock)
        time.sleep(0.01)
        if time.clock_gettime_ns(clock) == before:
            break
    try:
        yield lending
    finally:
        release.set()
        thread.join()


def test_a_worker_that_wakes_on_time_is_never_lent_the_gil() -> None:
    lending = GilLending()
    assert lending.ready_at == INFINITY  # no worker yet
    now = time.monotonic()
    lending.idle(now + 1.0)
    assert lending.ready_at == pytest.approx(now + 1.0 + LATE)  # only once it is late for its timer
    lending.woken(now)
    assert lending.ready_at == pytest.approx(now + LATE)  # or late after a caller woke it
    lending.busy()
    assert lending.ready_at == INFINITY  # sending, and not starving: callers never lend
    lending.woken(time.monotonic())  # waking a busy worker changes nothing
    assert lending.ready_at == INFINITY
    assert lending.lends == 0


def test_a_late_worker_is_taken_for_starving_and_lent_the_gil_at_once_from_then_on(
    blocked_worker: GilLending,
) -> None:
    lending = blocked_worker
    lending.idle(time.monotonic() - 1.0)  # its timer passed a second ago and it has not run
    now = time.monotonic()
    assert now >= lending.ready_at
    lending.lend(now)
    assert lending.lends == 1
    # While starving: lent as soon as it is woken, and while busy once it has not run for GRACE.
    lending.idle(time.monotonic() + 1.0)
    lending.woken(now := time.monotonic())
    assert lending.ready_at == now
    lending.busy()
    assert lending.ready_at <= time.monotonic() + GRACE


def test_lends_to_a_worker_waiting_on_the_network_back_off_to_a_bound(blocked_worker: GilLending) -> None:
    lending = blocked_worker
    lending.idle(time.monotonic() - 1.0)
    lending.lend(time.monotonic())
    lending.busy()  # starving from here on
    backoffs = []
    for _ in range(12):
        before = time.monotonic()
        lending.lend(before)
        backoffs.append(lending._backoff)
        assert before + lending._backoff <= lending.ready_at <= time.monotonic() + lending._backoff
    assert lending.misses == 13  # the blocked worker never ran
    expected = [min(GRACE * 2**n, MAX_BACKOFF) for n in range(1, 13)]
    assert backoffs == pytest.approx(expected)


def test_a_lend_to_a_worker_that_runs_lets_it_run_and_keeps_lending_soon() -> None:
    lending = GilLending()
    stop = threading.Event()
    registered = threading.Event()

    def spinning_worker() -> None:  # wants the GIL all the time, as a worker returning from a socket call
        lending.worker_started()
        registered.set()
        while not stop.is_set():
            pass

    thread = threading.Thread(target=spinning_worker, daemon=True)
    thread.start()
    registered.wait()
    try:
        lending.idle(time.monotonic() - 1.0)
        for _ in range(1000):  # the scheduler decides when the worker runs: a few lends at most, on a busy machine
            lending.lend(time.monotonic())
            if lending.misses < lending.lends:
                break
        assert lending.misses < lending.lends, "the worker never ran while lent the GIL"
    finally:
        stop.set()
        thread.join()
    assert lending.ready_at <= time.monotonic() + GRACE


RECEIVER = """
import sys
from aither.testing import OTLPReceiver
with OTLPReceiver() as receiver:
    print(receiver.url, flush=True)
    sys.stdin.read()
"""


def test_a_numpy_bound_caller_gets_its_spans_out_while_it_runs() -> None:
    """scikit-learn's predict releases the GIL briefly several times per call: without the lends, the worker
    of a loop of such calls waited seconds for the GIL before its first request. With them the first batch
    is answered within a few hundred calls (at most 5,000 here, whatever the machine's speed)."""
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 10)), rng.integers(0, 2, 200)
    fitted = LogisticRegression().fit(X, y)
    receiver = subprocess.Popen(
        [sys.executable, "-c", RECEIVER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert receiver.stdout is not None
        url = receiver.stdout.readline().strip()
        aither.init(api_key="aith_busy", base_url=url, batch_size=100, flush_interval=1.0)
        model = aither.wrap(fitted, name="busy")
        x = X[:1]
        calls_before_delivery = None
        for call in range(5000):
            model.predict(x)
            if call % 50 == 0 and aither.stats()["exported"] > 0:
                calls_before_delivery = call
                break
        assert calls_before_delivery is not None, aither.stats()
        assert aither.flush(30)
    finally:
        aither.close()
        receiver.communicate("", timeout=30)


# A caller that never gives the GIL up, on a quiet core: the worker only runs when the caller lends it the GIL.
# On a quiet machine numpy's brief releases keep resetting CPython's switch timer, so that a caller holds the GIL
# for seconds; on a loaded one its preemptions force switches now and then. The long switch interval stands for
# the quiet core, so that the machine's load cannot do the lending's work.
BUSY_CALLER = """
import json, sys
import aither

sys.setswitchinterval(30.0)
aither.init(api_key="aith_busy", base_url=sys.argv[1], max_queue_size=400, batch_size=50)

@aither.track("busy")
def predict(n):
    return sum(range(n))

for _ in range(4000):
    predict(3000)
aither.flush(60)
stats = aither.stats()
lending = aither._client.get_client().exporter._lending
print(json.dumps({
    "exported": stats["exported"], "dropped": stats["dropped"], "lends": lending.lends, "pauses": lending.pauses
}))
"""


def _busy_caller(receiver_url: str, **env: str) -> dict[str, object]:
    """Run :data:`BUSY_CALLER` (4,000 calls, a queue of 400) in a subprocess; what it delivered."""
    done = subprocess.run(
        [sys.executable, "-c", BUSY_CALLER, receiver_url],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_a_caller_that_never_gives_up_the_gil_delivers_every_prediction_by_lending() -> None:
    with OTLPReceiver() as receiver:
        result = _busy_caller(receiver.url)
    assert result["lends"] != 0
    # Without the lends: the first 400, and 1 in k of the rest. (At least 90%, not all: a receiver slowed by the
    # machine's load may let the queue pass its high-water mark for a moment.)
    exported = result["exported"]
    assert isinstance(exported, int) and exported >= 3600, result
    # Lent the GIL, the worker gave it back between slices of its work instead of keeping it for its whole batch.
    assert result["pauses"] != 0


def test_with_lending_switched_off_such_a_caller_keeps_fewer_spans_and_never_sleeps() -> None:
    with OTLPReceiver() as receiver:
        result = _busy_caller(receiver.url, AITHER_GIL_LENDING="0")
    assert result["lends"] == 0
    exported = result["exported"]
    assert isinstance(exported, int) and exported < 2000, result
    dropped = result["dropped"]
    assert isinstance(dropped, dict) and dropped["sampled"] > 0  # counted, and sampled uniformly


def test_no_lending_where_it_cannot_help(monkeypatch: pytest.MonkeyPatch) -> None:
    assert lending_wanted(True)
    assert not lending_wanted(False)  # gil_lending=False / AITHER_GIL_LENDING=0
    monkeypatch.setattr(sys, "_is_gil_enabled", lambda: False, raising=False)  # a free-threaded build
    assert not lending_wanted(True)


def test_no_lending_under_gevent() -> None:
    script = (
        "from gevent import monkey; monkey.patch_all()\n"
        "import aither\n"
        "aither.init(api_key='aith_green', base_url='http://127.0.0.1:9')\n"
        "print(aither._client.get_client().exporter._lending.enabled)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_a_caller_on_a_running_event_loop_never_sleeps_to_lend(blocked_worker: GilLending) -> None:
    lending = blocked_worker
    lending.idle(time.monotonic() - 1.0)  # a late worker: any other caller would lend now

    async def on_the_loop() -> None:
        now = time.monotonic()
        assert now >= lending.ready_at
        lending.lend(now)

    asyncio.run(on_the_loop())
    assert lending.lends == 0
    assert lending.ready_at > time.monotonic()  # and it does not look again at every call
    lending.lend(time.monotonic())  # off the loop, the same caller lends
    assert lending.lends == 1


def test_the_switch_is_an_option_and_a_variable() -> None:
    assert load_settings({}).gil_lending
    assert not load_settings({"AITHER_GIL_LENDING": "0"}).gil_lending
    assert load_settings({"AITHER_GIL_LENDING": "0"}, gil_lending=True).gil_lending
    assert not load_settings({}, gil_lending=False).gil_lending
    with pytest.raises(ConfigurationError):
        load_settings({}, gil_lending="no")
