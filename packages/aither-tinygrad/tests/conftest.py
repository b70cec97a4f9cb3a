from __future__ import annotations

import atexit
import os
import pathlib
import shutil
import tempfile

import pytest

# tinygrad's CPU device compiles kernels with $CC (default `clang`); Debian's package installs `clang-14` only.
# Both are read when tinygrad is imported, so set them before any test module imports it.
if not os.environ.get("CC") and shutil.which("clang") is None and shutil.which("clang-14") is not None:
    os.environ["CC"] = "clang-14"
# A fresh kernel cache per run: no state from other runs or users, nothing written to ~/.cache.
_CACHE_FOLDER = tempfile.mkdtemp(prefix="aither-tinygrad-")
atexit.register(shutil.rmtree, _CACHE_FOLDER, ignore_errors=True)  # the test run leaves nothing in /tmp
os.environ["CACHEDB"] = str(pathlib.Path(_CACHE_FOLDER) / "cache.db")


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""
