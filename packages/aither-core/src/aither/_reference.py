"""``aither.log_reference``: profile a whole reference set on the client and send the profile to the server.

The reference (a training split, a validation set) is profiled here, off the inference path, into mergeable
sketches (``aither.profile``), and one JSON document goes to ``POST /api/v1/models/{name}/references``. Raw rows
never leave the process. numpy and datasketches are imported only when this is called, so ``import aither``
stays light; without them the error names the extra to install.
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping, Sequence, Sized
from typing import TYPE_CHECKING, TypedDict
from urllib.parse import quote

from ._answers import JsonObject, as_object, integer, optional_integer, optional_text, parsing_answer, texts
from ._errors import MissingDependencyError
from ._install import install_command
from ._privacy import ColumnPolicies, Privacy
from ._privacy._reference import private_table
from ._tracking import checked_feature_names
from ._types import is_pandas_frame, is_polars_frame

if TYPE_CHECKING:
    from ._capture._texts import Tokenizer
    from ._types import Array
    from .profile import Profile

__all__ = ["StoredEstimator", "StoredReference", "log_reference"]


class _Stored(TypedDict):
    model: str
    name: str
    version: str | None
    created_at: str


class StoredEstimator(_Stored):
    """What the server stored of a reference's estimator (``log_reference(...)["estimator"]``)."""

    task: str
    method: str
    classes: int | None


class _StoredReference(_Stored):
    environment: str | None
    rows: int
    columns: list[str]
    #: Reference embeddings stored (rows), or None.
    embeddings: int | None


class StoredReference(_StoredReference, total=False):
    """The server's description of a stored reference, as ``log_reference`` returns it; ``estimator`` when
    one was stored too."""

    estimator: StoredEstimator


def _require() -> None:
    missing = []
    for name in ("numpy", "datasketches"):
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise MissingDependencyError(
            f"aither.log_reference needs {' and '.join(missing)}: install aither-core's 'reference' extra"
            f" ({install_command('aither-core')}[reference])"
        )


def log_reference(
    model_name: str,
    data: object,
    *,
    labels: object = None,
    predictions: object = None,
    version: str | None = None,
    environment: str | None = None,
    name: str = "training",
    feature_names: Sequence[str] | None = None,
    tokenizer: Tokenizer | None = None,
    column_policies: Mapping[str, str] | None = None,
    embeddings: object = None,
) -> StoredReference:
    """Profile ``data`` and store the profile on the server as the reference ``name`` of ``model_name`` (and
    ``version``).

    ``data`` is what the model is called with: a pandas or polars DataFrame, a dict of columns, a list of
    records, an array or tensor (numpy, torch, TensorFlow, tinygrad: one column per feature of a 2-D one,
    descriptors of images and sequences), or a list of texts (text descriptors, with ``tokenizer``'s token
    counts when given: pass the pipeline's ``pipe.tokenizer``). Its columns are derived exactly as a wrapped
    model's sampled rows are (``_capture/_columns.py``); ``feature_names`` names an array's columns as
    ``wrap(..., feature_names=)`` does. ``labels`` and ``predictions`` (one value per row; a 2-D output is
    reduced to its arg-max class) are profiled too, for prediction drift. When ``predictions`` are the model's
    scores (``predict_proba`` output, probabilities or logits) and ``labels`` are given, each class's score is
    calibrated on them and the calibration is stored with the reference, so the server estimates the model's
    performance before labels arrive (``aither._calibration``, docs/estimated-performance.md); a regressor's
    predictions and labels (numbers) get a loss model of ``data``'s numeric columns instead
    (``aither._loss_model``). The answer's ``estimator`` describes what was stored. Returns the server's
    description of the stored reference. Blocking: one HTTP call after the profiling (two with an estimator).

    The client's privacy settings (``aither.init(column_policies=, scrub_values=)``, with ``column_policies``
    here on top) apply to ``data`` exactly as to live samples (docs/privacy.md).

    ``embeddings``: the reference rows' pooled hidden states (rows, width), as a model wrapped with
    ``embeddings=`` captures them live (``aither_torch.embeddings``, ``aither_hf.embeddings`` compute them);
    projected here with the live rows' matrix (``_capture/_embeddings.py``) for the server's embedding drift.
    """
    if not isinstance(model_name, str) or not model_name.strip():
        raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
    if not isinstance(name, str) or not name.strip() or name.startswith("window:"):
        raise ValueError(f"name must be a non-empty string not starting with 'window:', got {name!r}")
    names = None if feature_names is None else checked_feature_names(feature_names)
    _require()
    from . import profile as _profile
    from ._management import ManagementClient

    privacy = _privacy_for(model_name, column_policies)
    private = private_table(data, privacy, model_name)
    policies = privacy.policies_for(model_name)
    features = {
        column: profile.to_json()
        for column, profile in reference_profiles(private, names, tokenizer).items()
        if not _dropped(policies, column)
    }
    body: dict[str, object] = {
        "name": name,
        "version": version,
        "environment": environment,
        "rows": _rows(data),
        "features": features,
        "predictions": None if predictions is None else _profile.profile_column(_one_column(predictions)).to_json(),
        "labels": None if labels is None else _profile.profile_column(_one_column(labels)).to_json(),
    }
    if embeddings is not None:
        from ._capture._embeddings import reference_embeddings

        body["embeddings"] = reference_embeddings(embeddings)
    client = ManagementClient(timeout=60.0)
    path = f"/api/v1/models/{quote(model_name, safe='')}"
    answer = _stored_reference(client.request("POST", f"{path}/references", json=body))
    if predictions is not None and labels is not None:
        from ._calibration import classifier_estimator
        from ._loss_model import regressor_estimator

        estimator = classifier_estimator(predictions, labels)
        if estimator is None and _regression(predictions, labels):
            estimator = regressor_estimator(private, predictions, labels, names)
        if estimator is not None:
            stored = client.request(
                "POST", f"{path}/estimators", json={"name": name, "version": version, "estimator": estimator}
            )
            answer["estimator"] = _stored_estimator(stored)
    return answer


def _regression(predictions: object, labels: object) -> bool:
    """Numbers with fractional parts among the predictions or labels: a regressor's (as the server reads them)."""
    import numpy as np

    from ._capture._columns import as_array

    try:
        values = np.concatenate(
            [
                np.asarray(as_array(predictions), dtype=np.float64).ravel(),
                np.asarray(as_array(labels), dtype=np.float64).ravel(),
            ]
        )
    except (TypeError, ValueError):
        return False
    finite = values[np.isfinite(values)]
    return bool(len(finite)) and bool(np.any(finite != np.round(finite)))


def _privacy_for(model_name: str, column_policies: Mapping[str, str] | None) -> Privacy:
    """The client's privacy, with this call's ``column_policies`` on top for ``model_name``."""
    from ._client import get_client, privacy_of
    from ._privacy import ColumnPolicies, hash_key_from_env

    privacy = privacy_of(get_client().settings)
    if column_policies is not None:
        privacy.register(model_name, ColumnPolicies(column_policies, hash_key=hash_key_from_env()))
    return privacy


def _dropped(policies: ColumnPolicies, column: str) -> bool:
    action = policies.action(column) if policies else None
    return action is not None and action.kind == "drop"


def reference_profiles(
    data: object, feature_names: Sequence[str] | None = None, tokenizer: Tokenizer | None = None
) -> dict[str, Profile]:
    """The profile of each column of ``data``, as ``log_reference`` sends them (see there)."""
    from . import profile as _profile
    from ._capture._columns import as_array, input_columns, is_text_records, named, text_columns, text_field_columns
    from ._capture._texts import tokenizer_counts

    columns: Mapping[str, Sequence[float] | Array]
    if isinstance(data, (list, tuple)) and data and all(isinstance(item, str) for item in data):
        tokenize = None if tokenizer is None else tokenizer_counts(tokenizer)
        columns = text_columns([str(item) for item in data], tokenize)
    elif tokenizer is not None and isinstance(data, (list, tuple)) and is_text_records(data):
        columns = text_field_columns([item for item in data if isinstance(item, Mapping)], tokenizer_counts(tokenizer))
    elif is_pandas_frame(data) or is_polars_frame(data) or isinstance(data, (Mapping, list, tuple)):
        return named(_profile.profile_table(data), feature_names)
    else:
        array = as_array(data)
        if array.ndim == 0 or array.dtype.kind not in "biufc":
            return named(_profile.profile_table(data), feature_names)
        columns = input_columns(array)
    return named({column: _profile.profile_column(values) for column, values in columns.items()}, feature_names)


def _rows(data: object) -> int:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    if isinstance(data, dict):
        first: object = next(iter(data.values()), [])
        return len(first) if isinstance(first, Sized) else 1
    if not isinstance(data, Sized):
        raise TypeError(f"object of type {type(data).__name__!r} has no len()")
    return len(data)


def _one_column(values: object) -> object:
    """Predictions or labels as one column: a 2-D output (class probabilities) is reduced to its arg-max."""
    from ._capture._columns import as_array

    if hasattr(values, "to_numpy") and not hasattr(values, "columns"):
        return values
    if isinstance(values, (list, tuple)):
        values = [as_array(v).item() if hasattr(v, "shape") else v for v in values]
    array = as_array(values)
    if array.ndim == 2:
        return array.argmax(axis=1) if array.shape[1] > 1 else array[:, 0]
    return array


def _stored(data: JsonObject) -> _Stored:
    return _Stored(
        model=str(data.get("model")),
        name=str(data.get("name")),
        version=optional_text(data.get("version")),
        created_at=str(data.get("created_at")),
    )


def _stored_reference(answer: object) -> StoredReference:
    data = as_object(answer)
    with parsing_answer("an invalid reference answer"):
        stored = _stored(data)
        # Spelled out, not unpacked: the type checker cannot see that ``estimator`` is left out on purpose.
        return {
            "model": stored["model"],
            "name": stored["name"],
            "version": stored["version"],
            "created_at": stored["created_at"],
            "environment": optional_text(data.get("environment")),
            "rows": integer(data.get("rows") or 0),
            "columns": list(texts(data.get("columns"))),
            "embeddings": optional_integer(data.get("embeddings")),
        }


def _stored_estimator(answer: object) -> StoredEstimator:
    data = as_object(answer)
    with parsing_answer("an invalid estimator answer"):
        classes = optional_integer(data.get("classes"))
        return {**_stored(data), "task": str(data.get("task")), "method": str(data.get("method")), "classes": classes}
