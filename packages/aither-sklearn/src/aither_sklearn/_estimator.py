"""``TrackedEstimator``: a scikit-learn meta-estimator that logs every prediction of the estimator it wraps."""

from __future__ import annotations

import copy
import logging
import time
import warnings
import weakref
from collections.abc import Callable
from typing import Any, TypeVar, cast

import sklearn
from aither.integrations import ModelLogger, TraceIdsMixin, WrapOptions
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone
from sklearn.utils import get_tags
from sklearn.utils.metaestimators import available_if

from ._integration import framework_of

__all__ = ["TrackedEstimator"]

logger = logging.getLogger("aither")

_MIN_SKLEARN = (1, 5)


def _version_tuple(version: str) -> tuple[int, ...]:
    parts: list[int] = []
    for piece in version.split(".")[:2]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


if _version_tuple(sklearn.__version__) < _MIN_SKLEARN:
    warnings.warn(
        f"aither-sklearn supports scikit-learn >= {'.'.join(map(str, _MIN_SKLEARN))}, "
        f"found {sklearn.__version__}; predictions may not be logged correctly",
        stacklevel=2,
    )


#: Each tracked estimator's (logging options, ModelLogger). Trace-id history is not part of the model: it is
#: neither pickled nor cloned.
_loggers: weakref.WeakKeyDictionary[TrackedEstimator, tuple[tuple[Any, ...], ModelLogger]] = weakref.WeakKeyDictionary()


F = TypeVar("F", bound=Callable[..., Any])


def _if_estimator_has(method: str) -> Callable[[F], F]:
    """scikit-learn's ``available_if``: the wrapper has ``method`` exactly when the estimator in use has it."""

    def check(self: TrackedEstimator) -> bool:
        return hasattr(self.model, method)

    return cast("Callable[[F], F]", available_if(check))


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
        estimator: Any = None,
        *,
        name: str | None = None,
        version: str | None = None,
        environment: str | None = None,
        sample_rows: int = 5,
        sample_columns: int = 10,
        features_fn: Callable[[Any], Any] | None = None,
    ) -> None:
        # scikit-learn convention: store parameters unchanged, validate on use.
        self.estimator = estimator
        self.name = name
        self.version = version
        self.environment = environment
        self.sample_rows = sample_rows
        self.sample_columns = sample_columns
        self.features_fn = features_fn

    # ------------------------------------------------------------------ logging state

    def _options(self) -> WrapOptions:
        name = self.name or type(self.estimator).__name__
        return WrapOptions(
            name, self.version, self.environment, self.sample_rows, self.sample_columns, self.features_fn
        )

    @property
    def _aither(self) -> ModelLogger:  # type: ignore[override]
        """The logger for the current parameters; rebuilt when ``set_params`` changes them.

        Kept outside the instance ``__dict__``: scikit-learn requires predict() to leave ``__dict__`` unchanged.
        """
        key = (
            self.name,
            self.version,
            self.environment,
            self.sample_rows,
            self.sample_columns,
            self.features_fn,
        )
        state = _loggers.get(self)
        if state is None or state[0] != key:
            state = (key, ModelLogger(self._options(), framework_of(self.model)))
            _loggers[self] = state
        return state[1]

    def _call(self, method: str, X: Any, params: dict[str, Any]) -> Any:
        model_logger = self._aither
        function = getattr(self.model, method)
        start_ns = time.time_ns()
        try:
            output = function(X, **params)
        except Exception as exc:
            model_logger.record(method, X, None, start_ns, error=exc)
            raise
        model_logger.record(method, X, output, start_ns)
        return output

    # ------------------------------------------------------------------ the estimator API

    @property
    def model(self) -> Any:
        """The estimator in use: ``estimator_`` after ``fit``, else the one passed to ``aither.wrap``."""
        fitted = self.__dict__.get("estimator_")
        return self.estimator if fitted is None else fitted

    def unwrap(self) -> Any:
        return self.model

    def fit(self, X: Any, y: Any = None, **fit_params: Any) -> TrackedEstimator:
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        return self

    @_if_estimator_has("predict")
    def predict(self, X: Any, **params: Any) -> Any:
        return self._call("predict", X, params)

    @_if_estimator_has("predict_proba")
    def predict_proba(self, X: Any, **params: Any) -> Any:
        return self._call("predict_proba", X, params)

    @_if_estimator_has("predict_log_proba")
    def predict_log_proba(self, X: Any, **params: Any) -> Any:
        return self._call("predict_log_proba", X, params)

    @_if_estimator_has("decision_function")
    def decision_function(self, X: Any, **params: Any) -> Any:
        return self._call("decision_function", X, params)

    @_if_estimator_has("transform")
    def transform(self, X: Any, **params: Any) -> Any:
        return self._call("transform", X, params)

    @_if_estimator_has("fit_transform")
    def fit_transform(self, X: Any, y: Any = None, **fit_params: Any) -> Any:
        # Fitting is not a prediction: not logged.
        self.estimator_ = clone(self.estimator)
        return self.estimator_.fit_transform(X, y, **fit_params)

    @_if_estimator_has("score")
    def score(self, X: Any, y: Any, **params: Any) -> Any:
        # Evaluation, not serving: the estimator's own score, not logged.
        return self.model.score(X, y, **params)

    def __call__(self, X: Any, **params: Any) -> Any:
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

    def __sklearn_tags__(self) -> Any:
        # A transparent wrapper: it is a classifier/regressor/transformer exactly when the estimator is.
        tags = super().__sklearn_tags__()
        if self.estimator is None:
            return tags
        inner = copy.deepcopy(get_tags(self.model))
        inner.input_tags = tags.input_tags if inner.input_tags is None else inner.input_tags
        return inner
