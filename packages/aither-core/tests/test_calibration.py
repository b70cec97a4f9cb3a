"""The calibration ``log_reference`` sends for estimated performance (``aither._calibration``)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from aither._calibration import MAX_KNOTS, classifier_estimator, isotonic, score_matrix


def test_isotonic_knots_interpolate_to_scikit_learns_fit() -> None:
    rng = np.random.default_rng(0)
    x = rng.random(3000).round(3)  # ties too
    y = (rng.random(3000) < x**2).astype(np.float64)
    knots_x, knots_y = isotonic(x, y)
    expected = IsotonicRegression(out_of_bounds="clip").fit(x, y)
    grid = np.linspace(0, 1, 501)
    assert np.interp(grid, knots_x, knots_y) == pytest.approx(expected.predict(grid), abs=1e-9)
    assert len(knots_x) <= MAX_KNOTS and all(np.diff(knots_y) >= 0)


def test_scores_are_read_as_a_live_output_is() -> None:
    proba = np.array([[0.2, 0.8], [0.6, 0.4]])
    assert score_matrix(proba) == pytest.approx(proba)
    logits = np.array([[2.0, -1.0, 0.5]])
    soft = np.exp(logits) / np.exp(logits).sum()
    assert score_matrix(logits) == pytest.approx(soft)
    assert score_matrix(np.array([0.3, 0.9])) == pytest.approx(np.array([[0.7, 0.3], [0.1, 0.9]]))
    assert score_matrix(np.array([0.0])) is None and score_matrix(np.array([1, 0, 2])) is None
    sigmoid = 1 / (1 + np.exp(-2.0))
    scores = score_matrix(np.array([2.0, 0.5]))
    assert scores is not None and scores[0] == pytest.approx([1 - sigmoid, sigmoid])


def test_classes_follow_sorted_labels_and_columns_that_cannot_be_named_send_nothing() -> None:
    rng = np.random.default_rng(1)
    proba = rng.dirichlet([1, 1, 1], 300)
    labels = np.array(["cat", "dog", "eel"])[proba.argmax(axis=1)]
    body = classifier_estimator(proba, labels)
    assert body is not None and body["classes"] == ["cat", "dog", "eel"]
    assert isinstance(body["calibration"], list) and len(body["calibration"]) == 3
    assert body["reference"] == {"rows": 300, "accuracy": 1.0}
    assert classifier_estimator(proba, labels[:10]) is None  # one label per row, or nothing
    assert classifier_estimator(proba, np.array(["a", "b", "c", "d"])[rng.integers(0, 4, 300)]) is None
