"""A JSON value as ``json.loads`` returns it: the type of parsed ``ml.prediction`` and ``ml.label`` values."""

from __future__ import annotations

from typing import TypeAlias

__all__ = ["JsonValue"]

JsonValue: TypeAlias = "str | int | float | bool | list[JsonValue] | dict[str, JsonValue] | None"
