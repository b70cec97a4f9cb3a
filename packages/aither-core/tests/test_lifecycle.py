"""Process lifecycle: exit deadlines with a dead backend, and fork safety."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator

import pytest

import aither
from aither.testing import OTLPReceiver


@pytest.fixture
def black_hole() -> Iterator[str]:
    """A port that accepts TCP connections (kernel backlog) but never answers: requests hang until timeout."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(64)
    yield f"http://127.0.0.1:{server.getsockname()[1]}"
    server.close()


def _run(code: str, env_extra: dict[str, str] | None = None) -> tuple[float, subprocess.CompletedProcess[str]]:
    env = {**os.environ, **(env_extra or {})}
    env.pop("PYTEST_CURRENT_TEST", None)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=env, timeout=60
    )
    return time.monotonic() - started, result


@pytest.mark.parametrize("how", ["close", "atexit"])
def test_a_black_holed_backend_does_not_hang_exit(black_hole: str, how: str) -> None:
    code = f"""
        import time, aither
        aither.init(api_key="aith_x", base_url={black_hole!r}, flush_interval=0.05, export_timeout=30,
                    max_retry_time=60, exit_timeout=2.0)
        for i in range(100):
            aither.log_prediction("m", {{"i": i}}, i)
        time.sleep(0.2)  # the worker is now blocked on the black hole
        started = time.monotonic()
        if {how == "close"!r}:
            aither.close(timeout=2.0)
            print("closed after", round(time.monotonic() - started, 2))
    """
    # Interpreter start-up and the imports are not part of the promise: measure the same script doing nothing.
    baseline, _ = _run("import time, aither; time.sleep(0.2)")
    elapsed, result = _run(code)
    assert result.returncode == 0, result.stderr
    assert elapsed - baseline < 2.0 + 1.0 + 1.0, (elapsed, baseline, result.stdout)


def test_exit_flushes_what_is_queued_through_atexit() -> None:
    with OTLPReceiver() as receiver:
        code = f"""
            import aither
            aither.init(api_key="aith_x", base_url={receiver.url!r}, flush_interval=60)
            ids = [aither.log_prediction("m", {{"i": i}}, i) for i in range(7)]
            print(",".join(ids))
        """
        _, result = _run(code)
        assert result.returncode == 0, result.stderr
        ids = result.stdout.strip().split(",")
        assert sorted(s.trace_id for s in receiver.wait_for_spans(7, timeout=5)) == sorted(ids)


def test_a_dead_backend_at_exit_logs_no_traceback(black_hole: str) -> None:
    _, result = _run(f"""
        import aither
        aither.init(api_key="aith_x", base_url={black_hole!r}, exit_timeout=0.5)
        aither.log_prediction("m", 1, 1)
    """)
    assert result.returncode == 0
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
def test_a_forked_child_sends_its_own_records_over_its_own_connection() -> None:
    with OTLPReceiver() as receiver:
        code = f"""
            import os, aither
            aither.init(api_key="aith_x", base_url={receiver.url!r}, flush_interval=0.05)
            parent_ids = [aither.log_prediction("parent", {{"i": i}}, i) for i in range(5)]
            assert aither.flush(5)
            # Queue more in the parent but do not flush them before forking.
            aither.init(api_key="aith_x", base_url={receiver.url!r}, flush_interval=60)
            pending = [aither.log_prediction("parent_pending", {{"i": i}}, i) for i in range(3)]
            pid = os.fork()
            if pid == 0:
                child_ids = [aither.log_prediction("child", {{"i": i}}, i) for i in range(4)]
                ok = aither.flush(5)
                stats = aither.stats()
                print("CHILD", ok, stats["queued"], stats["exported"], ",".join(child_ids), flush=True)
                os._exit(0)
            os.waitpid(pid, 0)
            assert aither.flush(5)
            print("PARENT", ",".join(parent_ids + pending), flush=True)
        """
        _, result = _run(code)
        assert result.returncode == 0, result.stderr
        lines = dict(line.split(" ", 1) for line in result.stdout.strip().splitlines())
        ok, queued, exported, child_ids = lines["CHILD"].split()
        assert (ok, queued, exported) == ("True", "4", "4")  # the child's queue started empty
        parent_ids = lines["PARENT"].split(",")
        spans = receiver.wait_for_spans(12)
        names = [s.model_name for s in spans]
        assert names.count("parent") == 5
        assert names.count("parent_pending") == 3  # sent once, by the parent only
        assert names.count("child") == 4
        assert sorted(s.trace_id for s in spans) == sorted(parent_ids + child_ids.split(","))
        ports = {
            name: {r.client for r in receiver.requests if r.spans[0].model_name == name} for name in ("parent", "child")
        }
        assert ports["child"].isdisjoint(ports["parent"])  # the child opened its own connection


def test_closing_twice_and_predicting_after_close_never_raise() -> None:
    aither.init(base_url="http://127.0.0.1:9", max_retry_time=0)
    aither.close(timeout=0.5)
    aither.close(timeout=0.5)
    trace_id = aither.log_prediction("m", {"x": 1}, 1)
    assert len(trace_id) == 32
    assert aither.stats()["dropped"].get("shutdown") == 1
