"""Which framework an estimator belongs to, by the modules of its classes (a leaf: imports no framework)."""

from __future__ import annotations

__all__ = ["FRAMEWORKS", "framework_of"]

#: Top-level modules whose estimators this plugin wraps; the first one found in the MRO names the framework.
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "catboost")


def framework_of(model: object) -> str:
    """``ml.framework`` of ``model``: ``xgboost`` for an XGBClassifier, else ``sklearn``."""
    for klass in type(model).__mro__:
        root = klass.__module__.partition(".")[0]
        if root in FRAMEWORKS:
            return root
    return "sklearn"
