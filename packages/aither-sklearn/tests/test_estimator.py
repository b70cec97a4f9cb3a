"""TrackedEstimator is a real scikit-learn meta-estimator."""

from __future__ import annotations

import io
import pickle
import warnings

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone, is_classifier, is_regressor
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import check_estimator

import aither
from aither.testing import OTLPReceiver, SpanCapture
from aither_sklearn import TrackedEstimator


def test_wrap_returns_a_tracked_estimator_that_keeps_the_fitted_model(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    model = LogisticRegression(max_iter=3000).fit(X, y)
    tracked = aither.wrap(model, name="clf")
    assert isinstance(tracked, TrackedEstimator)
    assert tracked.model is model
    np.testing.assert_array_equal(tracked.predict(X[:10]), model.predict(X[:10]))
    np.testing.assert_array_equal(tracked.classes_, model.classes_)
    assert tracked.estimator is model
    assert tracked.n_features_in_ == 30


def test_get_params_and_set_params_follow_sklearn(aither_capture: SpanCapture) -> None:
    tracked = aither.wrap(LogisticRegression(C=0.5), name="clf", version="1")
    params = tracked.get_params()
    assert params["name"] == "clf"
    assert params["version"] == "1"
    assert params["estimator__C"] == 0.5
    tracked.set_params(estimator__C=2.0, version="2")
    assert tracked.estimator.C == 2.0
    assert tracked.get_params()["version"] == "2"


def test_set_params_changes_what_is_logged(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    tracked = aither.wrap(LogisticRegression(max_iter=3000).fit(X, y), name="clf", version="1")
    tracked.predict(X[:2])
    tracked.set_params(version="2", name="renamed")
    tracked.predict(X[:2])
    spans = aither_capture.predictions()
    assert [(s.model_name, s.attributes["ml.model.version"]) for s in spans] == [
        ("clf", "1"),
        ("renamed", "2"),
    ]


def test_clone_gives_an_unfitted_copy_with_the_same_options(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    tracked = aither.wrap(LogisticRegression(max_iter=3000).fit(X, y), name="clf", environment="prod")
    copy = clone(tracked)
    assert copy.name == "clf" and copy.environment == "prod"
    assert not hasattr(copy.estimator, "coef_")
    copy.fit(X, y)
    copy.predict(X[:3])
    (span,) = aither_capture.predictions()
    assert span.model_name == "clf" and span.attributes["ml.environment"] == "prod"


def test_fit_leaves_the_estimator_parameter_untouched(breast_cancer: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = breast_cancer
    inner = LogisticRegression(max_iter=3000)
    tracked = TrackedEstimator(inner, name="clf").fit(X, y)
    assert not hasattr(inner, "coef_")
    assert hasattr(tracked.estimator_, "coef_")
    assert tracked.model is tracked.estimator_


@pytest.mark.parametrize("dump", ["pickle", "joblib"])
def test_pickle_and_joblib_round_trips_keep_logging(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture, dump: str
) -> None:
    X, y = breast_cancer
    tracked = aither.wrap(LogisticRegression(max_iter=3000).fit(X, y), name="persisted", version="7")
    tracked.predict(X[:1])
    if dump == "pickle":
        restored = pickle.loads(pickle.dumps(tracked))
    else:
        buffer = io.BytesIO()
        joblib.dump(tracked, buffer)
        buffer.seek(0)
        restored = joblib.load(buffer)
    np.testing.assert_array_equal(restored.predict(X[:5]), tracked.predict(X[:5]))
    spans = aither_capture.predictions()
    assert len(spans) == 3
    assert {s.model_name for s in spans} == {"persisted"}
    assert restored.last_trace_id == spans[1].trace_id
    assert restored.trace_ids == [spans[1].trace_id]


def test_tracked_step_inside_a_pipeline_logs_the_transformed_features(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    pipe = Pipeline(
        [("scale", StandardScaler()), ("clf", aither.wrap(LogisticRegression(max_iter=3000), name="inner"))]
    )
    pipe.fit(X, y)
    pipe.predict(X[:3])
    (span,) = aither_capture.predictions()
    assert span.model_name == "inner"
    sample = span.features["sample"]
    scaled = StandardScaler().fit(X).transform(X[:3])
    assert sample[0]["0"] == pytest.approx(scaled[0, 0])
    assert span.prediction == pipe.predict(X[:3]).tolist()


def test_wrapped_pipeline_with_pandas_input_logs_column_names(aither_capture: SpanCapture) -> None:
    frame = pd.DataFrame({"amount": [10.0, 250.0, 31.5, 99.0], "country": ["US", "DE", "US", "FR"]})
    target = [0, 1, 0, 1]
    encode = ColumnTransformer([("num", StandardScaler(), ["amount"])], remainder="drop")
    tracked = aither.wrap(make_pipeline(encode, LogisticRegression()).fit(frame, target), name="fraud")
    tracked.predict(frame)
    (span,) = aither_capture.predictions()
    meta = span.features["_meta"]
    assert meta["type"] == "pandas.DataFrame"
    assert meta["columns"] == ["amount", "country"]
    assert meta["dtypes"]["amount"] == "float64"
    assert span.features["sample"][1] == {"amount": 250.0, "country": "DE"}
    assert span.attributes["ml.batch_size"] == 4


def test_tags_make_it_a_classifier_or_regressor_like_its_estimator() -> None:
    assert is_classifier(TrackedEstimator(LogisticRegression(), name="c"))
    assert is_regressor(TrackedEstimator(LinearRegression(), name="r"))


def test_cross_validation_and_grid_search_work_on_the_wrapper(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    tracked = TrackedEstimator(RandomForestClassifier(n_estimators=5, random_state=0), name="rf")
    scores = cross_val_score(tracked, X, y, cv=3)
    assert scores.mean() > 0.85
    search = GridSearchCV(tracked, {"estimator__max_depth": [2, 4]}, cv=2).fit(X, y)
    assert search.best_params_["estimator__max_depth"] in (2, 4)


def test_calling_the_tracked_estimator_predicts(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    X, y = breast_cancer
    tracked = aither.wrap(LogisticRegression(max_iter=3000).fit(X, y), name="clf")
    np.testing.assert_array_equal(tracked(X[:4]), tracked.predict(X[:4]))
    assert [s.name for s in aither_capture.predictions()] == ["predict", "predict"]


def test_methods_the_estimator_lacks_are_absent() -> None:
    tracked = aither.wrap(LinearRegression(), name="reg")
    assert not hasattr(tracked, "predict_proba")
    assert hasattr(tracked, "predict")


def test_sklearn_estimator_checks_pass() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(TrackedEstimator(LogisticRegression(), name="checked"), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])) for r in results if r["status"] == "failed"]
    assert failed == []
    assert len(results) > 50


def test_predictions_reach_a_real_receiver_as_otlp(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_receiver: OTLPReceiver
) -> None:
    X, y = breast_cancer
    tracked = aither.wrap(RandomForestClassifier(n_estimators=5, random_state=0).fit(X, y), name="fraud_detector")
    predictions = tracked.predict(X[:20])
    probabilities = tracked.predict_proba(X[:1])
    aither.log_label(tracked.trace_ids[0], y[:20])
    assert aither.flush(timeout=10)
    spans = aither_receiver.spans
    assert [s.name for s in spans] == ["predict", "predict_proba", "label"]
    assert spans[0].prediction == predictions.tolist()
    assert spans[1].prediction == probabilities.tolist()
    assert spans[2].label == y[:20].tolist()
    assert spans[2].trace_id == spans[0].trace_id
    assert aither_receiver.requests[0].headers["authorization"] == "Bearer aith_test_key"


def test_a_native_xgboost_booster_gets_the_generic_wrapper(
    breast_cancer: tuple[np.ndarray, np.ndarray], aither_capture: SpanCapture
) -> None:
    import xgboost

    X, y = breast_cancer
    booster = xgboost.train({"max_depth": 2}, xgboost.DMatrix(X, label=y), num_boost_round=2)
    tracked = aither.wrap(booster, name="booster")
    assert isinstance(tracked, aither.TrackedModel)
    tracked.predict(xgboost.DMatrix(X[:3]))
    (span,) = aither_capture.predictions()
    assert span.attributes["ml.framework"] == "generic"
    assert len(span.prediction) == 3


def test_the_meta_estimator_spells_the_wrap_options_as_core_does() -> None:
    from aither.testing import assert_wrap_options_signature
    from aither_sklearn import TrackedEstimator

    assert_wrap_options_signature(TrackedEstimator.__init__, optional_name=True)
