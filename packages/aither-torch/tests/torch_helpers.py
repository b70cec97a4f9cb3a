"""Small real models shared by the tests."""

from __future__ import annotations

from typing import Any

import torch


def make_mlp(inputs: int = 4, hidden: int = 8, outputs: int = 3) -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Linear(inputs, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, outputs)
    ).eval()


class DictBatchModel(torch.nn.Module):
    """Transformer-style: a dict batch in (ids + mask), a dict of tensors out."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed = torch.nn.Embedding(50, 6)
        self.head = torch.nn.Linear(6, 2)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> dict[str, Any]:
        hidden = self.embed(input_ids) * attention_mask.unsqueeze(-1)
        pooled = hidden.mean(dim=1)
        return {"logits": self.head(pooled), "hidden": (hidden, pooled)}


class Failing(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        raise ValueError(f"cannot score a batch of {x.shape[0]}")


class WithPredict(torch.nn.Module):
    """A module with its own ``predict`` that calls ``self`` (common in user code)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = make_mlp()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out: torch.Tensor = self.net(x)
        return out

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            out: torch.Tensor = self(x)
            return out.argmax(dim=1)
