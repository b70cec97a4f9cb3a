"""Query routes: models, per-model metrics, predictions with their labels, labels that cannot join."""

from __future__ import annotations

import datetime
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from aither_server.api.auth import Read
from aither_server.api.errors import ApiError, errors_doc
from aither_server.api.schemas import MetricsOut, ModelList, PredictionList, PredictionOut, UnjoinedLabels
from aither_server.query import labels as query_labels
from aither_server.query import metrics as query_metrics
from aither_server.query import models as query_models
from aither_server.query import predictions as query_predictions
from aither_server.query.time import to_ns
from aither_server.store.database import Store

__all__ = ["router"]

router = APIRouter(tags=["query"])


def _store(request: Request) -> Store:
    store: Store = request.app.state.store
    return store


@router.get("/api/v1/models", response_model=ModelList, responses=errors_doc())
def list_models(request: Request, _: Read) -> ModelList:
    return ModelList.model_validate({"data": query_models.list_models(_store(request).reader())})


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
        result = query_metrics.metrics(
            _store(request).reader(),
            name,
            version=version,
            environment=environment,
            start_ns=to_ns(start),
            end_ns=to_ns(end),
            bucket=bucket,
        )
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    if result is None:
        raise ApiError(404, "not_found", f"no model named {name!r}")
    return result


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
    rows = query_predictions.recent_predictions(
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
    return query_labels.unjoined_labels(
        _store(request).reader(), model=model, limit=limit, grace_ns=grace_ns, now_ns=time.time_ns()
    )


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
    found = query_predictions.get_prediction(_store(request).reader(), raw)
    if found is None:
        raise ApiError(404, "not_found", f"no prediction with trace id {trace_id.lower()}")
    return found
