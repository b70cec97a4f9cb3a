"""Drift routes: references in (scope write), drift, data quality and a column's drift over time out (scope read).

Every query takes the model's ``version`` / ``environment`` (all of them when left out), a window ``start`` /
``end`` (everything stored when left out) and ``reference``: a name, ``window:<start>/<end>``, or by default
the model's latest named reference (of that version, else one logged without a version). docs/drift.md.
"""

# No ``from __future__ import annotations``: FastAPI reads the query parameters from the fields of the dataclasses
# below, and FastAPI before 0.123.7 (this package allows >=0.110) cannot resolve a class's annotations as strings.

import dataclasses
import datetime
import json
import math
from collections.abc import Callable, Mapping
from typing import Annotated, TypedDict, TypeVar

from fastapi import APIRouter, Body, Depends, Path, Query, Request
from fastapi.concurrency import run_in_threadpool

from aither.profile import Profile
from aither_server.api.auth import Read, Write
from aither_server.api.errors import ApiError, errors_doc
from aither_server.drift.embedding_store import EmbeddingStore
from aither_server.drift.embeddings import checked_reference
from aither_server.drift.feeder import Feeder
from aither_server.drift.query import NotFound, Window, data_quality, drift, drift_series, parse_reference
from aither_server.drift.stats import METHODS
from aither_server.drift.store import DriftStore
from aither_server.privacy.enforce import reference_refusal
from aither_server.query.time import to_ns

__all__ = ["router"]

router = APIRouter(tags=["drift"])

_Name = Annotated[str, Path(min_length=1, max_length=256, description="The name given to aither.wrap.")]
_Version = Annotated[str | None, Query(max_length=256)]
_Environment = Annotated[str | None, Query(max_length=256)]
_Start = Annotated[datetime.datetime | None, Query(description="Inclusive; ISO 8601, UTC if naive.")]
_End = Annotated[datetime.datetime | None, Query(description="Exclusive; ISO 8601, UTC if naive.")]
_Reference = Annotated[
    str | None,
    Query(max_length=600, description="A reference name, or window:<start>/<end>; default the latest named one."),
]
_Method = Annotated[
    str | None, Query(description="psi, jensenshannon, ks or chisquare; default by the reference's size.")
]


def _drift_store(request: Request) -> DriftStore:
    store: DriftStore = request.app.state.drift
    return store


class _Arguments(TypedDict):
    """The keyword arguments the ``drift/query.py`` answers take."""

    version: str | None
    environment: str | None
    window: Window
    reference: str | None


class _DriftArguments(_Arguments):
    method: str | None


_T = TypeVar("_T")


def _window(start: datetime.datetime | None, end: datetime.datetime | None) -> Window:
    window = (to_ns(start), to_ns(end))
    if window[0] is not None and window[1] is not None and window[0] >= window[1]:
        raise ApiError(400, "invalid_request", "start must be before end")
    return window


# The routes' parameters are dataclasses, FastAPI dependencies (``Depends()``): each field is a parameter of the
# path or the query. FastAPI lists a route's dependencies' validation errors before those of its own parameters,
# so the model's name is one too: a 400 lists its problems in the order of the URL, the name first.


@dataclasses.dataclass(frozen=True)
class _Model:
    """The model a route answers about."""

    name: _Name


@dataclasses.dataclass(frozen=True)
class _Series(_Model):
    """One column of the model, over time buckets."""

    feature: Annotated[str, Query(min_length=1, max_length=1024, description="A column, or 'prediction'.")]
    bucket: Annotated[str, Query(pattern=r"^[0-9]{1,5}[hHdD]$", description="1h, 6h, 1d...")] = "1h"

    def bucket_ns(self) -> int:
        """The bucket's length (a 400 for 0h or 0d)."""
        count, unit = int(self.bucket[:-1]), self.bucket[-1].lower()
        if count == 0:
            raise ApiError(400, "invalid_request", "bucket must be at least 1h")
        return count * (3600 if unit == "h" else 86400) * 1_000_000_000


@dataclasses.dataclass(frozen=True)
class _Question:
    """Which of the model's traffic a drift or data-quality answer is about, and against what reference."""

    version: _Version = None
    environment: _Environment = None
    start: _Start = None
    end: _End = None
    reference: _Reference = None

    def check(self) -> None:
        """A 400 for a reference that does not parse."""
        try:
            parse_reference(self.reference)
        except ValueError as exc:
            raise ApiError(400, "invalid_request", f"reference: {exc}") from None

    def arguments(self) -> _Arguments:
        """The keyword arguments of the ``drift/query.py`` answers, once checked (a 400 for a reference that does
        not parse, then for a start not before the end)."""
        self.check()
        window = _window(self.start, self.end)
        return {"version": self.version, "environment": self.environment, "window": window, "reference": self.reference}


@dataclasses.dataclass(frozen=True)
class _DriftQuestion(_Question):
    """A question answered with drift scores: by the method given, else by the reference's size."""

    method: _Method = None

    def check(self) -> None:
        super().check()
        if self.method is not None and self.method not in METHODS:
            raise ApiError(400, "invalid_request", f"method must be one of {sorted(METHODS)}")

    def arguments(self) -> _DriftArguments:
        return {**super().arguments(), "method": self.method}


def _profile(data: object, where: str) -> dict[str, object]:
    """A posted profile, checked: its fields, and a sketch that deserialises as its kind."""
    try:
        if not isinstance(data, dict):
            raise TypeError("a profile is an object")  # as from_json would
        profile = Profile.from_json(data)
        profile.kll() if profile.kind == "numeric" else profile.frequent()
    except Exception as exc:
        raise ApiError(400, "invalid_request", f"{where}: not a valid profile ({type(exc).__name__})") from None
    # Stored, a NaN or infinite bound would break every page that reads the column (JSON has no NaN).
    if any(bound is not None and not math.isfinite(bound) for bound in (profile.minimum, profile.maximum)):
        raise ApiError(400, "invalid_request", f"{where}: min and max must be finite numbers or null")
    return profile.to_json()


@router.post("/api/v1/models/{name:path}/references", status_code=201, responses=errors_doc(400))
def post_reference(
    request: Request, _: Write, name: _Name, body: Annotated[dict[str, object], Body()]
) -> dict[str, object]:
    """Store a reference profile (``aither.log_reference``): its columns' sketches, base64, by name and version;
    a reference of the same model, version and name is replaced."""
    reference = body.get("name") or "training"
    if not isinstance(reference, str) or len(reference) > 256 or reference.startswith("window:"):
        raise ApiError(400, "invalid_request", "name must be a string of at most 256 characters, not window:...")
    version, environment = body.get("version") or "", body.get("environment") or ""
    if not isinstance(version, str) or not isinstance(environment, str) or max(len(version), len(environment)) > 256:
        raise ApiError(400, "invalid_request", "version and environment must be strings of at most 256 characters")
    features = body.get("features")
    if not isinstance(features, dict) or not features:
        raise ApiError(400, "invalid_request", "features must be an object of column profiles")
    rows = body.get("rows")
    if isinstance(rows, bool) or not isinstance(rows, int) or not 0 <= rows < 2**53:
        raise ApiError(400, "invalid_request", "rows must be a non-negative integer below 2**53")
    columns = {str(c): _profile(p, f"features.{c}") for c, p in features.items()}
    # The server's privacy policy: dropped columns go, a refused one (or clear values to hash) is a 400.
    refusal = reference_refusal(columns, request.app.state.privacy.policy_of(name))
    if refusal is not None:
        raise ApiError(400, "invalid_request", refusal)
    stored = {
        "features": columns,
        "predictions": None if body.get("predictions") is None else _profile(body["predictions"], "predictions"),
        "labels": None if body.get("labels") is None else _profile(body["labels"], "labels"),
    }
    try:
        embeddings = checked_reference(body.get("embeddings"))
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    store = _drift_store(request)
    created = store.put_reference(name, version, environment, reference, rows, json.dumps(stored))
    EmbeddingStore(store.engine).put_reference(name, version, reference, embeddings)
    return {
        "model": name,
        "name": reference,
        "version": version or None,
        "environment": environment or None,
        "rows": rows,
        "columns": sorted(columns),
        "embeddings": None if embeddings is None else len(embeddings[1]),
        "created_at": datetime.datetime.fromtimestamp(created / 1e9, tz=datetime.timezone.utc).isoformat(),
    }


@router.get("/api/v1/models/{name:path}/references", responses=errors_doc())
def list_references(request: Request, _: Read, name: _Name) -> dict[str, object]:
    return {"data": _drift_store(request).references(name)}


async def _answer(request: Request, answer: Callable[[DriftStore], _T]) -> _T:
    """``answer(store)`` in the thread pool once every span stored so far is in the sketches; a 404 for what is
    not found."""
    feeder: Feeder = request.app.state.drift_feeder

    def fresh() -> _T:
        feeder.flush()
        return answer(feeder.store)

    try:
        result = await run_in_threadpool(fresh)
    except NotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from None
    except ValueError as exc:
        raise ApiError(400, "invalid_request", str(exc)) from None
    return result


@router.get("/api/v1/models/{name:path}/drift/series", responses=errors_doc(400, 404))
async def get_drift_series(
    request: Request,
    _: Read,
    series: Annotated[_Series, Depends()],
    question: Annotated[_DriftQuestion, Depends()],
) -> Mapping[str, object]:
    """One column's drift score per time bucket against the reference."""
    question.check()
    bucket_ns = series.bucket_ns()
    arguments = question.arguments()
    return await _answer(
        request, lambda store: drift_series(store, series.name, series.feature, bucket_ns=bucket_ns, **arguments)
    )


_AModel = Annotated[_Model, Depends()]
_ADriftQuestion = Annotated[_DriftQuestion, Depends()]
_AQuestion = Annotated[_Question, Depends()]


@router.get("/api/v1/models/{name:path}/drift", responses=errors_doc(400, 404))
async def get_drift(request: Request, _: Read, model: _AModel, question: _ADriftQuestion) -> Mapping[str, object]:
    """Per-column drift of the window's sampled features (and of the predictions) against the reference."""
    arguments = question.arguments()
    return await _answer(request, lambda store: drift(store, model.name, **arguments))


@router.get("/api/v1/models/{name:path}/data-quality", responses=errors_doc(400, 404))
async def get_data_quality(request: Request, _: Read, model: _AModel, question: _AQuestion) -> Mapping[str, object]:
    """Null rates, dtypes, out-of-range and unseen-category rates, new and missing columns."""
    arguments = question.arguments()
    return await _answer(request, lambda store: data_quality(store, model.name, **arguments))
