"""A torch model observed end to end through a real aither server: drift names the input that moved (a column
of a table, one channel of images), unshifted traffic flags nothing, and quality from joined labels equals the
same metric computed by hand on the same rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import roc_auc_score

import aither
from aither.testing import LiveServer

NAMES = ["age", "income", "debt", "tenure", "score", "visits"]


def _mlp(outputs: int = 2) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, outputs)).eval()


def _table(rng: np.random.Generator, rows: int, shift: float = 0.0) -> torch.Tensor:
    x = rng.normal(size=(rows, 6)).astype(np.float32)
    x[:, 2] += shift
    return torch.from_numpy(x)


def _traffic(tracked: torch.nn.Module, rng: np.random.Generator, calls: int, shift: float = 0.0) -> None:
    with torch.no_grad():
        for _ in range(calls):
            tracked(_table(rng, 64, shift))
    assert aither.flush(30)


def test_a_shifted_column_of_a_tensor_is_flagged_by_its_name_and_no_other(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(0)
    model = _mlp()
    reference = _table(rng, 5000)
    with torch.no_grad():
        logits = model(reference)
    stored = aither.log_reference("mlp", reference, predictions=logits, feature_names=NAMES)
    assert stored["columns"] == sorted(NAMES)
    tracked = aither.wrap(model, name="mlp", feature_names=NAMES, sample_rows=32)
    _traffic(tracked, rng, 60, shift=3.0)
    drift = aither_server.drift("mlp")
    assert {name for name, f in drift["by_name"].items() if f["drifted"]} == {"debt"}
    assert drift["by_name"]["debt"]["current_count"] == 60 * 32
    assert drift["by_name"]["age"]["reference_count"] == 5000


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: no false positive on any
def test_unshifted_tensor_traffic_flags_nothing(aither_server: LiveServer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    aither.log_reference("steady", _table(rng, 5000))  # no names given: "0".."5" on both sides
    tracked = aither.wrap(_mlp(), name="steady", sample_rows=32)
    _traffic(tracked, rng, 60)
    drift = aither_server.drift("steady")
    assert set(drift["by_name"]) == {str(j) for j in range(6)}
    assert aither_server.drifted("steady") == set()


def test_accuracy_and_auc_from_labels_joined_to_logits_equal_a_hand_computation(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(4)
    tracked = aither.wrap(_mlp(), name="scored")
    labels: list[int] = []
    logits: list[torch.Tensor] = []
    with torch.no_grad():
        for _ in range(20):
            x = _table(rng, 16)
            out = tracked(x)
            y = (x[:, 0] + x[:, 1] > 0).long()  # a label tensor, logged as it is
            aither.log_label(tracked.last_trace_id, y)
            labels += y.tolist()
            logits.append(out)
    assert aither.flush(30)
    found = aither_server.metrics("scored")
    scores = torch.cat(logits)
    predicted = scores.argmax(dim=1).numpy()
    assert found["task"] == "classification" and found["labels"] == 320
    assert found["accuracy"] == pytest.approx(float((predicted == np.array(labels)).mean()))
    probability = torch.softmax(scores.double(), dim=1)[:, 1].numpy()
    assert found["auc"] == pytest.approx(roc_auc_score(labels, probability), abs=1e-9)


def test_mae_of_a_regression_head_from_joined_labels_equals_a_hand_computation(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(5)
    tracked = aither.wrap(_mlp(outputs=1), name="regressor", task="regression")
    errors: list[float] = []
    with torch.no_grad():
        for _ in range(10):
            x = _table(rng, 8)
            out = tracked(x)[:, 0]
            y = x[:, 0] * 2.0
            aither.log_label(tracked.last_trace_id, [float(v) for v in y])
            errors += (out.double() - y.double()).abs().tolist()
    assert aither.flush(30)
    found = aither_server.metrics("regressor")
    assert found["task"] == "regression" and found["labels"] == 80
    assert found["mae"] == pytest.approx(float(np.mean(errors)), rel=1e-6)


def _images(rng: np.random.Generator, rows: int, brighter: float = 0.0) -> torch.Tensor:
    x = rng.uniform(0.0, 1.0, size=(rows, 3, 8, 8)).astype(np.float32)
    x[:, 1] = np.clip(x[:, 1] * rng.uniform(0.6, 1.0, size=(rows, 1, 1)) + brighter, 0.0, 1.5)
    return torch.from_numpy(x)


def _convnet() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)
    ).eval()


def test_a_brighter_channel_of_images_is_flagged_in_that_channels_descriptors_only(
    aither_server: LiveServer,
) -> None:
    rng = np.random.default_rng(6)
    aither.log_reference("vision", _images(rng, 3000))
    tracked = aither.wrap(_convnet(), name="vision", sample_rows=16)
    with torch.no_grad():
        for _ in range(80):
            tracked(_images(rng, 32, brighter=0.4))
    assert aither.flush(30)
    drift = aither_server.drift("vision")
    assert set(drift["by_name"]) == {f"pixel_{d}[{c}]" for d in ("mean", "std", "min", "max") for c in range(3)}
    drifted = aither_server.drifted("vision")
    assert "pixel_mean[1]" in drifted and drifted <= {"pixel_mean[1]", "pixel_min[1]", "pixel_max[1]"}


def test_the_dashboard_shows_a_torch_models_drift_and_accuracy(aither_server: LiveServer) -> None:
    import re

    import httpx

    from aither.testing._server import ADMIN_KEY

    rng = np.random.default_rng(5)
    model = _mlp()
    aither.log_reference("dash", _table(rng, 3000), feature_names=NAMES)
    tracked = aither.wrap(model, name="dash", feature_names=NAMES, sample_rows=32)
    labels: list[int] = []
    predicted: list[int] = []
    with torch.no_grad():
        for _ in range(40):
            x = _table(rng, 32, shift=3.0)
            out = tracked(x)
            y = (x[:, 0] > 0).long()
            aither.log_label(tracked.last_trace_id, y)
            labels += y.tolist()
            predicted += out.argmax(dim=1).tolist()
    assert aither.flush(30)
    with httpx.Client(base_url=aither_server.url, timeout=60) as browser:
        login = browser.get("/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', login.text)
        assert csrf is not None
        assert browser.post("/login", data={"api_key": ADMIN_KEY, "csrf": csrf.group(1)}).status_code == 303
        page = browser.get("/models/dash", params={"range": "24h"}).text
    drift_table = page.split('id="drift"', 1)[1].split("</table>", 1)[0]
    drifted = re.findall(r'<tr class="drifted"><td><a [^>]*>([^<]+)</a>', drift_table)
    assert drifted == ["debt"]
    accuracy = sum(p == y for p, y in zip(predicted, labels, strict=True)) / len(labels)
    assert f"{accuracy * 100:.1f}%" in page
