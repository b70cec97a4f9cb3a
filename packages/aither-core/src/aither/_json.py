"""JSON encoding that never raises: the contract's rules for NaN, datetimes, bytes and unknown objects.

Runs on the worker thread. The fast path is the C encoder; only values it refuses take the slow walk.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from types import ModuleType

    from ._types import NumpyValue

__all__ = ["dumps", "dumps_bytes", "jsonable", "plain_list"]

_MAX_REPR = 200
_MAX_DEPTH = 32
_encode_strict = json.JSONEncoder(allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode

try:  # several times faster than the standard library: it is the worker's main cost per span
    import orjson

    _orjson_dumps: Callable[..., bytes] | None = orjson.dumps
    # Datetimes through ``_default``: orjson drops the seconds of a UTC offset (+05:30:15) and the nanoseconds
    # of a pandas Timestamp; ``isoformat`` keeps both, the one rule for every datetime.
    _ORJSON_OPTIONS = orjson.OPT_PASSTHROUGH_DATETIME
except ImportError:  # pragma: no cover - orjson is a dependency; keep working without it all the same
    _orjson_dumps = None
    _ORJSON_OPTIONS = 0


def _safe_repr(value: object) -> str:
    try:
        text = repr(value)
    except Exception:
        return f"<unrepresentable {type(value).__name__}>"
    return text if len(text) <= _MAX_REPR else text[:_MAX_REPR] + "..."


def _float(value: float) -> float | str:
    if math.isfinite(value):
        return value
    if math.isnan(value):
        return "NaN"
    return "Infinity" if value > 0 else "-Infinity"


def plain_list(array: NumpyValue) -> Any:  # lists nested as deep as the array's rank, or a scalar
    """``array.tolist()`` of a numpy array, with the contract's values where numpy's own are not plain data:
    datetime64 as ISO 8601 text at its own precision (``tolist`` gives integers for nanoseconds), timedelta64
    as float seconds, long doubles as floats."""
    dtype = array.dtype
    if dtype.kind in "biuOUS" or (dtype.kind == "f" and dtype.itemsize <= 8):
        return array.tolist()
    return _numpy_plain(array)


def _numpy_plain(value: Any) -> Any:  # a numpy array or scalar: arithmetic by dtype numpy's stubs cannot follow
    """A numpy scalar or array as plain Python data (see :func:`plain_list`)."""
    import numpy  # a numpy value exists, so numpy is loaded already: this import costs a dict lookup

    dtype = value.dtype
    if dtype.kind == "M":
        text = _datetime_text(numpy, value)
        return text.tolist() if isinstance(text, numpy.ndarray) else str(text)
    if dtype.kind == "m":
        return (value / numpy.timedelta64(1, "s")).tolist()
    if dtype.kind == "f" and dtype.itemsize > 8:
        return value.astype(numpy.float64).tolist()
    if dtype.kind == "c" and dtype.itemsize > 16:
        return value.astype(numpy.complex128).tolist()
    return value.tolist()


def _datetime_text(numpy: ModuleType, value: Any) -> Any:
    """datetime64 values written as ``isoformat`` writes a datetime (pandas' Timestamp for nanoseconds): no
    fraction on whole seconds, six digits, or nine when the nanoseconds are not zero; dates as dates."""
    unit = numpy.datetime_data(value.dtype)[0]
    if unit in ("Y", "M", "W", "D", "generic"):
        return numpy.datetime_as_string(value)
    if unit in ("h", "m", "s"):
        return numpy.datetime_as_string(value, unit="s")
    rest = (value - value.astype("datetime64[s]")).astype("timedelta64[ns]").astype(numpy.int64)
    whole = numpy.datetime_as_string(value, unit="s")
    micro = numpy.datetime_as_string(value, unit="us")
    nano = numpy.datetime_as_string(value, unit="ns")
    return numpy.where(rest == 0, whole, numpy.where(rest % 1000 == 0, micro, nano))


def jsonable(value: object, _depth: int = 0) -> object:
    """Turn ``value`` into data the strict JSON encoder accepts, following the wire contract."""
    if value is None or type(value) in (bool, int, str):
        return value
    if isinstance(value, bool):  # numpy.bool_ is not a bool; subclasses of bool/int/str are made plain
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, (float, decimal.Decimal)):
        return _float(float(value))
    if _depth >= _MAX_DEPTH:
        return _safe_repr(value)
    if isinstance(value, Mapping):
        return {str(k) if not isinstance(k, str) else k: jsonable(v, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [jsonable(v, _depth + 1) for v in value]
    if isinstance(value, (datetime.datetime, datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, datetime.timedelta):
        return value.total_seconds()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {"_type": "bytes", "size": len(value)}
    if type(value).__module__ == "numpy" and hasattr(value, "dtype"):
        try:
            return jsonable(_numpy_plain(value), _depth + 1)
        except Exception:
            return _safe_repr(value)
    if type(value).__name__ == "NAType":  # pandas.NA: a missing value, like None
        return None
    # numpy / torch / tf scalars and 0-d arrays know how to become Python values.
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", 0) == 0 and getattr(value, "shape", ()) == ():
        try:
            return jsonable(item(), _depth + 1)
        except Exception:
            return _safe_repr(value)
    tolist = getattr(value, "tolist", None)
    if callable(tolist):
        try:
            return jsonable(tolist(), _depth + 1)
        except Exception:
            return _safe_repr(value)
    if isinstance(value, complex):
        return [_float(value.real), _float(value.imag)]
    if hasattr(value, "isoformat"):
        try:
            return str(value.isoformat())
        except Exception:
            return _safe_repr(value)
    return _safe_repr(value)


def _default(value: object) -> object:
    """orjson's hook for types it does not know: the contract's conversions."""
    return jsonable(value)


def dumps_bytes(value: object) -> bytes:
    """Encode ``value`` as compact UTF-8 JSON; never raises. The worker's path: no str round trip."""
    if _orjson_dumps is not None:
        try:
            encoded: bytes = _orjson_dumps(value, default=_default, option=_ORJSON_OPTIONS)
        except Exception:
            pass  # a non-str key, an int over 64 bits, a cycle...: the walk below copes with all of them
        else:
            # orjson writes NaN and infinities as null. Without a null in the output there was none, which is
            # the common case; otherwise take the walk that writes them as the contract says.
            if b"null" not in encoded:
                return encoded
    # A lone surrogate (json.loads keeps one from a cut emoji) has no UTF-8 form. It can only be inside a JSON
    # string, where backslashreplace writes the very escape (a backslash, "ud83d") that JSON reads back.
    return dumps(value).encode("utf-8", "backslashreplace")


def dumps(value: object) -> str:
    """Encode ``value`` as compact JSON, following the contract exactly (the standard library's encoder)."""
    try:
        return _encode_strict(value)
    except (ValueError, TypeError, RecursionError, OverflowError):
        pass
    try:
        return _encode_strict(jsonable(value))
    except Exception:
        return json.dumps(_safe_repr(value))
