"""The plugin object: claims scikit-learn-style estimators without importing their framework."""

from __future__ import annotations

from typing import Any

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
        from ._estimator import TrackedEstimator  # MissingDependencyError without scikit-learn

        if isinstance(model, TrackedEstimator):  # wrapping a wrapper would log every call twice
            model = model.model
        tracked = TrackedEstimator(
            model,
            name=options.name,
            version=options.version,
            environment=options.environment,
            sample_rows=options.sample_rows,
            sample_columns=options.sample_columns,
            features_fn=options.features_fn,
        )
        tracked._aither  # noqa: B018 - build the logger at wrap time, not during the first predict
        return tracked


integration = SklearnIntegration()
