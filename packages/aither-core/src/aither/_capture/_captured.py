"""The ``Captured`` type: a bounded copy taken on the caller's thread, and how the worker renders it."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = [
    "Captured",
    "capture_failed",
    "render",
    "render_as_is",
    "render_fields",
    "render_items",
    "truncated_rows",
    "type_name",
]

logger = logging.getLogger("aither")


class Captured(NamedTuple):
    """A bounded copy of some data, and how to turn it into JSON-able data later (on the worker)."""

    # Each renderer takes the data its own sampler built (a tuple of arrays, a list of records...): the pair
    # is only ever called together, ``render(data)``, so no one type fits every capture.
    render: Callable[[Any], object]
    data: Any
    #: Rows in the whole input (``ml.batch_size``).
    rows: int
    #: Rough size of ``data`` in bytes, for the queue's byte bound.
    nbytes: int


def render_as_is(data: object) -> object:
    """The renderer of data that is already plain JSON-able Python (a scalar, a marker dict)."""
    return data


def truncated_rows(values: object, total_rows: int) -> dict[str, object]:
    """The wire contract's marker of an output whose rows were cut: ``{"values", "_meta": {truncated, total_rows}}``."""
    return {"values": values, "_meta": {"truncated": True, "total_rows": total_rows}}


def render_items(data: tuple[list[Captured], int]) -> object:
    """The renderer of a tuple or list output captured item by item: ``(items, total items)``. The rendered
    items, as :func:`truncated_rows` when the output had more than were captured."""
    items, total = data
    values = [render(item) for item in items]
    if total <= len(items):
        return values
    return truncated_rows(values, total)


def render_fields(fields: dict[str, Captured]) -> dict[str, object]:
    """The renderer of a dict output (or a transformers ``ModelOutput``) captured field by field."""
    return {key: render(captured) for key, captured in fields.items()}


def capture_failed(value: object, exc: BaseException) -> Captured:
    """What is recorded when capturing ``value`` raised: its type and the exception's name, never the value."""
    return Captured(render_as_is, {"_meta": {"type": type_name(value), "error": type(exc).__name__}}, 1, 64)


def render(captured: Captured) -> Any:  # plugins' tests read the JSON they know a capture renders as
    """Turn a capture into JSON-able data; a failing renderer yields an error marker instead of raising."""
    try:
        return captured.render(captured.data)
    except Exception as exc:  # a sampler bug must never lose the prediction
        logger.debug("aither: rendering a sample failed", exc_info=True)
        return {"_meta": {"error": f"{type(exc).__name__}: sample could not be rendered"}}


def type_name(value: object) -> str:
    """``numpy.ndarray``, ``list``: the type of ``value`` as ``_meta.type`` names it."""
    cls = type(value)
    root = cls.__module__.partition(".")[0]
    return cls.__qualname__ if root == "builtins" else f"{root}.{cls.__qualname__}"
