"""Checks every plugin's tests make in a fresh interpreter: importing it imports no framework, and a missing
framework raises :class:`aither.MissingDependencyError`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

__all__ = ["assert_imports_no_framework", "missing_framework_error", "run_python"]


def run_python(code: str, *, timeout: float = 120, **env: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (dedented) in a fresh interpreter of this Python, with ``env`` added to the environment."""
    environment = {**os.environ, **env}
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=timeout, env=environment
    )


def _last_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert lines, f"no output; stderr: {result.stderr[-3000:]}"
    return lines[-1]


def assert_imports_no_framework(plugin: str, frameworks: Sequence[str], *, then: str = "") -> None:
    """In a fresh interpreter, ``import aither, <plugin>`` imports none of ``frameworks``; nor does ``then``.

    ``then`` is more code run afterwards (``"aither.wrap(lambda x: x, name='f')(1)"``), which may use ``aither``
    and the plugin module.
    """
    code = (
        "import json, sys\n"
        f"import aither, {plugin}\n"
        f"frameworks = {list(frameworks)!r}\n"
        "loaded = [[name for name in frameworks if name in sys.modules]]\n"
        f"{textwrap.dedent(then)}\n"
        "loaded.append([name for name in frameworks if name in sys.modules])\n"
        "print(json.dumps(loaded))\n"
    )
    after_import, after_then = json.loads(_last_line(run_python(code)))
    assert after_import == [], f"import {plugin} imported {after_import}"
    assert after_then == [], f"{then.strip()!r} imported {after_then}"


def missing_framework_error(plugin: str, frameworks: Sequence[str], call: str) -> str:
    """The message of the :class:`aither.MissingDependencyError` that ``call`` raises without ``frameworks``.

    In a fresh interpreter where ``frameworks`` cannot be imported, ``import aither, <plugin>`` succeeds and
    ``call`` (code using them) raises ``MissingDependencyError``, which is an ``ImportError``; asserted here.
    """
    code = (
        "import json, sys\n"
        f"for name in {list(frameworks)!r}:\n"
        "    sys.modules[name] = None  # as if it were not installed\n"
        f"import aither, {plugin}\n"
        "try:\n"
        f"{textwrap.indent(textwrap.dedent(call).strip(), '    ')}\n"
        "except aither.MissingDependencyError as exc:\n"
        "    print(json.dumps([isinstance(exc, ImportError), str(exc)]))\n"
        "else:\n"
        "    print(json.dumps(None))\n"
    )
    raised = json.loads(_last_line(run_python(code)))
    assert raised is not None, f"{call.strip()!r} did not raise aither.MissingDependencyError"
    is_import_error, message = raised
    assert is_import_error, "MissingDependencyError must be an ImportError"
    return str(message)
