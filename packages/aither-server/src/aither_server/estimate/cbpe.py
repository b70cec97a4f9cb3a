"""Confidence-based performance estimation (CBPE) of a classifier from its calibrated scores alone.

With calibrated probabilities ``p`` (``estimate/calibration.py``), a row predicted as class ``i`` is of class
``j`` with probability ``p_j``: the expected confusion matrix of a slice is the sum of each row's ``p`` in its
predicted row of the matrix, and accuracy, precision, recall and F1 follow from it as from a counted one. The
ROC AUC of a class is that of its score with each row counting ``p`` positive and ``1 - p`` negative. This holds
while the scores stay calibrated: under covariate shift (the inputs move) and without concept drift (the
relation of inputs to labels stays). docs/estimated-performance.md.

Everything an estimate needs from a slice is a vector of sums (:func:`statistics`), so hours merge by addition
and a closed hour is computed once (``estimate/store.py``). Rows are weighted by ``1 / ml.sample_rate``.

Vector layout, for K classes and the scored classes' bins: ``[rows, sum w, sum w^2, sum w^2 c(1 - c)]`` (``c``
the probability the row's prediction is right), the K x K expected confusion (predicted row, true column), K
sums ``w^2 p_k (1 - p_k)`` over the rows predicted ``k``, then per scored class its bins' positive and negative
weights.
"""

from __future__ import annotations

import math

import numpy as np

from aither_server.estimate.calibration import Estimator, Floats
from aither_server.estimate.figures import ClassifierEstimate, Figure

__all__ = ["estimate", "length", "statistics"]

#: The band is the estimate plus or minus this many sampling errors (standard deviations).
BAND_SIGMAS = 3.0
_HEAD = 4


def length(estimator: Estimator) -> int:
    """The length of a statistics vector under ``estimator``."""
    k = estimator.width
    return _HEAD + k * k + k + sum(2 * (len(edges) + 1) for edges in estimator.edges)


def statistics(estimator: Estimator, scores: Floats, weights: Floats) -> Floats:
    """The sums of a slice's rows: ``scores`` (n x K raw class scores), ``weights`` (n)."""
    k = estimator.width
    out = np.zeros(length(estimator))
    if not len(scores):
        return out
    probs = estimator.calibrated(scores)
    predicted = scores.argmax(axis=1)
    w2 = weights * weights
    right = probs[np.arange(len(probs)), predicted]
    out[0] = len(scores)
    out[1] = weights.sum()
    out[2] = w2.sum()
    out[3] = float((w2 * right * (1.0 - right)).sum())
    confusion = np.zeros((k, k))
    np.add.at(confusion, predicted, probs * weights[:, None])
    out[_HEAD : _HEAD + k * k] = confusion.ravel()
    out[_HEAD + k * k : _HEAD + k * k + k] = np.bincount(predicted, w2 * right * (1.0 - right), minlength=k)
    at = _HEAD + k * k + k
    for column, edges in zip(estimator.scored(), estimator.edges, strict=True):
        bins = len(edges) + 1
        where = np.searchsorted(edges, scores[:, column], side="right")
        p = probs[:, column]
        out[at : at + bins] = np.bincount(where, weights * p, minlength=bins)
        out[at + bins : at + 2 * bins] = np.bincount(where, weights * (1.0 - p), minlength=bins)
        at += 2 * bins
    return out


def _figure(value: float | None, error: float | None) -> Figure:
    if value is None or error is None or not math.isfinite(value):
        return {"value": None, "sampling_error": None, "band": None}
    return {
        "value": value,
        "sampling_error": error,
        "band": [max(0.0, value - BAND_SIGMAS * error), min(1.0, value + BAND_SIGMAS * error)],
    }


def _proportion_error(value: float, n: float) -> float:
    return math.sqrt(max(value * (1.0 - value), 0.0) / n) if n > 0 else math.inf


def auc_of(pos: Floats, neg: Floats) -> float | None:
    """ROC AUC from positive and negative weights per ascending score bin; a bin's pairs count half (ties)."""
    below = np.concatenate([[0.0], np.cumsum(neg)[:-1]])
    p_total, n_total = float(pos.sum()), float(neg.sum())
    if p_total <= 0 or n_total <= 0:
        return None
    return float((pos * (below + 0.5 * neg)).sum()) / (p_total * n_total)


def hanley_mcneil(auc: float, positives: float, negatives: float) -> float:
    """The standard error of a ROC AUC over ``positives`` and ``negatives`` (Hanley and McNeil, 1982)."""
    if positives <= 1 or negatives <= 1:
        return math.inf
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return math.sqrt(max(variance, 0.0))


def class_figures(confusion: Floats, n_eff: float, total: float) -> dict[str, tuple[float, float]]:
    """Macro precision, recall and F1 of a (possibly expected) confusion matrix, each with an approximate
    sampling error over ``n_eff`` effective rows (binomial, per class, then over the macro mean)."""
    k = len(confusion)
    scale = n_eff / total if total > 0 else 0.0
    tp = np.diag(confusion)
    predicted, actual = confusion.sum(axis=1), confusion.sum(axis=0)
    out: dict[str, list[tuple[float, float]]] = {"precision": [], "recall": [], "f1": []}
    for c in range(k):
        precision = tp[c] / predicted[c] if predicted[c] > 0 else 0.0
        recall = tp[c] / actual[c] if actual[c] > 0 else 0.0
        f1 = 2 * tp[c] / (predicted[c] + actual[c]) if predicted[c] + actual[c] > 0 else 0.0
        out["precision"].append((precision, _proportion_error(precision, predicted[c] * scale)))
        out["recall"].append((recall, _proportion_error(recall, actual[c] * scale)))
        out["f1"].append((f1, _proportion_error(f1, (predicted[c] + actual[c]) / 2 * scale)))
    return {
        name: (
            sum(v for v, _ in parts) / k,
            math.sqrt(sum(e * e for _, e in parts if math.isfinite(e))) / k,
        )
        for name, parts in out.items()
    }


def estimate(estimator: Estimator, stats: Floats) -> ClassifierEstimate | None:
    """Estimated accuracy, precision, recall, F1 (macro), ROC AUC and confusion matrix of a slice's sums, each
    with its sampling error and band; ``None`` for a slice without scored rows."""
    k = estimator.width
    rows, total, total2, right_var = (float(v) for v in stats[:_HEAD])
    if rows <= 0 or total <= 0:
        return None
    n_eff = total * total / total2
    confusion = stats[_HEAD : _HEAD + k * k].reshape(k, k)
    accuracy = float(np.trace(confusion)) / total
    out: ClassifierEstimate = {"rows": int(rows), "weighted_rows": total}
    out["accuracy"] = _figure(accuracy, math.sqrt(right_var) / total)
    macro = class_figures(confusion, n_eff, total)
    predicted = confusion.sum(axis=1)
    predicted_var = stats[_HEAD + k * k : _HEAD + k * k + k]
    # A precision's error is exact given the calibrated probabilities of the rows predicted as its class.
    errors = [math.sqrt(v) / p for v, p in zip(predicted_var, predicted, strict=True) if p > 0]
    out["precision"] = _figure(macro["precision"][0], math.sqrt(sum(e * e for e in errors)) / k)
    out["recall"] = _figure(*macro["recall"])
    out["f1"] = _figure(*macro["f1"])
    at = _HEAD + k * k + k
    aucs = []
    for edges in estimator.edges:
        bins = len(edges) + 1
        pos, neg = stats[at : at + bins], stats[at + bins : at + 2 * bins]
        found = auc_of(pos, neg)
        if found is not None:
            scale = n_eff / total
            aucs.append((found, hanley_mcneil(found, float(pos.sum()) * scale, float(neg.sum()) * scale)))
        at += 2 * bins
    if aucs:
        # A class with at most one expected positive (or negative) has no finite error: it adds none.
        error = math.sqrt(sum(e * e for _, e in aucs if math.isfinite(e))) / len(aucs)
        out["auc"] = _figure(sum(a for a, _ in aucs) / len(aucs), error)
    else:
        out["auc"] = _figure(None, None)
    out["confusion_matrix"] = [[float(v) for v in row] for row in confusion]
    return out
