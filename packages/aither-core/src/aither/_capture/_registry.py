"""Which sampler captures a model input: a registry keyed by the module and name of its type (no framework import).

Plugins add samplers for their own types with :func:`register_sampler`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from ._captured import Captured, capture_failed, type_name

__all__ = ["Sampler", "capture_features", "capture_value", "register_sampler"]

logger = logging.getLogger("aither")

#: ``sampler(value, sample_rows, sample_columns) -> Captured``
# The registry finds a sampler by the value's class, so each sampler takes the type it was registered for.
Sampler = Callable[[Any, int, int], Captured]

_by_name: dict[tuple[str, str], Sampler] = {}
_by_type: dict[type, Sampler | None] = {}


def register_sampler(module: str, qualname: str, sampler: Sampler) -> None:
    """Use ``sampler`` for instances of the class ``qualname`` whose module starts with ``module``.

    ``module`` is the top-level package (``"PIL"``), so the class is recognised wherever it is defined inside
    that package; subclasses are recognised through their MRO.
    """
    _by_name[(module, qualname)] = sampler
    _by_type.clear()


def _lookup(cls: type) -> Sampler | None:
    try:
        return _by_type[cls]
    except KeyError:
        pass
    found: Sampler | None = None
    for klass in cls.__mro__:
        found = _by_name.get((klass.__module__.partition(".")[0], klass.__qualname__))
        if found is not None:
            break
    _by_type[cls] = found
    return found


def _render_unknown(data: tuple[str, object]) -> object:
    type_name, value = data
    from .._json import jsonable

    return {"sample": jsonable(value), "_meta": {"type": type_name}}


def _capture_unknown(value: object, rows: int, columns: int) -> Captured:
    # An unknown object is kept by reference and rendered on the worker (repr, tolist...): no cost here.
    batch = 1
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and shape and isinstance(shape[0], int):
        batch = shape[0]
        try:
            if hasattr(value, "__getitem__"):
                value = value[:rows]
        except Exception:
            pass
    return Captured(_render_unknown, (type_name(value), value), batch, 256)


def capture_value(value: object, rows: int, columns: int) -> Captured:
    """A bounded capture of ``value`` by its registered sampler (a mapping as a dict; anything else by reference)."""
    sampler = _lookup(type(value))
    if sampler is None:
        sampler = _lookup(dict) if isinstance(value, Mapping) else None
    return (sampler or _capture_unknown)(value, rows, columns)


def capture_features(value: object, rows: int, columns: int) -> Captured:
    """Capture a bounded sample of a model input; never raises."""
    try:
        sampler = _by_type.get(type(value))  # the hot path: a type seen before, one dict lookup
        if sampler is None:
            return capture_value(value, rows, columns)
        return sampler(value, rows, columns)
    except Exception as exc:
        logger.debug("aither: sampling %s failed", type(value).__name__, exc_info=True)
        return capture_failed(value, exc)
