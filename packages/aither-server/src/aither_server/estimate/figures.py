"""The shapes of the figures an answer of estimated performance holds: estimated (``cbpe``, ``dle``) and realized
(``realized``), per slice."""

from __future__ import annotations

from typing import TypedDict

__all__ = [
    "ClassifierEstimate",
    "ClassifierRealized",
    "Estimate",
    "Figure",
    "Realized",
    "RegressorEstimate",
    "RegressorRealized",
]


class Figure(TypedDict):
    """An estimated figure with its sampling error and band (all None when it cannot be estimated)."""

    value: float | None
    sampling_error: float | None
    band: list[float] | None


class ClassifierEstimate(TypedDict, total=False):
    rows: int
    weighted_rows: float
    accuracy: Figure
    precision: Figure
    recall: Figure
    f1: Figure
    auc: Figure
    confusion_matrix: list[list[float]]


class RegressorEstimate(TypedDict):
    rows: int
    weighted_rows: float
    mae: Figure
    rmse: Figure


Estimate = ClassifierEstimate | RegressorEstimate


class ClassifierRealized(TypedDict):
    labels: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    auc: float | None
    confusion_matrix: list[list[float]]


class RegressorRealized(TypedDict):
    labels: int
    mae: float
    rmse: float


Realized = ClassifierRealized | RegressorRealized
