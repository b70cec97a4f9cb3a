"""Quality routes (scope read): the metrics per time bucket, and metrics by segment of a feature's values."""

from __future__ import annotations

import datetime
import time
from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from aither_server.api.answers import model_answer
from aither_server.api.auth import Read
from aither_server.api.errors import ApiError, errors_doc
from aither_server.query import time as query_time
from aither_server.query.quality import MAX_BUCKETS, MAX_PREDICTIONS, QualitySeries, Segments, quality_series, segments
from aither_server.query.segments import MAX_PREDICTIONS as RANKED_PREDICTIONS
from aither_server.query.segments import RankedSegments, ranked_segments
from aither_server.query.time import to_ns

__all__ = ["router"]

router = APIRouter(tags=["query"])

_Name = Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")]


# The answers' shapes are TypedDicts; the document keeps saying "an object" (FastAPI would otherwise validate
# every answer against them).
@router.get(
    "/api/v1/models/{name:path}/metrics/series", response_model=dict[str, object], responses=errors_doc(400, 404)
)
async def metrics_series(
    request: Request,
    _: Read,
    name: _Name,
    bucket: Annotated[str, Query(pattern=r"^[0-9]{1,7}[smhdSMHD]$", description="30m, 1h, 1d...")] = "1d",
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: Annotated[
        datetime.datetime | None, Query(description="Inclusive; default 30 days (at most 200 buckets) before end.")
    ] = None,
    end: Annotated[datetime.datetime | None, Query(description="Exclusive; default now.")] = None,
) -> QualitySeries:
    """Accuracy, F1, AUC (classification) or MAE, RMSE (regression) per bucket, with the labelled rows."""
    try:
        bucket_s, start_ns, end_ns = query_time.series_window(bucket, start, end, MAX_BUCKETS, time.time_ns())
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return await model_answer(
        name,
        lambda: quality_series(
            request.app.state.store,
            name,
            bucket_s=bucket_s,
            start_ns=start_ns,
            end_ns=end_ns,
            version=version,
            environment=environment,
        ),
    )


@router.get("/api/v1/models/{name:path}/segments", response_model=dict[str, object], responses=errors_doc(404))
async def model_segments(
    request: Request,
    _: Read,
    name: _Name,
    feature: Annotated[str, Query(min_length=1, max_length=1024)],
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: Annotated[datetime.datetime | None, Query(description="Inclusive; ISO 8601, UTC if naive.")] = None,
) -> Segments:
    """Quality by the values of one feature, over the labelled sampled rows of the newest predictions."""
    return await model_answer(
        name,
        lambda: segments(
            request.app.state.store,
            request.app.state.drift,  # only its references: the sketches are not read
            name,
            feature,
            version=version,
            environment=environment,
            start_ns=to_ns(start),
        ),
    )


@router.get(
    "/api/v1/models/{name:path}/worst-segments", response_model=dict[str, object], responses=errors_doc(400, 404)
)
async def worst_segments(
    request: Request,
    _: Read,
    name: _Name,
    feature: Annotated[str | None, Query(max_length=1024, description="One feature's segments; default all.")] = None,
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: Annotated[datetime.datetime | None, Query(description="Inclusive; default 24 hours before end.")] = None,
    end: Annotated[datetime.datetime | None, Query(description="Exclusive; default now.")] = None,
    max_predictions: Annotated[int, Query(ge=1, le=MAX_PREDICTIONS)] = RANKED_PREDICTIONS,
) -> RankedSegments:
    """Every feature's segments ranked by how much worse than the whole the model does on them (the model
    page's "Where is the model worst?"), each with its labelled rows and 95% interval."""
    end_ns = to_ns(end) or time.time_ns()
    start_ns = to_ns(start) or end_ns - 86400 * 1_000_000_000
    if start_ns >= end_ns:
        raise ApiError(400, "invalid_request", "start must be before end")
    return await model_answer(
        name,
        lambda: ranked_segments(
            request.app.state.store,
            request.app.state.drift,
            name,
            start_ns=start_ns,
            end_ns=end_ns,
            version=version,
            environment=environment,
            feature=feature,
            max_predictions=max_predictions,
        ),
    )
