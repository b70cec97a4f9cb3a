"""The plugin object: claims scikit-learn-style estimators without importing their framework."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aither.integrations import WRAP_OPTIONS, Integration, WrapOptions

from ._names import FRAMEWORKS

if TYPE_CHECKING:
    from ._estimator import TrackedEstimator

__all__ = ["SklearnIntegration", "integration"]


class SklearnIntegration(Integration):
    name = "sklearn"
    modules = FRAMEWORKS

    def claims(self, model: object) -> bool:
        # Estimators with the sklearn API; a native booster (xgboost.Booster) has no fit() and is left to the
        # generic wrapper.
        return super().claims(model) and callable(getattr(model, "fit", None))

    def wrap(self, model: object, options: WrapOptions) -> TrackedEstimator:
        from ._estimator import TrackedEstimator  # MissingDependencyError without scikit-learn

        if isinstance(model, TrackedEstimator):  # wrapping a wrapper would log every call twice
            model = model.model
        tracked = TrackedEstimator(model, **{option: getattr(options, option) for option in WRAP_OPTIONS})
        tracked._aither  # noqa: B018 - build the logger at wrap time, not during the first predict
        return tracked


integration = SklearnIntegration()
