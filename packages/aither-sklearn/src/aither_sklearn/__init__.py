"""aither plugin for scikit-learn and sklearn-compatible estimators (xgboost, lightgbm, catboost).

Registered under the ``aither.integrations`` entry points ``sklearn``, ``xgboost``, ``lightgbm`` and
``catboost``. Importing this module imports no framework: scikit-learn loads when an estimator is wrapped
(and an estimator's existence means it is loaded already).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._integration import SklearnIntegration, integration
from ._version import __version__

if TYPE_CHECKING:
    from ._estimator import TrackedEstimator

__all__ = ["SklearnIntegration", "TrackedEstimator", "__version__", "integration"]


def __getattr__(name: str) -> type[TrackedEstimator]:
    if name == "TrackedEstimator":  # importing it imports scikit-learn
        from ._estimator import TrackedEstimator

        return TrackedEstimator
    raise AttributeError(f"module 'aither_sklearn' has no attribute {name!r}")
