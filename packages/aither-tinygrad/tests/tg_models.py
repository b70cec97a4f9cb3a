"""Small tinygrad models and functions for the tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from tinygrad import Tensor, nn


class TinyNet:
    """Two linear layers; remembers its last output so tests can check it is returned as it is."""

    def __init__(self, width: int = 8, classes: int = 3) -> None:
        Tensor.manual_seed(0)
        self.l1 = nn.Linear(width, 16)
        self.l2 = nn.Linear(16, classes)
        self.last: Tensor | None = None

    def __call__(self, x: Tensor) -> Tensor:
        out = self.l2(self.l1(x.reshape(x.shape[0], -1)).relu())
        self.last = out
        return out


class RealizingNet(TinyNet):
    """A model that realises its own output, as TinyJit-compiled models do."""

    def __call__(self, x: Tensor) -> Tensor:
        return super().__call__(x).realize()


class Doubler:
    """No parameters, no tinygrad global: only recognisable when called, so wrapped explicitly."""

    def __call__(self, x: Any) -> Any:
        return x * 2


def softmax_scores(x: Tensor) -> Tensor:
    scores: Tensor = Tensor.softmax(x * 2, axis=-1)
    return scores


def rows(n: int = 4, width: int = 8, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).random((n, width), dtype=np.float32)
