"""The shared plugin contract, run against real scikit-learn, xgboost, lightgbm and catboost models."""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from aither.testing.contract import PluginContract

X, y = load_iris(return_X_y=True)


class SklearnContract(PluginContract):
    framework = "sklearn"
    plugin_module = "aither_sklearn"
    framework_modules = ("sklearn", "numpy")
    framework_module = "sklearn"
    framework_distribution = "scikit-learn"
    missing_framework_call = "aither_sklearn.TrackedEstimator"
    passthrough_attribute = "classes_"

    def make_input(self) -> Any:
        return X[:4]

    def make_failing_input(self) -> Any:
        return np.ones((2, 99))  # wrong number of features: the estimator raises ValueError


class TestLogisticRegression(SklearnContract):
    def make_model(self) -> Any:
        return LogisticRegression(max_iter=500).fit(X, y)


class TestPipeline(SklearnContract):
    passthrough_attribute = "named_steps"

    def make_model(self) -> Any:
        return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, y)


class TestPredictProba(SklearnContract):
    method = "predict_proba"

    def make_model(self) -> Any:
        return LogisticRegression(max_iter=500).fit(X, y)

    def call(self, tracked: Any, inputs: Any) -> Any:
        return tracked.predict_proba(inputs)


class TestXGBoost(SklearnContract):
    framework = "xgboost"

    def make_model(self) -> Any:
        import xgboost

        return xgboost.XGBClassifier(n_estimators=5, max_depth=2).fit(X, y)


class TestLightGBM(SklearnContract):
    framework = "lightgbm"

    def make_model(self) -> Any:
        import lightgbm

        return lightgbm.LGBMClassifier(n_estimators=5, verbose=-1).fit(X, y)


class TestCatBoost(SklearnContract):
    framework = "catboost"

    def make_model(self) -> Any:
        import catboost

        return catboost.CatBoostClassifier(iterations=5, verbose=False, allow_writing_files=False).fit(X, y)

    def make_failing_input(self) -> Any:
        return np.ones((2, 2))  # catboost ignores extra columns but raises on missing ones

    def assert_same_output(self, tracked_output: Any, bare_output: Any) -> None:
        np.testing.assert_array_equal(np.asarray(tracked_output).ravel(), np.asarray(bare_output).ravel())
