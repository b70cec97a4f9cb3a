"""``TrackedEstimator``: a scikit-learn meta-estimator that logs every prediction of the estimator it wraps."""

from __future__ import annotations

import copy
import logging
import types
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from aither.integrations import WRAP_OPTIONS, ModelLogger, TraceIdsMixin, WrapOptions, require_framework

from ._names import framework_of

# A clear error naming the extra before the imports below fail; warns once outside the supported versions.
require_framework("sklearn", plugin="aither-sklearn", distribution="scikit-learn")

from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone  # noqa: E402
from sklearn.utils import get_tags  # noqa: E402

if TYPE_CHECKING:
    from sklearn.utils import Tags

__all__ = ["TrackedEstimator"]

logger = logging.getLogger("aither")


#: Attributes the logger depends on: setting one (``set_params``, ``fit``) drops the cached logger.
_LOGGER_INPUTS = frozenset({"estimator", "estimator_", *WRAP_OPTIONS})


F = TypeVar("F", bound=Callable[..., object])
_T = TypeVar("_T")


class _IfEstimatorHas:
    """The wrapper has the method exactly when the estimator in use has it (``hasattr`` says so too).

    scikit-learn's ``available_if`` does the same, but formats its error message on every successful lookup;
    this sits on the path of every prediction, so it only builds the message when the method is missing.
    """

    def __init__(self, function: Callable[..., object], method: str) -> None:
        self.function = function
        self.method = method
        self.__doc__ = function.__doc__
        self.__name__ = function.__name__
        self.__wrapped__ = function

    def __get__(self, instance: TrackedEstimator | None, owner: type | None = None) -> Callable[..., object]:
        if instance is None:
            return self.function
        state = instance.__dict__
        model = state.get("estimator_", state.get("estimator"))
        if not hasattr(model, self.method):
            raise AttributeError(
                f"{type(model).__name__!r} has no attribute {self.method!r}, so neither does the wrapper"
            )
        return types.MethodType(self.function, instance)


def _if_estimator_has(method: str) -> Callable[[F], F]:
    def decorate(function: F) -> F:
        return cast("F", _IfEstimatorHas(function, method))

    return decorate


class TrackedEstimator(MetaEstimatorMixin, TraceIdsMixin, BaseEstimator):  # type: ignore[misc]
    """Wraps a (fitted or unfitted) estimator; its prediction methods are logged, everything else is its own.

    A fitted estimator wrapped for serving is used as it is. ``fit`` follows scikit-learn's meta-estimator rules:
    it fits a clone into ``estimator_`` and leaves the ``estimator`` parameter untouched, and predictions then
    use ``estimator_``. ``clone`` gives an unfitted copy with the same logging options.
    Attributes the wrapper does not have (``classes_``, ``n_features_in_``, ``feature_importances_``...) are
    read from the estimator in use.
    """

    def __init__(
        self,
        estimator: BaseEstimator | None = None,
        *,
        name: str | None = None,
        version: str | None = None,
        environment: str | None = None,
        sample_rows: int = 5,
        sample_columns: int = 10,
        features_fn: Callable[[Any], object] | None = None,
        feature_names: Sequence[str] | None = None,
        task: str | None = None,
        column_policies: Mapping[str, str] | None = None,
        embeddings: bool | str = False,
    ) -> None:
        # scikit-learn convention: store parameters unchanged, validate on use.
        self.estimator = estimator
        self.name = name
        self.version = version
        self.environment = environment
        self.sample_rows = sample_rows
        self.sample_columns = sample_columns
        self.features_fn = features_fn
        self.feature_names = feature_names
        self.task = task
        self.column_policies = column_policies
        self.embeddings = embeddings

    # ------------------------------------------------------------------ logging state

    def _options(self) -> WrapOptions:
        options = {option: getattr(self, option) for option in WRAP_OPTIONS}
        options["name"] = self.name or type(self.estimator).__name__
        return WrapOptions(**options)

    @property
    def _aither(self) -> ModelLogger:  # type: ignore[override]
        """The logger for the current parameters, cached in ``__dict__`` until one of them is set again.

        ``fit`` and ``aither.wrap`` build it, so ``predict`` leaves ``__dict__`` unchanged (a scikit-learn rule);
        the cache is a dict lookup on the prediction path instead of comparing every parameter.
        """
        model_logger: ModelLogger | None = self.__dict__.get("_aither_logger")
        if model_logger is None:
            model_logger = ModelLogger(self._options(), framework_of(self.model))
            self.__dict__["_aither_logger"] = model_logger
        return model_logger

    def __setattr__(self, name: str, value: object) -> None:
        super().__setattr__(name, value)
        if name in _LOGGER_INPUTS:
            self.__dict__.pop("_aither_logger", None)

    def _call(self, method: str, function: Callable[..., _T], X: object, params: dict[str, object]) -> _T:
        return self._aither.call(method, function, (X,), params, inputs=X)

    # ------------------------------------------------------------------ the estimator API

    @property
    def model(self) -> BaseEstimator:
        """The estimator in use: ``estimator_`` after ``fit``, else the one passed to ``aither.wrap``."""
        fitted = self.__dict__.get("estimator_")
        return self.estimator if fitted is None else fitted

    def unwrap(self) -> BaseEstimator:
        return self.model

    def fit(self, X: object, y: object = None, **fit_params: object) -> TrackedEstimator:
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self._aither  # noqa: B018 - build the logger now, not during the first predict
        return self

    # The methods below return the estimator's own output (an array, a DataFrame under ``set_output``...): the
    # caller reads it, so it stays untyped.
    @_if_estimator_has("predict")
    def predict(self, X: object, **params: object) -> Any:
        return self._call("predict", self.model.predict, X, params)

    @_if_estimator_has("predict_proba")
    def predict_proba(self, X: object, **params: object) -> Any:
        return self._call("predict_proba", self.model.predict_proba, X, params)

    @_if_estimator_has("predict_log_proba")
    def predict_log_proba(self, X: object, **params: object) -> Any:
        return self._call("predict_log_proba", self.model.predict_log_proba, X, params)

    @_if_estimator_has("decision_function")
    def decision_function(self, X: object, **params: object) -> Any:
        return self._call("decision_function", self.model.decision_function, X, params)

    @_if_estimator_has("transform")
    def transform(self, X: object, **params: object) -> Any:
        return self._call("transform", self.model.transform, X, params)

    @_if_estimator_has("fit_transform")
    def fit_transform(self, X: object, y: object = None, **fit_params: object) -> Any:
        # Fitting is not a prediction: not logged.
        self.estimator_ = clone(self.estimator)
        output = self.estimator_.fit_transform(X, y, **fit_params)
        self._aither  # noqa: B018 - build the logger now, not during the first transform
        return output

    @_if_estimator_has("score")
    def score(self, X: object, y: object, **params: object) -> float:
        # Evaluation, not serving: the estimator's own score, not logged.
        score: float = self.model.score(X, y, **params)
        return score

    def __call__(self, X: object, **params: object) -> Any:
        """``tracked(X)`` is ``tracked.predict(X)``, as the seed README promises for every wrapped model."""
        return self.predict(X, **params)

    # ------------------------------------------------------------------ transparency

    def __getattr__(self, name: str) -> Any:
        # Reached only for attributes the wrapper lacks. Never for dunders or during unpickling/cloning,
        # when ``estimator`` may not be set yet.
        if name.startswith("__") or name in ("estimator", "estimator_"):
            raise AttributeError(name)
        estimator = self.__dict__.get("estimator_", self.__dict__.get("estimator"))
        if estimator is None:
            raise AttributeError(name)
        return getattr(estimator, name)

    def __sklearn_is_fitted__(self) -> bool:
        from sklearn.exceptions import NotFittedError
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(self.model)
        except NotFittedError:
            return False
        return True

    def __sklearn_tags__(self) -> Tags:
        # A transparent wrapper: it is a classifier/regressor/transformer exactly when the estimator is.
        tags = super().__sklearn_tags__()
        if self.estimator is None:
            return tags
        inner = copy.deepcopy(get_tags(self.model))
        inner.input_tags = tags.input_tags if inner.input_tags is None else inner.input_tags
        return inner
