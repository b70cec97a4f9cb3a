"""``aither server`` and ``aither demo`` as a user meets them: run as subprocesses, their output read."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import child_processes, gone
from processes import free_port, wait_serving

AITHER = Path(sys.executable).with_name("aither")


@pytest.fixture
def busy_port() -> Iterator[int]:
    """A port some other program is listening on."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


def _run(cmd: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    environ = {k: v for k, v in os.environ.items() if k not in ("AITHER_BOOTSTRAP_KEY", "AITHER_SERVER_PORT")}
    return subprocess.run(cmd, capture_output=True, text=True, env={**environ, **env}, timeout=120)


def _assert_one_line_naming(result: subprocess.CompletedProcess[str], port: int, *ways_out: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert f"port {port} on 127.0.0.1 is already in use" in line
    for way_out in ways_out:
        assert way_out in line
    assert "http://" not in result.stdout


def test_server_on_a_busy_port_says_so_in_one_line_and_exits_2(tmp_path: Path, busy_port: int) -> None:
    db = tmp_path / "aither.db"
    result = _run([sys.executable, "-m", "aither_server", "--port", str(busy_port), "--db", str(db)])
    _assert_one_line_naming(result, busy_port, "--port N", "AITHER_SERVER_PORT=N")
    assert "export AITHER_API_KEY" not in result.stdout  # no admin key printed for a server that never ran
    assert not db.exists()


def test_the_port_variable_is_used_and_named_when_busy(tmp_path: Path, busy_port: int) -> None:
    result = _run(
        [sys.executable, "-m", "aither_server", "--db", str(tmp_path / "a.db")], AITHER_SERVER_PORT=str(busy_port)
    )
    _assert_one_line_naming(result, busy_port, "AITHER_SERVER_PORT=N")


def test_an_in_flight_cap_below_one_request_is_refused_in_one_line(tmp_path: Path) -> None:
    db = tmp_path / "a.db"
    result = _run([sys.executable, "-m", "aither_server", "--db", str(db), "--max-inflight-mb", "1"])
    assert result.returncode == 2
    assert result.stderr.strip().startswith("aither server: --max-inflight-mb: the in-flight cap must hold")
    assert not db.exists()


def test_a_bad_port_variable_is_one_line_too(tmp_path: Path) -> None:
    result = _run([sys.executable, "-m", "aither_server", "--db", str(tmp_path / "a.db")], AITHER_SERVER_PORT="http")
    assert result.returncode == 2
    assert result.stderr.strip() == "aither server: AITHER_SERVER_PORT: not a port number: 'http'"


@pytest.mark.skipif(not AITHER.exists(), reason="the aither command is not installed beside this Python")
def test_demo_on_a_busy_port_says_so_in_one_line_and_exits_2(tmp_path: Path, busy_port: int) -> None:
    db = tmp_path / "demo.db"
    result = _run([str(AITHER), "demo", "--port", str(busy_port), "--db", str(db)])
    _assert_one_line_naming(result, busy_port, "--port N")
    assert not db.exists()


def test_no_install_advice_fetches_the_unrelated_aither_from_the_package_index() -> None:
    # `pip install 'aither[server]'` installs someone else's project: advice must name the folders.
    package = Path(__file__).resolve().parents[1]
    wrong = re.compile(r"""pip install\s+(-U\s+)?['"]?aither(\[[^\]]*\])?['"]?(\s|$)""")
    offenders = [
        f"{path.relative_to(package)}: {line.strip()}"
        for path in [*package.rglob("*.py"), *package.rglob("*.md")]
        if path.name != Path(__file__).name
        for line in path.read_text(encoding="utf-8").splitlines()
        if wrong.search(line)
    ]
    assert offenders == []


def test_ctrl_c_stops_the_server_and_its_drift_process_quietly(tmp_path: Path) -> None:
    # Ctrl-C in a terminal signals the whole process group: the server's drift process too. The server stops
    # it after the last merge; neither prints a traceback, nor the warning of a drift process that died.
    port = free_port()
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", str(tmp_path / "a.db")]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_serving(server, f"http://127.0.0.1:{port}/healthz")
        deadline = time.monotonic() + 60
        children: dict[int, str] = {}
        while not any("multiprocessing" in c for c in children.values()) and time.monotonic() < deadline:
            children = child_processes(server.pid)
            time.sleep(0.1)
        assert any("multiprocessing" in command for command in children.values())
        os.killpg(server.pid, signal.SIGINT)
        out, err = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert server.returncode == 0, err
    assert "Traceback" not in err and "drift process stopped" not in err, err
    assert f"Dashboard: http://127.0.0.1:{port}/" in out  # where to point a browser, said at start
    assert gone(children)


@pytest.mark.parametrize("url", ["mysql://u@h/x", "http://h/x", "sqlite://relative.db"])
def test_a_db_that_is_no_path_sqlite_or_postgresql_url_exits_2_in_one_line(tmp_path: Path, url: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "aither_server", "--db", url], capture_output=True, text=True, cwd=tmp_path, timeout=120
    )
    assert result.returncode == 2, result
    (line,) = result.stderr.strip().splitlines()
    scheme = url.split("://")[0]
    assert line == f"aither server: --db takes a path, sqlite:///path or postgresql://...; {scheme}:// is not supported"
    assert result.stdout == "" and list(tmp_path.iterdir()) == []  # no file named after the URL


def test_a_sqlite_url_in_a_missing_folder_creates_it_and_says_so(tmp_path: Path) -> None:
    port = free_port()
    db = tmp_path / "new" / "folder" / "a.db"
    cmd = [sys.executable, "-m", "aither_server", "--port", str(port), "--db", f"sqlite:///{db}"]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        wait_serving(server, f"http://127.0.0.1:{port}/healthz")
        assert db.is_file()
        os.killpg(server.pid, signal.SIGINT)
        out, _ = server.communicate(timeout=60)
    finally:
        if server.poll() is None:
            server.kill()
            server.communicate()
    assert out.splitlines()[0] == f"aither server: created the folder {db.parent} for the database", out
    assert f"(database: {db})" in out
