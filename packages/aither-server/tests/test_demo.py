"""``aither demo`` run twice on one database, as a user would: one kept key, this run beside all runs, and
closing hints that run as printed."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aither_server import Store
from aither_server.demo import MODEL_NAME
from aither_server.drift.query import data_quality
from aither_server.drift.store import DriftStore
from aither_server.monitors.store import MonitorStore

AITHER = Path(sys.executable).with_name("aither")


def _demo(db: Path) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("AITHER_BOOTSTRAP_KEY", "AITHER_API_KEY")}
    result = subprocess.run(
        [str(AITHER), "demo", "--db", str(db)], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _figures(out: str, name: str) -> tuple[str, str]:
    """(this run, all runs) of one line of the last summary."""
    *_, line = (line for line in out.splitlines() if line.strip().startswith(name))
    this_run, all_runs = line.split()[-2:]
    return this_run, all_runs


@pytest.mark.skipif(not AITHER.exists(), reason="the aither command is not installed beside this Python")
def test_reruns_reuse_one_key_show_this_run_beside_all_runs_and_print_runnable_hints(tmp_path: Path) -> None:
    db = tmp_path / "my data" / "aither.db"
    store = Store(db)
    store.bootstrap()  # an existing database, whose admin key the demo cannot read back
    store.close()

    first = _demo(db)
    second = _demo(db)
    (made,) = re.findall(r"The demo made an API key named 'demo', with read and write scopes: (aith_\S+)", first)
    (reused,) = re.findall(r"The demo reuses its API key named 'demo', with read and write scopes: (aith_\S+)", second)
    assert reused == made
    store = Store(db)
    try:
        demo_keys = [k for k in store.list_keys() if k.name == "demo"]
    finally:
        store.close()
    assert [k.revoked_ns for k in demo_keys] == [None]
    # The dashboard's address, and the demo monitors (kept across runs), evaluated: accuracy and drift fire them.
    for out in (first, second):
        assert re.search(r"Dashboard: http://127\.0\.0\.1:\d+/ ", out), out
        assert "Monitor 'demo accuracy': accuracy < 0.97 over 1h" in out
        assert re.search(r"is ALERT \(accuracy 9\d\.\d%\)", out), out
        # The drift of the shifted feature fires its monitor too (a Jensen-Shannon distance over 0.1).
        assert "Monitor 'demo drift': drift:mean radius >= 0.1 over 1h" in out
        assert re.search(r"is ALERT \(drift:mean radius \S+\)", out), out
    store = Store(db)
    try:
        monitors = MonitorStore(store.engine)
        assert [m.name for m in monitors.all()] == ["demo accuracy", "demo drift"]
        # The traffic names its columns as the reference does: no phantom columns "0".."29".
        quality = data_quality(DriftStore(store.engine), MODEL_NAME)
        assert quality["new_columns"] == [] and quality["missing_columns"] == []
        assert "mean radius" in {f["name"] for f in quality["features"]} and len(quality["features"]) == 30
    finally:
        store.close()

    this_run, all_runs = _figures(second, "calls")
    assert int(all_runs) == 2 * int(this_run) > 0
    assert _figures(second, "labelled rows")[0] == _figures(first, "labelled rows")[0]
    # The drift report names the shifted feature and no other, on each run (the window is the run's own).
    for out in (first, second):
        assert "30 features compared, 1 drifted" in out
        assert re.findall(r"^  drifted: (.+) \(", out, flags=re.MULTILINE) == ["mean radius"]

    (hint,) = [line.strip() for line in second.splitlines() if "--db" in line]
    command = shlex.split(hint)
    assert Path(command[0]).is_file()  # runnable without an activated virtual environment
    assert command[command.index("--db") + 1] == str(db)  # the path with its space, quoted
    # The monitors' links point at the server that command starts.
    links = re.findall(r"see (http://[^/]+)/monitors/", second)
    assert links and set(links) == {f"http://127.0.0.1:{command[command.index('--port') + 1]}"}


def test_the_kept_key_is_made_anew_once_revoked_and_the_old_ones_are_revoked(tmp_path: Path) -> None:
    store = Store(tmp_path / "a.db")
    try:
        store.bootstrap()
        key, made = store.kept_key("demo", ["read", "write"])
        assert made
        assert store.kept_key("demo", ["read", "write"]) == (key, False)
        (record,) = [k for k in store.list_keys() if k.name == "demo"]
        store.revoke_key(record.id)
        new_key, made = store.kept_key("demo", ["read", "write"])
        assert made and new_key != key
        assert store.authenticate(new_key) is not None
        assert [k.revoked_ns is None for k in store.list_keys() if k.name == "demo"] == [False, True]
    finally:
        store.close()
