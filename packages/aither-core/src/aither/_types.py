"""Names for the values that flow through the SDK, for the type checker only.

``import aither`` imports no ML framework and no pandas: numpy's array type is imported under ``TYPE_CHECKING``
here, and every module that names it does so in annotations only (``from __future__ import annotations``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol, TypeGuard

if TYPE_CHECKING:
    from typing import TypeAlias

    import numpy as np
    import numpy.typing as npt
    import pandas as pd
    import polars as pl

    #: A numpy array of any dtype.
    Array: TypeAlias = npt.NDArray[np.generic]
    #: A numpy array of float64 values (descriptors, pooled embeddings).
    FloatArray: TypeAlias = npt.NDArray[np.float64]
    #: A numpy array or a numpy scalar.
    NumpyValue: TypeAlias = Array | np.generic

#: ``Array``, ``FloatArray`` and ``NumpyValue`` exist for the type checker only: import them under ``TYPE_CHECKING``.
__all__ = [
    "Detachable",
    "HostReadable",
    "Shaped",
    "Synchronizable",
    "is_detachable",
    "is_host_readable",
    "is_numpy",
    "is_numpy_array",
    "is_pandas_frame",
    "is_pandas_series",
    "is_polars_frame",
    "is_polars_series",
    "root_module",
]


class Synchronizable(Protocol):
    """A CUDA event (``torch.cuda.Event``): the worker waits on it before reading a copy queued on a stream."""

    def synchronize(self) -> None: ...


class Shaped(Protocol):
    """A numpy array or a tensor (torch, TensorFlow...), as far as its rank, shape and size in bytes go."""

    @property
    def ndim(self) -> int: ...
    @property
    def shape(self) -> Sequence[int]: ...
    @property
    def nbytes(self) -> int: ...


class HostReadable(Protocol):
    """A TensorFlow or tinygrad tensor: ``numpy()`` copies (or views) it on the host."""

    def numpy(self) -> Array: ...


class Detachable(Protocol):
    """A torch tensor, as far as reading it on the host goes."""

    def detach(self) -> Detachable: ...
    def cpu(self) -> Detachable: ...
    def numpy(self) -> Array: ...
    def float(self) -> Detachable: ...


def is_detachable(value: object) -> TypeGuard[Detachable]:
    """Whether ``value`` reads like a torch tensor (``detach`` and ``cpu``), without importing torch."""
    return hasattr(value, "detach") and hasattr(value, "cpu")


def is_host_readable(value: object) -> TypeGuard[HostReadable]:
    """Whether ``value`` is a tensor with a ``numpy()`` copy and a shape (TensorFlow, tinygrad)."""
    return hasattr(value, "numpy") and hasattr(value, "shape")


def is_numpy(value: object) -> TypeGuard[NumpyValue]:
    """Whether ``value`` is a numpy array or scalar (by its type's module: numpy is not imported here)."""
    return type(value).__module__ == "numpy"


def root_module(value: object) -> str:
    """The top-level package of ``value``'s type: ``"numpy"``, ``"pandas"``, ``"builtins"``..."""
    return type(value).__module__.partition(".")[0]


def is_pandas_frame(value: object) -> TypeGuard[pd.DataFrame]:
    """Whether ``value`` is a pandas DataFrame (pandas is not imported here)."""
    return root_module(value) == "pandas" and hasattr(value, "columns")


def is_polars_frame(value: object) -> TypeGuard[pl.DataFrame]:
    """Whether ``value`` is a polars DataFrame (polars is not imported here)."""
    return root_module(value) == "polars" and hasattr(value, "columns")


def is_numpy_array(value: object) -> TypeGuard[Array]:
    """Whether ``value`` is a numpy ``ndarray`` (not a numpy scalar)."""
    return is_numpy(value) and type(value).__name__ == "ndarray"


def is_pandas_series(value: object) -> TypeGuard[pd.Series]:
    """Whether ``value`` is a pandas column (a Series or an extension array: it has a ``dtype``)."""
    return root_module(value) == "pandas" and hasattr(value, "dtype")


def is_polars_series(value: object) -> TypeGuard[pl.Series]:
    """Whether ``value`` is a polars Series (it has a ``dtype``; a DataFrame has ``dtypes``)."""
    return root_module(value) == "polars" and hasattr(value, "dtype")
