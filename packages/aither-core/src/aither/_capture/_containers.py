"""Samplers of containers: dicts, lists and tuples (of records, of scalars, of anything), each item bounded."""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from typing import Any

from ._captured import Captured, render
from ._registry import capture_value
from ._scalars import cut_string, render_string

__all__ = ["capture_mapping", "capture_sequence"]


def _render_mapping(data: tuple[dict[str, Captured], list[str], int]) -> Any:
    items, keys, total_keys = data
    return {
        "sample": {key: render(captured) for key, captured in items.items()},
        "_meta": {"type": "dict", "keys": keys, "truncated": total_keys > len(items)},
    }


def capture_mapping(value: Mapping[Any, Any], rows: int, columns: int) -> Captured:
    items: dict[str, Captured] = {}
    for key, item in itertools.islice(value.items(), columns):
        items[str(key)] = capture_value(item, rows, columns)
    batch = 1
    for captured in items.values():
        batch = captured.rows
        break
    keys = [str(k) for k in itertools.islice(value.keys(), 1000)]
    return Captured(_render_mapping, (items, keys, len(value)), batch, sum(c.nbytes for c in items.values()) + 64)


def _render_records(data: tuple[list[dict[str, Any]], int, bool]) -> Any:
    records, total, cut_columns = data
    names: list[str] = []
    for record in records:
        for key in record:
            if key not in names:
                names.append(key)
    sample = [
        {key: render(value) if isinstance(value, Captured) else value for key, value in record.items()}
        for record in records
    ]
    return {
        "sample": sample,
        "_meta": {
            "type": "list[dict]",
            "shape": [total, len(names)],
            "columns": names,
            "truncated": total > len(records) or cut_columns,
        },
    }


def _render_sequence(data: tuple[list[Any], str, int]) -> Any:
    items, type_name, total = data
    sample = [render(item) if isinstance(item, Captured) else item for item in items]
    return {"sample": sample, "_meta": {"type": type_name, "shape": [total], "truncated": total > len(items)}}


def capture_sequence(value: list[Any] | tuple[Any, ...], rows: int, columns: int) -> Captured:
    total = len(value)
    head = value[:rows]
    if head and all(isinstance(item, Mapping) for item in head):
        records = []
        cut = False
        for item in head:
            # Each value as a bounded copy, like a list's items: a record's array or text is not kept whole.
            record = {
                str(k): v if type(v) in _PLAIN else _sample_item(v, rows, columns)
                for k, v in itertools.islice(item.items(), columns)
            }
            cut = cut or len(item) > columns
            records.append(record)
        return Captured(_render_records, (records, total, cut), total, 64 * rows * columns)
    items = [item if type(item) in _PLAIN else _sample_item(item, rows, columns) for item in head]
    return Captured(_render_sequence, (items, type(value).__name__, total), total, 64 * rows * columns)


_PLAIN = frozenset({float, int, bool, type(None)})


def _sample_item(item: Any, rows: int, columns: int) -> Any:
    """One value of a list or record: a scalar as it is, a string cut, anything else captured (bounded)."""
    if item is None or isinstance(item, (bool, int, float)):
        return item
    if isinstance(item, str):
        return render_string(cut_string(item))
    return capture_value(item, rows, columns)
