"""``aither.models``: typed reads of the query API, so a notebook can ask what the server knows of a model.

``aither.models.list()``, ``.metrics(name)``, ``.performance(name)``, ``.drift(name)``, ``.data_quality(name)``,
``.predictions(name)`` return frozen snapshots (docs/management-api.md, docs/drift.md). Blocking HTTP through
the management client: the same key, base URL, errors and timeouts.
"""

from __future__ import annotations

import builtins
import dataclasses
import datetime
from collections.abc import Mapping
from typing import TypedDict
from urllib.parse import quote, urlencode

from ._answers import (
    JsonObject,
    as_mapping,
    as_object,
    data_list,
    integer,
    number,
    numbers,
    objects,
    optional_integer,
    optional_number,
    optional_text,
    parse_time,
    parsing_answer,
    texts,
)
from ._management import ManagementClient, _Namespace

__all__ = [
    "ColumnDrift",
    "ColumnQuality",
    "DataQuality",
    "DriftReport",
    "Estimate",
    "Metrics",
    "Model",
    "Models",
    "PerformancePoint",
    "Prediction",
    "QualityPoint",
    "Segment",
    "Segments",
    "models",
]

Moment = datetime.datetime | str | None


@dataclasses.dataclass(frozen=True)
class Model:
    name: str
    versions: tuple[str, ...]
    environments: tuple[str, ...]
    first_seen: datetime.datetime | None
    last_seen: datetime.datetime | None
    calls: int
    predictions: int


@dataclasses.dataclass(frozen=True)
class Metrics:
    """Volume, errors, latency, label coverage and quality of a model over a window."""

    model: str
    task: str | None
    calls: int
    predictions: int
    labels: int
    errors: int
    label_coverage: float | None
    error_rate: float | None
    latency_ms: Mapping[str, float | None]
    accuracy: float | None
    precision: float | None
    recall: float | None
    f1: float | None
    auc: float | None
    mae: float | None
    rmse: float | None
    volume: tuple[JsonObject, ...]


@dataclasses.dataclass(frozen=True)
class ColumnDrift:
    name: str
    kind: str
    method: str | None
    score: float | None
    threshold: float | None
    drifted: bool
    reference_count: int
    current_count: int
    statistics: Mapping[str, float | None]


@dataclasses.dataclass(frozen=True)
class DriftReport:
    model: str
    reference: JsonObject
    window: JsonObject
    features: tuple[ColumnDrift, ...]
    prediction: ColumnDrift | None
    #: The model's embedding drift (a domain classifier's ROC AUC), when it sends embeddings (docs/drift.md).
    embeddings: ColumnDrift | None = None

    @property
    def drifted(self) -> builtins.list[str]:
        """The names of the columns that drifted."""
        return [f.name for f in self.features if f.drifted]


@dataclasses.dataclass(frozen=True)
class ColumnQuality:
    name: str
    dtype: str | None
    reference_dtype: str | None
    dtype_changed: bool
    null_rate: float | None
    reference_null_rate: float | None
    out_of_range_rate: float | None
    unseen_category_rate: float | None


@dataclasses.dataclass(frozen=True)
class DataQuality:
    model: str
    features: tuple[ColumnQuality, ...]
    new_columns: tuple[str, ...]
    missing_columns: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class QualityPoint:
    """The quality metrics of one time bucket, with the labelled rows behind them."""

    start: datetime.datetime | None
    end: datetime.datetime | None
    predictions: int
    labels: int
    task: str | None
    accuracy: float | None
    f1: float | None
    auc: float | None
    mae: float | None
    rmse: float | None


@dataclasses.dataclass(frozen=True)
class Estimate:
    """An estimated figure with its sampling error (one standard deviation) and band (plus or minus three)."""

    value: float | None
    sampling_error: float | None
    low: float | None
    high: float | None


@dataclasses.dataclass(frozen=True)
class PerformancePoint:
    """One slice's estimated performance (docs/estimated-performance.md) beside its realized one.

    ``estimated`` and ``realized`` are keyed by metric: ``accuracy``, ``precision``, ``recall``, ``f1``,
    ``auc`` (classifiers) or ``mae``, ``rmse`` (regressors); ``realized`` is empty while the slice waits for
    labels."""

    start: datetime.datetime | None
    end: datetime.datetime | None
    rows: int
    labels: int
    waiting_for_labels: bool
    estimated: Mapping[str, Estimate]
    estimated_confusion_matrix: tuple[tuple[float, ...], ...] | None
    realized: Mapping[str, float | None]


_PERFORMANCE = ("accuracy", "precision", "recall", "f1", "auc", "mae", "rmse")


def _performance_point(p: JsonObject) -> PerformancePoint:
    estimated = as_mapping(p.get("estimated") or {})
    realized = numbers(p.get("realized"))
    figures = {}
    for metric in _PERFORMANCE:
        found = estimated.get(metric)
        if isinstance(found, Mapping):
            low, high = _band(found.get("band"))
            figures[metric] = Estimate(
                optional_number(found.get("value")), optional_number(found.get("sampling_error")), low, high
            )
    matrix = estimated.get("confusion_matrix")
    return PerformancePoint(
        start=parse_time(p.get("start")),
        end=parse_time(p.get("end")),
        rows=integer(p.get("rows") or 0),
        labels=integer(p.get("labels") or 0),
        waiting_for_labels=bool(p.get("waiting_for_labels")),
        estimated=figures,
        estimated_confusion_matrix=None if matrix is None else _matrix(matrix),
        realized={metric: realized[metric] for metric in _PERFORMANCE if metric in realized},
    )


def _band(value: object) -> tuple[float | None, float | None]:
    if not value:
        return None, None
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"expected a band [low, high], got {type(value).__name__}")
    return optional_number(value[0]), optional_number(value[1])


def _matrix(value: object) -> tuple[tuple[float, ...], ...]:
    if not isinstance(value, list) or not all(isinstance(row, list) for row in value):
        raise TypeError("expected a confusion matrix (a list of rows)")
    return tuple(tuple(number(v) for v in row) for row in value)


@dataclasses.dataclass(frozen=True)
class Segment:
    """One value (or numeric range) of a feature, the labelled sampled rows that had it, and their quality."""

    value: str
    rows: int
    accuracy: float | None
    f1: float | None
    mae: float | None
    rmse: float | None


@dataclasses.dataclass(frozen=True)
class Segments:
    feature: str
    kind: str
    rows: int
    segments: tuple[Segment, ...]


@dataclasses.dataclass(frozen=True)
class Prediction:
    trace_id: str
    model: str
    version: str | None
    environment: str | None
    start_time: datetime.datetime | None
    latency_ms: float
    status: str
    batch_size: int | None
    #: The sample and the output as the server stored them (JSON: the shape the model's input and output had).
    features: object
    prediction: object
    labels: JsonObject
    sampled_rows: tuple[JsonObject, ...]


def _iso(moment: Moment) -> str | None:
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def _filters(version: str | None, environment: str | None, start: Moment, end: Moment) -> dict[str, str | None]:
    """The query parameters that pick the predictions a reader looks at, in the order they are sent."""
    return {"version": version, "environment": environment, "start": _iso(start), "end": _iso(end)}


def _path(name: str, tail: str, **params: str | int | None) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/api/v1/models/{quote(name, safe='')}/{tail}" + (f"?{query}" if query else "")


def _model(m: JsonObject) -> Model:
    first_seen, last_seen = parse_time(m.get("first_seen")), parse_time(m.get("last_seen"))
    return Model(
        name=str(m["name"]),
        versions=texts(m.get("versions")),
        environments=texts(m.get("environments")),
        first_seen=first_seen,
        last_seen=last_seen,
        calls=integer(m.get("calls") or 0),
        predictions=integer(m.get("predictions") or 0),
    )


def _column_drift(data: JsonObject) -> ColumnDrift:
    name, kind = str(data["name"]), str(data["kind"])
    return ColumnDrift(
        name=name,
        kind=kind,
        method=optional_text(data.get("method")),
        score=optional_number(data.get("score")),
        threshold=optional_number(data.get("threshold")),
        drifted=bool(data.get("drifted")),
        reference_count=integer(data.get("reference_count") or 0),
        current_count=integer(data.get("current_count") or 0),
        statistics=numbers(data.get("statistics")),
    )


class _Scores(TypedDict):
    """The quality figures every scored slice has (a segment, a time bucket, a window)."""

    accuracy: float | None
    f1: float | None
    mae: float | None
    rmse: float | None


def _scores(data: JsonObject) -> _Scores:
    return {
        "accuracy": optional_number(data.get("accuracy")),
        "f1": optional_number(data.get("f1")),
        "mae": optional_number(data.get("mae")),
        "rmse": optional_number(data.get("rmse")),
    }


def _segment(g: JsonObject) -> Segment:
    return Segment(value=str(g["value"]), rows=integer(g["rows"]), **_scores(g))


def _column_quality(f: JsonObject) -> ColumnQuality:
    def rate(key: str) -> float | None:
        return optional_number(f.get(key))

    return ColumnQuality(
        name=str(f["name"]),
        dtype=optional_text(f.get("dtype")),
        reference_dtype=optional_text(f.get("reference_dtype")),
        dtype_changed=bool(f.get("dtype_changed")),
        null_rate=rate("null_rate"),
        reference_null_rate=rate("reference_null_rate"),
        out_of_range_rate=rate("out_of_range_rate"),
        unseen_category_rate=rate("unseen_category_rate"),
    )


def _required_objects(value: object) -> builtins.list[JsonObject]:
    """A list the answer must hold, of objects (``TypeError`` for anything else, read as an invalid answer)."""
    if not isinstance(value, builtins.list) or not all(isinstance(item, Mapping) for item in value):
        raise TypeError("expected a list of objects")
    return [item for item in value if isinstance(item, Mapping)]


class Models(_Namespace):
    """``aither.models``: the models the server knows, and what it knows of each."""

    def __repr__(self) -> str:
        return "<aither.models>"

    def _get(self, path: str) -> JsonObject:
        return as_object(self._client.request("GET", path))

    def list(self) -> builtins.list[Model]:
        return [_model(m) for m in data_list(self._get("/api/v1/models"), "model list")]

    def metrics(
        self,
        name: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
        end: Moment = None,
        bucket: str | None = None,
    ) -> Metrics:
        data = self._get(_path(name, "metrics", **_filters(version, environment, start, end), bucket=bucket))
        with parsing_answer("invalid metrics"):
            return Metrics(
                model=str(data["model"]),
                task=optional_text(data.get("task")),
                calls=integer(data["calls"]),
                predictions=integer(data["predictions"]),
                labels=integer(data["labels"]),
                errors=integer(data["errors"]),
                label_coverage=optional_number(data.get("label_coverage")),
                error_rate=optional_number(data.get("error_rate")),
                latency_ms=numbers(data.get("latency_ms")),
                **_scores(data),
                precision=optional_number(data.get("precision")),
                recall=optional_number(data.get("recall")),
                auc=optional_number(data.get("auc")),
                volume=objects(data.get("volume")),
            )

    def drift(
        self,
        name: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
        end: Moment = None,
        reference: str | None = None,
        method: str | None = None,
    ) -> DriftReport:
        """Per-column drift of the window against a reference (docs/drift.md)."""
        path = _path(name, "drift", **_filters(version, environment, start, end), reference=reference, method=method)
        data = self._get(path)
        with parsing_answer("an invalid drift report"):
            prediction = data.get("prediction")
            embeddings = data.get("embeddings")
            return DriftReport(
                model=str(data["model"]),
                reference=dict(as_mapping(data.get("reference") or {})),
                window=dict(as_mapping(data.get("window") or {})),
                features=tuple(_column_drift(f) for f in _required_objects(data["features"])),
                prediction=None if not isinstance(prediction, Mapping) else _column_drift(prediction),
                embeddings=None if not isinstance(embeddings, Mapping) else _column_drift(embeddings),
            )

    def data_quality(
        self,
        name: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
        end: Moment = None,
        reference: str | None = None,
    ) -> DataQuality:
        data = self._get(_path(name, "data-quality", **_filters(version, environment, start, end), reference=reference))
        with parsing_answer("an invalid data-quality report"):
            return DataQuality(
                model=str(data["model"]),
                features=tuple(_column_quality(f) for f in _required_objects(data["features"])),
                new_columns=texts(data.get("new_columns")),
                missing_columns=texts(data.get("missing_columns")),
            )

    def metrics_series(
        self,
        name: str,
        *,
        bucket: str = "1d",
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
        end: Moment = None,
    ) -> builtins.list[QualityPoint]:
        """The quality metrics per time bucket (docs/drift.md, "Quality over time and by segment")."""
        path = _path(name, "metrics/series", bucket=bucket, **_filters(version, environment, start, end))
        # Here the request stands inside too, as it always has: a KeyError, TypeError or ValueError it raises
        # (a key httpx cannot encode, say) reads as an invalid series, where the other readers let it through.
        with parsing_answer("an invalid series"):
            return [
                QualityPoint(
                    start=parse_time(p.get("start")),
                    end=parse_time(p.get("end")),
                    predictions=integer(p.get("predictions") or 0),
                    labels=integer(p.get("labels") or 0),
                    task=optional_text(p.get("task")),
                    auc=optional_number(p.get("auc")),
                    **_scores(p),
                )
                for p in _required_objects(self._get(path)["points"])
            ]

    def performance(
        self,
        name: str,
        *,
        bucket: str = "1h",
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
        end: Moment = None,
    ) -> builtins.list[PerformancePoint]:
        """Estimated performance per slice beside the realized one (docs/estimated-performance.md); empty until
        a reference with the model's scores and labels is logged (``aither.log_reference(..., predictions=,
        labels=)``)."""
        path = _path(name, "performance", bucket=bucket, **_filters(version, environment, start, end))
        answer = self._get(path)
        with parsing_answer("an invalid performance answer"):
            return [_performance_point(p) for p in _required_objects(answer["points"])]

    def segments(
        self,
        name: str,
        feature: str,
        *,
        version: str | None = None,
        environment: str | None = None,
        start: Moment = None,
    ) -> Segments:
        """Quality by the values of ``feature``, over the labelled sampled rows of the newest predictions."""
        path = _path(name, "segments", feature=feature, version=version, environment=environment, start=_iso(start))
        data = self._get(path)
        with parsing_answer("invalid segments"):
            return Segments(
                feature=str(data["feature"]),
                kind=str(data["kind"]),
                rows=integer(data["rows"]),
                segments=tuple(_segment(g) for g in _required_objects(data["segments"])),
            )

    def predictions(
        self, name: str, *, limit: int = 50, version: str | None = None, environment: str | None = None
    ) -> builtins.list[Prediction]:
        """The newest predictions of a model, with their labels and sampled rows."""
        path = _path(name, "predictions", limit=limit, version=version, environment=environment)
        return [
            Prediction(
                trace_id=str(p["trace_id"]),
                model=str(p["model"]),
                version=optional_text(p.get("version")),
                environment=optional_text(p.get("environment")),
                start_time=parse_time(p.get("start_time")),
                latency_ms=number(p.get("latency_ms") or 0.0),
                status=str(p.get("status")),
                batch_size=optional_integer(p.get("batch_size")),
                features=p.get("features"),
                prediction=p.get("prediction"),
                labels=dict(as_mapping(p.get("labels") or {})),
                sampled_rows=objects(p.get("sampled_rows")),
            )
            for p in data_list(self._get(path), "prediction list")
        ]


def _default() -> Models:
    return Models(ManagementClient())


models = _default()
