"""Query routes: models, per-model metrics, predictions with their labels, labels that cannot join."""

from __future__ import annotations

import datetime
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from . import _query, _query_labels
from ._http_auth import Read
from ._http_errors import ApiError, errors_doc
from ._schemas import MetricsOut, ModelList, PredictionList, PredictionOut, UnjoinedLabels
from ._store import Store

__all__ = ["router"]

router = APIRouter(tags=["query"])

_EPOCH = datetime.datetime(1970, 1, 1, tzinfo=datetime.timezone.utc)


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


def _ns(moment: datetime.datetime | None) -> int | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    delta = moment - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000


@router.get("/api/v1/models", response_model=ModelList, responses=errors_doc())
def list_models(request: Request, _: Read) -> ModelList:
    return ModelList.model_validate({"data": _query.list_models(_store(request).reader())})


@router.get("/api/v1/models/{name:path}/metrics", response_model=MetricsOut, responses=errors_doc(400, 404))
def model_metrics(
    request: Request,
    _: Read,
    name: Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")],
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: Annotated[datetime.datetime | None, Query(description="Inclusive; ISO 8601, UTC if naive.")] = None,
    end: Annotated[datetime.datetime | None, Query(description="Exclusive; ISO 8601, UTC if naive.")] = None,
    bucket: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{1,7}[smhdSMHD]$", description="Volume bucket: 30s, 5m, 1h, 1d..."),
    ] = None,
) -> MetricsOut:
    """Volume, latency, error rate, label coverage and quality metrics (classification or regression)."""
    try:
        result = _query.metrics(
            _store(request).reader(),
            name,
            version=version,
            environment=environment,
            start_ns=_ns(start),
            end_ns=_ns(end),
            bucket=bucket,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if result is None:
        raise ApiError(404, "not_found", f"no model named {name!r}")
    return MetricsOut.model_validate(result)


@router.get("/api/v1/models/{name:path}/predictions", response_model=PredictionList, responses=errors_doc(404))
def model_predictions(
    request: Request,
    _: Read,
    name: Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")],
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
) -> PredictionList:
    """The newest predictions, with their labels by row."""
    rows = _query.recent_predictions(
        _store(request).reader(), name, limit=limit, version=version, environment=environment
    )
    if rows is None:
        raise ApiError(404, "not_found", f"no model named {name!r}")
    return PredictionList.model_validate({"data": rows})


@router.get("/api/v1/labels/unjoined", response_model=UnjoinedLabels, responses=errors_doc(400))
def unjoined_labels(
    request: Request,
    _: Read,
    model: Annotated[str | None, Query(max_length=256, description="Only this model's predictions.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
) -> UnjoinedLabels:
    """Labels kept but not joined to a prediction: ``unknown trace`` (no prediction after the grace period)
    or ``row out of range`` (the prediction has fewer rows). With ``model``, only the latter, for it."""
    grace_ns = int(request.app.state.label_grace_s * 1e9)
    found = _query_labels.unjoined_labels(
        _store(request).reader(), model=model, limit=limit, grace_ns=grace_ns, now_ns=time.time_ns()
    )
    return UnjoinedLabels.model_validate(found)


@router.get("/api/v1/predictions/{trace_id}", response_model=PredictionOut, responses=errors_doc(400, 404))
def prediction(
    request: Request, _: Read, trace_id: Annotated[str, Path(description="32 hex characters")]
) -> PredictionOut:
    try:
        raw = bytes.fromhex(trace_id)
    except ValueError:
        raw = b""
    if len(raw) != 16:
        raise ApiError(400, "invalid_request", "trace_id must be 32 hex characters")
    found = _query.get_prediction(_store(request).reader(), raw)
    if found is None:
        raise ApiError(404, "not_found", f"no prediction with trace id {trace_id.lower()}")
    return PredictionOut.model_validate(found)
