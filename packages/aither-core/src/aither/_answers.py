"""Reading the server's JSON answers, shared by ``aither.models``, ``aither.monitors``, the management client
and ``aither.profile``: each field is checked as it is read, so what flows on is the type the snapshot says."""

from __future__ import annotations

import contextlib
import datetime
from collections.abc import Iterator, Mapping

from ._errors import APIError

__all__ = [
    "JsonObject",
    "as_object",
    "data_list",
    "integer",
    "number",
    "numbers",
    "objects",
    "optional_integer",
    "optional_number",
    "optional_text",
    "parse_time",
    "parsing_answer",
    "texts",
]

#: A decoded JSON object whose values are read field by field.
JsonObject = Mapping[str, object]


def as_object(payload: object) -> JsonObject:
    """``payload`` (a decoded answer) as a JSON object, or ``APIError`` when it is something else."""
    if not isinstance(payload, Mapping):
        raise APIError("the server sent an unexpected answer (not a JSON object)")
    return payload


def data_list(answer: JsonObject, what: str) -> list[JsonObject]:
    """The objects in the ``data`` list of a list answer (entries that are not objects are skipped); ``what``
    names that list in the error when there is none ("model list")."""
    items = answer.get("data")
    if not isinstance(items, list):
        raise APIError(f"the server sent an unexpected {what}")
    return [item for item in items if isinstance(item, Mapping)]


@contextlib.contextmanager
def parsing_answer(what: str) -> Iterator[None]:
    """Around the reading of an answer's fields: a missing or ill-typed one is the server's fault, not the
    caller's, so it is raised as ``APIError("the server sent <what> (...)")``."""
    try:
        yield
    except (KeyError, TypeError, ValueError) as exc:
        raise APIError(f"the server sent {what} ({type(exc).__name__}: {exc})") from None


def _kind(value: object) -> str:
    return type(value).__name__


def integer(value: object) -> int:
    """A JSON number (or numeric text) as an int; ``TypeError`` for anything else."""
    if isinstance(value, (int, float, str)):
        return int(value)
    raise TypeError(f"expected a number, got {_kind(value)}")


def number(value: object) -> float:
    """A JSON number (or numeric text) as a float; ``TypeError`` for anything else."""
    if isinstance(value, (int, float, str)):
        return float(value)
    raise TypeError(f"expected a number, got {_kind(value)}")


def optional_integer(value: object) -> int | None:
    return None if value is None else integer(value)


def optional_number(value: object) -> float | None:
    return None if value is None else number(value)


def optional_text(value: object) -> str | None:
    return None if value is None else str(value)


def texts(value: object) -> tuple[str, ...]:
    """A JSON list (or null) as a tuple of texts."""
    return tuple(str(item) for item in _list(value))


def objects(value: object) -> tuple[JsonObject, ...]:
    """The objects of a JSON list (or null); entries that are not objects are skipped."""
    return tuple(item for item in _list(value) if isinstance(item, Mapping))


def numbers(value: object) -> dict[str, float | None]:
    """A JSON object (or null) of numbers or nulls, by name."""
    if value is None:
        return {}
    return {str(key): optional_number(item) for key, item in as_mapping(value).items()}


def as_mapping(value: object) -> JsonObject:
    if not isinstance(value, Mapping):
        raise TypeError(f"expected an object, got {_kind(value)}")
    return value


def _list(value: object) -> list[object]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise TypeError(f"expected a list, got {_kind(value)}")
    return value


def parse_time(value: object) -> datetime.datetime | None:
    """An ISO 8601 time of an answer (``Z`` or an offset; UTC without one); None for null or unreadable text."""
    if not isinstance(value, str) or not value:
        return None
    text = value[:-1] + "+00:00" if value.endswith(("Z", "z")) else value
    try:
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=datetime.timezone.utc)
