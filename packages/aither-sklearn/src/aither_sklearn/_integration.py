"""The plugin object: claims scikit-learn-style estimators without importing their framework."""

from __future__ import annotations

from typing import Any

from aither import MissingDependencyError
from aither.integrations import Integration, WrapOptions

__all__ = ["SklearnIntegration", "integration"]

#: Top-level modules whose estimators this plugin wraps; the first one found in the MRO names the framework.
FRAMEWORKS = ("sklearn", "xgboost", "lightgbm", "catboost")


def framework_of(model: Any) -> str:
    for klass in type(model).__mro__:
        root = klass.__module__.partition(".")[0]
        if root in FRAMEWORKS:
            return root
    return "sklearn"


class SklearnIntegration(Integration):
    name = "sklearn"
    modules = FRAMEWORKS

    def claims(self, model: Any) -> bool:
        # Estimators with the sklearn API; a native booster (xgboost.Booster) has no fit() and is left to the
        # generic wrapper.
        return super().claims(model) and callable(getattr(model, "fit", None))

    def wrap(self, model: Any, options: WrapOptions) -> Any:
        try:
            from ._estimator import TrackedEstimator
        except ImportError as exc:  # pragma: no cover - an estimator exists, so sklearn normally does too
            raise MissingDependencyError(
                "wrapping this model needs scikit-learn: pip install 'aither[sklearn]' scikit-learn"
            ) from exc
        if isinstance(model, TrackedEstimator):  # wrapping a wrapper would log every call twice
            model = model.model
        return TrackedEstimator(
            model,
            name=options.name,
            version=options.version,
            environment=options.environment,
            sample_rows=options.sample_rows,
            sample_columns=options.sample_columns,
            features_fn=options.features_fn,
        )


integration = SklearnIntegration()
