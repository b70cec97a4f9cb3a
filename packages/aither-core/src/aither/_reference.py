"""``aither.log_reference``: profile a whole reference set on the client and send the profile to the server.

The reference (a training split, a validation set) is profiled here, off the inference path, into mergeable
sketches (``aither.profile``), and one JSON document goes to ``POST /api/v1/models/{name}/references``. Raw rows
never leave the process. numpy and datasketches are imported only when this is called, so ``import aither``
stays light; without them the error names the extra to install.
"""

from __future__ import annotations

import importlib
from typing import Any
from urllib.parse import quote

from ._errors import MissingDependencyError
from ._install import install_command

__all__ = ["log_reference"]


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
    data: Any,
    *,
    labels: Any = None,
    predictions: Any = None,
    version: str | None = None,
    environment: str | None = None,
    name: str = "training",
) -> dict[str, Any]:
    """Profile ``data`` (a pandas or polars DataFrame, a 2-D numpy array, a dict of columns or a list of records)
    and store the profile on the server as the reference ``name`` of ``model_name`` (and ``version``).

    ``labels`` and ``predictions`` (one value per row) are profiled too, for prediction drift. Returns the
    server's description of the stored reference. Blocking: one HTTP call after the profiling.
    """
    if not isinstance(model_name, str) or not model_name.strip():
        raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
    if not isinstance(name, str) or not name.strip() or name.startswith("window:"):
        raise ValueError(f"name must be a non-empty string not starting with 'window:', got {name!r}")
    _require()
    from . import profile as _profile
    from ._management import ManagementClient

    features = _profile.profile_table(data)
    rows = _rows(data)
    body: dict[str, Any] = {
        "name": name,
        "version": version,
        "environment": environment,
        "rows": rows,
        "features": {column: profile.to_json() for column, profile in features.items()},
        "predictions": None if predictions is None else _profile.profile_column(_one_column(predictions)).to_json(),
        "labels": None if labels is None else _profile.profile_column(_one_column(labels)).to_json(),
    }
    answer: dict[str, Any] = ManagementClient(timeout=60.0).request(
        "POST", f"/api/v1/models/{quote(model_name, safe='')}/references", json=body
    )
    return answer


def _rows(data: Any) -> int:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape):
        return int(shape[0])
    if isinstance(data, dict):
        return len(next(iter(data.values()), []))
    return len(data)


def _one_column(values: Any) -> Any:
    """Predictions or labels as one column: a 2-D output (class probabilities) is reduced to its arg-max."""
    import numpy as np

    if hasattr(values, "to_numpy") and not hasattr(values, "columns"):
        return values
    array = np.asarray(values)
    if array.ndim == 2:
        return array.argmax(axis=1) if array.shape[1] > 1 else array[:, 0]
    return array
