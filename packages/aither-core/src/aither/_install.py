"""Install advice that works where the user is: the one place that writes a command to install aither's own
packages.

None of aither's distributions is on the package index, and an unrelated project owns the name ``aither``
there: ``pip install 'aither[server]'`` would install that project over this one. So the advice is the path of
the package in the clone this code runs from, when there is one, and otherwise the form to run in a clone.
"""

from __future__ import annotations

import shlex
from pathlib import Path

__all__ = ["PLUGIN_FOR_FRAMEWORK", "install_command"]

#: The aither plugin that wraps models of each framework (by the top-level module of the model's class).
PLUGIN_FOR_FRAMEWORK = {
    "sklearn": "aither-sklearn",
    "xgboost": "aither-sklearn",
    "lightgbm": "aither-sklearn",
    "catboost": "aither-sklearn",
    "torch": "aither-torch",
    "keras": "aither-tf",
    "tensorflow": "aither-tf",
    "tf_keras": "aither-tf",
    "transformers": "aither-hf",
    "tinygrad": "aither-tinygrad",
}


def _clone_folder(distribution: str) -> Path | None:
    """``packages/<distribution>`` of the clone aither-core runs from (an editable install), if any."""
    # .../packages/aither-core/src/aither/_install.py: the clone's root is five folders up.
    here = Path(__file__).resolve()
    if len(here.parents) < 5:
        return None
    folder = here.parents[4] / "packages" / distribution
    return folder if (folder / "pyproject.toml").is_file() else None


def install_command(distribution: str) -> str:
    """How to install one of aither's distributions (``aither-server``, ``aither-torch``...), here."""
    folder = _clone_folder(distribution)
    if folder is not None:
        return f"pip install {shlex.quote(str(folder))}"
    return (
        f"pip install ./packages/{distribution} in a clone of the aither repository "
        "(aither's packages are not on the package index, where the name 'aither' belongs to another project)"
    )
