"""docs/privacy.md's server examples run as written against a real server (its URL and admin key put in)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from aither.testing import live_server
from aither.testing._server import ADMIN_KEY

DOC = Path(__file__).resolve().parents[1] / "docs" / "privacy.md"


def test_the_server_sections_examples_run_and_are_audited(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AITHER_HASH_KEY", "docs-key")  # the server's, as the example says
    text = DOC.read_text()
    section = text[text.index("## What the server enforces") : text.index("## What the controls do not cover")]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == 2
    with live_server(tmp_path) as server:
        for code in blocks:
            code = code.replace("http://127.0.0.1:4318", server.url).replace("aith_your_admin_key", ADMIN_KEY)
            exec(compile(code, str(DOC), "exec"), {})
        entries = server.get("/api/v1/audit-log")["data"]
    assert [e["action"] for e in entries] == ["erasure", "policy.set", "policy.set"]
    assert entries[0]["detail"]["predictions"] == 2
