"""A stopping server never waits on abandoned requests (issue 23): SIGTERM while a client holds a request open
(its body stalled, the body deadline far off) ends the process after the shutdown grace, not when the client
goes."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from otlp_builders import KEY
from processes import free_port, wait_serving


def test_sigterm_ends_the_server_despite_a_stalled_request(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "AITHER_BOOTSTRAP_KEY": KEY}
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(tmp_path / "a.db")]
    proc = subprocess.Popen(
        [*cmd, "--log-level", "warning", "--body-timeout", "600"], env=env, stdout=subprocess.DEVNULL
    )
    stalled = None
    try:
        wait_serving(proc, f"http://127.0.0.1:{port}/healthz")
        stalled = socket.create_connection(("127.0.0.1", port))
        stalled.sendall(
            f"POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {KEY}\r\n"
            "Content-Type: application/x-protobuf\r\nContent-Length: 1000\r\n\r\n0".encode()
        )
        time.sleep(0.5)  # the request is in progress, its body awaited
        proc.terminate()
        proc.wait(timeout=20)  # the grace is 5 s; without one it waits as long as the client does
        assert proc.returncode in (0, -signal.SIGTERM)  # uvicorn re-raises the signal once stopped
    finally:
        if stalled is not None:
            stalled.close()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
