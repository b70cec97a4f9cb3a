from __future__ import annotations

import os

# No model or tokenizer is ever downloaded: every pipeline here is built from a random tiny config.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""
