"""Embedding drift: can a classifier tell the reference's embeddings from the current ones?

The domain-classifier method (Evidently's default for embeddings): label the reference's projected rows 0 and
the window's 1, fit an L2-regularised logistic regression (numpy, Newton's method) on :data:`FOLDS` - 1 folds,
score the held-out fold, and take the ROC AUC of the out-of-fold scores. Embeddings that did not move give a
classifier no purchase (AUC near 0.5); a shifted topic or style gives it one. Both sides are balanced to the
same number of rows (at most :data:`MAX_ROWS`), drawn at random with a fixed seed, so the same question gets
the same answer.

Drifted when the AUC reaches the threshold: the larger of :data:`MIN_AUC` (Evidently's default) and the AUC a
classifier with no purchase stays under with probability 1 - :data:`ALPHA` on these sample sizes (the
Mann-Whitney statistic's normal approximation, mean 0.5 and standard deviation sqrt((n1 + n2 + 1) / (12 n1
n2)), times :data:`CV_INFLATION` for the cross-validation's own variance), so a small sample's noise does not
read as drift. ``p_value`` is that approximation's upper tail.

The rows come from the SDK's projection (``aither._capture._embeddings``): live ones from each hour's reservoir
(``drift/embedding_store.py``, fed by :func:`collect` from the spans' ``_meta.embeddings``), the reference's
from ``log_reference(..., embeddings=)``, or a past window's reservoirs for a ``window:`` reference.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import TypedDict

import numpy as np
from numpy.typing import NDArray
from scipy import special, stats
from sqlalchemy import Engine

from aither_server.drift.embedding_store import EMBEDDING_DIM, EmbeddingStore, NewRows, Vectors
from aither_server.drift.stats import DriftEntry

__all__ = [
    "ALPHA",
    "CV_INFLATION",
    "FOLDS",
    "MAX_ROWS",
    "METHOD",
    "MIN_AUC",
    "MIN_ROWS",
    "add_embeddings",
    "checked_reference",
    "collect",
    "domain_classifier",
    "embedding_drift",
]

logger = logging.getLogger("aither_server")

METHOD = "domain_classifier"
#: Evidently's default threshold on the classifier's ROC AUC.
MIN_AUC = 0.55
#: A classifier with no purchase reaches the threshold at most this often (the method's nominal level).
ALPHA = 0.01
FOLDS = 5
#: Rows each side needs before the method answers, and the most it uses.
MIN_ROWS = 20
MAX_ROWS = 1000
#: The spread of a cross-validated AUC with no purchase, over the Mann-Whitney one of fixed scores: each fold's
#: model is fitted to noise, which adds variance (measured 1.37x on 60 draws of 500 + 640 Gaussian rows).
CV_INFLATION = 1.5
#: The L2 penalty of the logistic regression (on standardised inputs).
L2 = 1.0
_SEED = 20261207
_NEWTON_STEPS = 25

#: Rows to compare: the stored float32 ones, or any float64 ones a caller has.
Rows = NDArray[np.float32] | NDArray[np.float64]
Floats = NDArray[np.float64]


class Verdict(TypedDict):
    """The method's answer for two sets of rows (the verdict fields of a drift answer's row)."""

    score: float
    p_value: float
    threshold: float
    drifted: bool
    statistics: dict[str, float | None]


def collect(new: NewRows, model: tuple[str, str, str], hour: int, meta: Mapping[str, object]) -> None:
    """Add the projected rows of a span's ``_meta.embeddings`` to ``new`` (ignored unless well formed)."""
    found = meta.get("embeddings")
    if not isinstance(found, dict):
        return
    dim, vectors = found.get("dim"), found.get("vectors")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0 or not isinstance(vectors, list):
        return
    rows = [v for v in vectors if isinstance(v, list) and len(v) == EMBEDDING_DIM and _numbers(v)]
    if rows:
        new.setdefault((model, hour, dim), []).extend(rows)


def _numbers(values: Iterable[object]) -> bool:
    return all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in values)


def add_embeddings(engine: Engine, new: NewRows) -> None:
    """Store the collected rows in their hours' reservoirs. Never raises: drift never fails ingestion."""
    try:
        EmbeddingStore(engine, seed=_SEED ^ len(new)).add(new)
    except Exception:
        logger.warning("aither-server: embedding reservoirs not updated for %d hours", len(new), exc_info=True)


def checked_reference(value: object) -> tuple[int, Vectors] | None:
    """A posted reference's ``embeddings`` (``{"dim", "vectors"}``) as ``(dim, float32 rows)``, or ValueError."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("embeddings must be an object {dim, vectors}")
    dim, vectors = value.get("dim"), value.get("vectors")
    if isinstance(dim, bool) or not isinstance(dim, int) or dim <= 0:
        raise ValueError("embeddings.dim must be a positive integer")
    if not isinstance(vectors, list) or not vectors or len(vectors) > 100_000:
        raise ValueError("embeddings.vectors must be a list of 1 to 100000 rows")
    if not all(isinstance(v, list) and len(v) == EMBEDDING_DIM and _numbers(v) for v in vectors):
        raise ValueError(f"each row of embeddings.vectors must be {EMBEDDING_DIM} finite numbers")
    return dim, np.asarray(vectors, dtype=np.float32)


# ------------------------------------------------------------------------------------------------ the method


def _fit(x: Floats, y: Floats) -> Floats:
    """Weights (the last one the intercept) of an L2-regularised logistic regression of ``y`` on ``x``, by
    Newton's method: the loss is strictly convex and the inputs few (33 weights), so a handful of steps
    converge, each a small matrix product (scipy's quasi-Newton took ~100 Python callbacks instead)."""
    design = np.hstack([x, np.ones((x.shape[0], 1))])
    penalty = np.full(design.shape[1], L2)
    penalty[-1] = 0.0
    w = np.zeros(design.shape[1])
    for _ in range(_NEWTON_STEPS):
        p = special.expit(design @ w)
        grad = design.T @ (p - y) + penalty * w
        hessian = (design.T * (p * (1.0 - p))) @ design + np.diag(penalty + 1e-9)
        step = np.linalg.solve(hessian, grad)
        w -= step
        if float(np.abs(step).max()) < 1e-8:
            break
    return w


def _auc(scores: Floats, y: Floats) -> float:
    """ROC AUC of ``scores`` for labels ``y`` (the Mann-Whitney statistic, ties counted half)."""
    ranks = stats.rankdata(scores)
    positives = int(y.sum())
    negatives = y.shape[0] - positives
    return float((ranks[y == 1].sum() - positives * (positives + 1) / 2) / (positives * negatives))


def domain_classifier(reference: Rows, current: Rows, *, seed: int = _SEED) -> Verdict:
    """The method's answer for two sets of projected rows (each rows by ``EMBEDDING_DIM``): see the module."""
    rng = np.random.default_rng(seed)
    n = min(reference.shape[0], current.shape[0], MAX_ROWS)
    ref = reference[rng.choice(reference.shape[0], n, replace=False)].astype(np.float64)
    cur = current[rng.choice(current.shape[0], n, replace=False)].astype(np.float64)
    x = np.vstack([ref, cur])
    y = np.concatenate([np.zeros(n), np.ones(n)])
    folds = np.empty(2 * n, dtype=np.int64)  # stratified: each fold holds as many of each side
    folds[:n] = rng.permutation(n) % FOLDS
    folds[n:] = rng.permutation(n) % FOLDS
    scores = np.empty(2 * n)
    for fold in range(FOLDS):
        test = folds == fold
        train = ~test
        mean = x[train].mean(axis=0)
        scale = x[train].std(axis=0)
        scale[scale == 0] = 1.0
        weights = _fit((x[train] - mean) / scale, y[train])
        scores[test] = ((x[test] - mean) / scale) @ weights[:-1] + weights[-1]
    auc = _auc(scores, y)
    spread = CV_INFLATION * math.sqrt((2 * n + 1) / (12.0 * n * n))
    threshold = max(MIN_AUC, 0.5 + float(stats.norm.isf(ALPHA)) * spread)
    return {
        "score": round(auc, 6),
        "p_value": float(stats.norm.sf((auc - 0.5) / spread)),
        "threshold": round(threshold, 6),
        "drifted": auc >= threshold,
        "statistics": {"rows_per_side": n, "folds": FOLDS, "min_auc": MIN_AUC, "alpha": ALPHA},
    }


# ------------------------------------------------------------------------------------------------ the answer


def _pooled(hours: list[tuple[Vectors, int]], rng: np.random.Generator) -> Vectors:
    """One sample of a window from its hours' reservoirs: each hour's rows weighted by the rows it stands for,
    so a busy hour counts as much as its traffic, not as much as its reservoir."""
    if not hours:
        return np.empty((0, EMBEDDING_DIM), np.float32)
    rows = np.vstack([kept for kept, _ in hours])
    if rows.shape[0] <= MAX_ROWS:
        return rows
    weights = np.concatenate([np.full(kept.shape[0], seen / max(kept.shape[0], 1)) for kept, seen in hours])
    picked = rng.choice(rows.shape[0], MAX_ROWS, replace=False, p=weights / weights.sum())
    return rows[picked]


def embedding_drift(
    engine: Engine,
    model: str,
    version: str | None,
    environment: str | None,
    hours: tuple[int | None, int | None],
    reference: Mapping[str, object],
    past_hours: tuple[int | None, int | None] | None,
) -> DriftEntry | None:
    """The ``embeddings`` entry of a drift answer: the method over the window's live rows against the
    reference's (``reference`` as the drift answer names it; ``past_hours`` for a ``window:`` reference).
    None when neither side has embeddings (a model not wrapped with ``embeddings=``)."""
    store = EmbeddingStore(engine)
    live = store.live(model, version, environment, *hours)
    if past_hours is not None:
        past = store.live(model, version, environment, *past_hours)
        ref_dim = max(past, key=lambda d: sum(seen for _, seen in past[d]), default=None)
        ref_rows = None if ref_dim is None else _pooled(past[ref_dim], np.random.default_rng(_SEED))
    else:
        stored = store.reference(model, str(reference.get("version") or ""), str(reference.get("name")))
        ref_dim, ref_rows = (None, None) if stored is None else stored
    if ref_rows is None and not live:
        return None
    entry: DriftEntry = {
        "name": "embeddings",
        "kind": "embedding",
        "method": METHOD,
        "score": None,
        "p_value": None,
        "threshold": None,
        "drifted": False,
        "statistics": {},
        "reference_count": 0 if ref_rows is None else int(ref_rows.shape[0]),
        "current_count": sum(seen for hours_of in live.values() for _, seen in hours_of),
    }
    if ref_rows is None:
        entry["skipped"] = "the reference has no embeddings: log_reference(..., embeddings=)"
        return entry
    current = live.get(int(ref_dim)) if ref_dim is not None else None
    if ref_dim is None or not current:
        if live:
            entry["skipped"] = f"the current embeddings are {sorted(live)}-wide, the reference's {ref_dim}-wide"
        return entry
    rows = _pooled(current, np.random.default_rng(_SEED + 1))
    if min(rows.shape[0], ref_rows.shape[0]) < MIN_ROWS:
        entry["skipped"] = f"the method needs at least {MIN_ROWS} rows on each side"
        return entry
    verdict = domain_classifier(ref_rows, rows)
    entry["score"] = verdict["score"]
    entry["p_value"] = verdict["p_value"]
    entry["threshold"] = verdict["threshold"]
    entry["drifted"] = verdict["drifted"]
    entry["statistics"] = {**verdict["statistics"], "embedding_dim": int(ref_dim)}
    return entry
