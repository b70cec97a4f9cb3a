from __future__ import annotations

import pytest
import torch
from torch_helpers import make_mlp


@pytest.fixture
def mlp() -> torch.nn.Sequential:
    return make_mlp()


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""
