"""Estimated performance routes: a reference's estimator in (scope write), estimated beside realized
performance per slice out (scope read). docs/estimated-performance.md."""

from __future__ import annotations

import datetime
import time
from collections.abc import Mapping
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Request

from aither_server.api.answers import model_answer
from aither_server.api.auth import Read, Write
from aither_server.api.errors import ApiError, errors_doc
from aither_server.estimate.calibration import Estimator, InvalidEstimator
from aither_server.estimate.query import MAX_SLICES, performance
from aither_server.estimate.store import EstimateStore, parse_any
from aither_server.query import time as query_time

__all__ = ["router"]

router = APIRouter(tags=["query"])

_Name = Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")]


def _estimates(request: Request) -> EstimateStore:
    found: EstimateStore = request.app.state.estimates
    return found


@router.post("/api/v1/models/{name:path}/estimators", status_code=201, responses=errors_doc(400))
def post_estimator(
    request: Request, _: Write, name: _Name, body: Annotated[dict[str, object], Body()]
) -> dict[str, object]:
    """Store what a reference teaches about the model's outputs (``aither.log_reference`` with ``predictions=``
    and ``labels=``): a classifier's classes and calibration maps, or a regressor's loss model. Replaces the
    same reference's estimator."""
    reference = body.get("name") or "training"
    version = body.get("version") or ""
    if not isinstance(reference, str) or not isinstance(version, str) or max(len(reference), len(version)) > 256:
        raise ApiError(400, "invalid_request", "name and version must be strings of at most 256 characters")
    estimator = body.get("estimator")
    try:
        parsed = parse_any(estimator)
    except InvalidEstimator as exc:
        raise ApiError(400, "invalid_request", f"estimator: {exc}") from None
    assert isinstance(estimator, dict)
    created = _estimates(request).put_estimator(name, version, reference, estimator)
    return {
        "model": name,
        "name": reference,
        "version": version or None,
        "task": "classification" if isinstance(parsed, Estimator) else "regression",
        "method": parsed.method,
        "classes": len(parsed.classes) if isinstance(parsed, Estimator) else None,
        "created_at": query_time.iso(created),
    }


@router.get("/api/v1/models/{name:path}/performance", responses=errors_doc(400, 404))
async def model_performance(
    request: Request,
    _: Read,
    name: _Name,
    bucket: Annotated[str, Query(pattern=r"^[0-9]{1,7}[smhdSMHD]$", description="1h, 1d...")] = "1h",
    version: Annotated[str | None, Query(max_length=256)] = None,
    environment: Annotated[str | None, Query(max_length=256)] = None,
    start: Annotated[datetime.datetime | None, Query(description="Inclusive; default 30 days before end.")] = None,
    end: Annotated[datetime.datetime | None, Query(description="Exclusive; default now.")] = None,
) -> Mapping[str, object]:
    """Estimated accuracy, precision, recall, F1, ROC AUC and confusion matrix (classifiers) or MAE and RMSE
    (regressors) per slice, each with its sampling error, band and rows, beside the realized figures of the
    slice's labelled rows."""
    now_ns = time.time_ns()
    try:
        bucket_s, start_ns, end_ns = query_time.series_window(bucket, start, end, MAX_SLICES, now_ns)
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return await model_answer(
        name,
        lambda: performance(
            request.app.state.store,
            _estimates(request),
            name,
            bucket_s=bucket_s,
            start_ns=start_ns,
            end_ns=end_ns,
            now_ns=now_ns,
            version=version,
            environment=environment,
        ),
    )
