"""What importing aither-hf costs: nothing from transformers until a pipeline is wrapped."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_importing_aither_hf_and_wrapping_other_models_does_not_import_transformers() -> None:
    result = _run(
        """
        import sys
        import aither, aither_hf
        assert "transformers" not in sys.modules, "imported by import aither_hf"
        tracked = aither.wrap(lambda x: x, name="f")
        tracked(1)
        assert "transformers" not in sys.modules, "imported by wrapping a function"
        print("ok")
        """
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_missing_transformers_raises_missing_dependency_error_naming_the_extra() -> None:
    result = _run(
        """
        import sys
        sys.modules["transformers"] = None  # as if it were not installed
        import aither, aither_hf
        try:
            aither_hf.wrap(object(), name="x")
        except aither.MissingDependencyError as exc:
            print(exc)
        """
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'aither[hf]'" in result.stdout
