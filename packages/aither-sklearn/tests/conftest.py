from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer


@pytest.fixture(scope="session")
def breast_cancer() -> tuple[np.ndarray, np.ndarray]:
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture(autouse=True)
def _local_only(aither_local_only: None) -> None:
    """Each test starts with no client and leaves none behind; nothing it logs leaves 127.0.0.1."""
