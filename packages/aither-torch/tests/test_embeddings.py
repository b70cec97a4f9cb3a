"""A torch model wrapped with ``embeddings=``: the sampled rows' hidden states (the input of the last Linear, or
a named layer's output) travel projected in ``_meta.embeddings``, the reference's are projected alike, and the
server's domain classifier flags embedding drift for a planted shift and none for unshifted traffic."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import aither
import aither_torch
from aither._capture._embeddings import EMBEDDING_DIM, project
from aither.testing import LiveServer, SpanCapture


def _mlp() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)).eval()


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> torch.Tensor:
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    x[:, 2] += shift
    return torch.from_numpy(x)


def test_each_sampled_row_carries_the_projection_of_the_last_linear_layers_input(
    aither_capture: SpanCapture,
) -> None:
    model = _mlp()
    tracked = aither.wrap(model, name="mlp", embeddings=True, sample_rows=3)
    x = _table(np.random.default_rng(0), 8)
    with torch.no_grad():
        tracked(x)
        hidden = model[1](model[0](x)).numpy()  # what the last Linear reads
    (span,) = aither_capture.predictions()
    sent = span.features["_meta"]["embeddings"]
    assert sent["dim"] == 16 and len(sent["vectors"]) == 3
    assert all(len(v) == EMBEDDING_DIM for v in sent["vectors"])
    every_row = project(hidden)["vectors"]
    assert all(vector in every_row for vector in sent["vectors"])  # rows of this call, projected alike


def test_a_named_layer_gives_its_output_and_the_helper_the_same_vectors_for_a_reference(
    aither_capture: SpanCapture,
) -> None:
    model = _mlp()
    tracked = aither.wrap(model, name="mlp", embeddings="0", sample_rows=8)
    x = _table(np.random.default_rng(1), 8)
    with torch.no_grad():
        tracked(x)
    (span,) = aither_capture.predictions()
    reference = aither_torch.embeddings(tracked, x, layer="0")  # not logged: forward() under the hooks
    assert reference.shape == (8, 16)
    assert np.allclose(project(reference)["vectors"], span.features["_meta"]["embeddings"]["vectors"], atol=1e-4)
    assert len(aither_capture.predictions()) == 1


def test_without_embeddings_no_vector_is_sent_and_rewrapping_drops_the_hook(aither_capture: SpanCapture) -> None:
    model = _mlp()
    aither.wrap(model, name="mlp", embeddings=True)
    aither.wrap(model, name="mlp")  # wrapping again, without embeddings
    with torch.no_grad():
        model(_table(np.random.default_rng(2), 4))
    (span,) = aither_capture.predictions()
    assert "embeddings" not in span.features["_meta"]


def test_a_module_without_a_linear_layer_is_logged_without_embeddings_and_a_warning_says_why(
    aither_capture: SpanCapture, caplog: pytest.LogCaptureFixture
) -> None:
    relu = torch.nn.ReLU()
    tracked = aither.wrap(relu, name="relu", embeddings=True)
    assert "name a layer" in caplog.text
    assert isinstance(tracked, aither_torch.TrackedModule)
    relu(torch.ones(2, 3))
    (span,) = aither_capture.predictions()
    assert "embeddings" not in span.features["_meta"]


def _run(server: LiveServer, name: str, seed: int, shift: float) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    model = _mlp()
    reference = _table(rng, 3000)
    aither.log_reference(name, reference, embeddings=aither_torch.embeddings(model, reference))
    tracked = aither.wrap(model, name=name, embeddings=True, sample_rows=16)
    with torch.no_grad():
        for _ in range(40):
            tracked(_table(rng, 64, shift))
    assert aither.flush(30)
    found: dict[str, object] = server.drift(name)["embeddings"]
    return found


def test_a_shifted_input_moves_the_embeddings_and_the_server_flags_them(aither_server: LiveServer) -> None:
    found = _run(aither_server, "shifted", 0, 3.0)
    assert found["method"] == "domain_classifier" and found["drifted"] is True
    assert found["score"] > found["threshold"] >= 0.55  # type: ignore[operator]
    assert found["current_count"] == 40 * 16 and found["reference_count"] == 2000


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: the nominal level is 1%, so no false positive
def test_unshifted_traffic_flags_no_embedding_drift(aither_server: LiveServer, seed: int) -> None:
    found = _run(aither_server, "steady", seed, 0.0)
    assert found["score"] is not None and found["drifted"] is False
