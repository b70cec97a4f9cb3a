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
from typing import Any
from urllib.parse import quote, urlencode

from ._answers import data_list, parsing_answer
from ._management import ManagementClient, _Namespace, _object, _parse_time

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
    volume: tuple[Mapping[str, Any], ...]


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
    reference: Mapping[str, Any]
    window: Mapping[str, Any]
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


def _performance_point(p: Mapping[str, Any]) -> PerformancePoint:
    estimated = p.get("estimated") or {}
    realized = p.get("realized") or {}
    figures = {}
    for metric in _PERFORMANCE:
        found = estimated.get(metric)
        if isinstance(found, Mapping):
            band = found.get("band") or (None, None)
            figures[metric] = Estimate(found.get("value"), found.get("sampling_error"), band[0], band[1])
    matrix = estimated.get("confusion_matrix")
    return PerformancePoint(
        start=_parse_time(p.get("start")),
        end=_parse_time(p.get("end")),
        rows=int(p.get("rows") or 0),
        labels=int(p.get("labels") or 0),
        waiting_for_labels=bool(p.get("waiting_for_labels")),
        estimated=figures,
        estimated_confusion_matrix=None if matrix is None else tuple(tuple(float(v) for v in r) for r in matrix),
        realized={metric: realized.get(metric) for metric in _PERFORMANCE if metric in realized},
    )


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
    features: Any
    prediction: Any
    labels: Mapping[str, Any]
    sampled_rows: tuple[Mapping[str, Any], ...]


def _iso(moment: Moment) -> str | None:
    if moment is None or isinstance(moment, str):
        return moment
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment.isoformat()


def _filters(version: str | None, environment: str | None, start: Moment, end: Moment) -> dict[str, Any]:
    """The query parameters that pick the predictions a reader looks at, in the order they are sent."""
    return {"version": version, "environment": environment, "start": _iso(start), "end": _iso(end)}


def _path(name: str, tail: str, **params: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError("name must be a non-empty string")
    query = urlencode({k: v for k, v in params.items() if v is not None})
    return f"/api/v1/models/{quote(name, safe='')}/{tail}" + (f"?{query}" if query else "")


def _column_drift(data: Mapping[str, Any]) -> ColumnDrift:
    return ColumnDrift(
        name=str(data["name"]),
        kind=str(data["kind"]),
        method=data.get("method"),
        score=data.get("score"),
        threshold=data.get("threshold"),
        drifted=bool(data.get("drifted")),
        reference_count=int(data.get("reference_count") or 0),
        current_count=int(data.get("current_count") or 0),
        statistics=dict(data.get("statistics") or {}),
    )


class Models(_Namespace):
    """``aither.models``: the models the server knows, and what it knows of each."""

    def __repr__(self) -> str:
        return "<aither.models>"

    def _get(self, path: str) -> Mapping[str, Any]:
        return _object(self._client.request("GET", path))

    def list(self) -> builtins.list[Model]:
        return [
            Model(
                name=str(m["name"]),
                versions=tuple(m.get("versions") or ()),
                environments=tuple(m.get("environments") or ()),
                first_seen=_parse_time(m.get("first_seen")),
                last_seen=_parse_time(m.get("last_seen")),
                calls=int(m.get("calls") or 0),
                predictions=int(m.get("predictions") or 0),
            )
            for m in data_list(self._get("/api/v1/models"), "model list")
        ]

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
                task=data.get("task"),
                calls=int(data["calls"]),
                predictions=int(data["predictions"]),
                labels=int(data["labels"]),
                errors=int(data["errors"]),
                label_coverage=data.get("label_coverage"),
                error_rate=data.get("error_rate"),
                latency_ms=dict(data.get("latency_ms") or {}),
                accuracy=data.get("accuracy"),
                precision=data.get("precision"),
                recall=data.get("recall"),
                f1=data.get("f1"),
                auc=data.get("auc"),
                mae=data.get("mae"),
                rmse=data.get("rmse"),
                volume=tuple(data.get("volume") or ()),
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
                reference=dict(data.get("reference") or {}),
                window=dict(data.get("window") or {}),
                features=tuple(_column_drift(f) for f in data["features"]),
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
                features=tuple(
                    ColumnQuality(
                        name=str(f["name"]),
                        dtype=f.get("dtype"),
                        reference_dtype=f.get("reference_dtype"),
                        dtype_changed=bool(f.get("dtype_changed")),
                        null_rate=f.get("null_rate"),
                        reference_null_rate=f.get("reference_null_rate"),
                        out_of_range_rate=f.get("out_of_range_rate"),
                        unseen_category_rate=f.get("unseen_category_rate"),
                    )
                    for f in data["features"]
                ),
                new_columns=tuple(data.get("new_columns") or ()),
                missing_columns=tuple(data.get("missing_columns") or ()),
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
                    start=_parse_time(p.get("start")),
                    end=_parse_time(p.get("end")),
                    predictions=int(p.get("predictions") or 0),
                    labels=int(p.get("labels") or 0),
                    task=p.get("task"),
                    accuracy=p.get("accuracy"),
                    f1=p.get("f1"),
                    auc=p.get("auc"),
                    mae=p.get("mae"),
                    rmse=p.get("rmse"),
                )
                for p in self._get(path)["points"]
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
            return [_performance_point(p) for p in answer["points"]]

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
                rows=int(data["rows"]),
                segments=tuple(
                    Segment(
                        value=str(g["value"]),
                        rows=int(g["rows"]),
                        accuracy=g.get("accuracy"),
                        f1=g.get("f1"),
                        mae=g.get("mae"),
                        rmse=g.get("rmse"),
                    )
                    for g in data["segments"]
                ),
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
                version=p.get("version"),
                environment=p.get("environment"),
                start_time=_parse_time(p.get("start_time")),
                latency_ms=float(p.get("latency_ms") or 0.0),
                status=str(p.get("status")),
                batch_size=p.get("batch_size"),
                features=p.get("features"),
                prediction=p.get("prediction"),
                labels=dict(p.get("labels") or {}),
                sampled_rows=tuple(p.get("sampled_rows") or ()),
            )
            for p in data_list(self._get(path), "prediction list")
        ]


def _default() -> Models:
    return Models(ManagementClient())


models = _default()
