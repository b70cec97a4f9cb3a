from __future__ import annotations

import pytest
import torch
from torch_helpers import make_mlp


@pytest.fixture
def mlp() -> torch.nn.Module:
    return make_mlp()
