"""Samplers of containers: dicts, lists and tuples (of records, of scalars, of anything), each item bounded."""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from typing import cast

from ._captured import Captured, render
from ._registry import capture_value
from ._scalars import cut_string, render_string
from ._schema import schema_meta
from ._texts import capture_texts
from ._window import column_window, random_rows

__all__ = ["capture_mapping", "capture_sequence"]


def _type_names(types: tuple[type, ...]) -> list[str]:
    return [
        t.__name__ if t.__module__ == "builtins" else f"{t.__module__.partition('.')[0]}.{t.__qualname__}"
        for t in types
    ]


def _render_mapping(data: tuple[dict[str, Captured], list[str], int, tuple[type, ...]]) -> object:
    items, keys, total_keys, types = data
    meta: dict[str, object] = {"type": "dict", "keys": keys}
    if len(keys) == total_keys:  # a dict of up to 1,000 keys: its schema is its keys and their value types
        meta.update(schema_meta(("dict", tuple(keys), types), keys, _type_names(types)))
    meta["truncated"] = total_keys > len(items)
    return {"sample": {key: render(captured) for key, captured in items.items()}, "_meta": meta}


def capture_mapping(value: Mapping[object, object], rows: int, columns: int) -> Captured:
    # A dict is one row of named features (or named inputs); with more keys than ``columns``, the sampled
    # keys are a window that rotates across calls like a table's columns.
    start, stop = column_window(len(value), columns)
    items: dict[str, Captured] = {}
    # One row, unless the dict is columns of a batch: every sampled value an array (numpy, pandas, polars, a
    # tensor: a tokenizer's input_ids and attention_mask) of one length. A list value is one feature's value.
    batch_rows: set[int] | None = set()
    for key, item in itertools.islice(value.items(), start, stop):
        captured = items[str(key)] = capture_value(item, rows, columns)
        if batch_rows is not None:
            shape = getattr(item, "shape", None)
            if isinstance(item, (str, bytes, list, tuple, Mapping)) or not shape:
                batch_rows = None
            else:
                batch_rows.add(captured.rows)
    batch = batch_rows.pop() if batch_rows and len(batch_rows) == 1 else 1
    keys = [str(k) for k in itertools.islice(value.keys(), 1000)]
    types = tuple(map(type, value.values())) if len(value) <= 1000 else ()
    nbytes = sum(c.nbytes for c in items.values()) + 64
    return Captured(_render_mapping, (items, keys, len(value), types), batch, nbytes)


def _render_records(
    data: tuple[list[dict[str, object]], int, list[int], int, int, list[str], tuple[type, ...]],
) -> object:
    records, total, rows, start, stop, names, types = data
    sample = [
        {key: render(value) if isinstance(value, Captured) else value for key, value in record.items()}
        for record in records
    ]
    meta: dict[str, object] = {"type": "list[dict]", "shape": [total, len(names)], "rows": rows}
    # The schema is the first record's keys and the types of its values.
    meta.update(schema_meta(("records", tuple(names), types), names, _type_names(types)))
    meta["truncated"] = total > len(records) or len(names) > stop - start
    return {"sample": sample, "_meta": meta}


def _render_sequence(data: tuple[list[object], str, int]) -> object:
    items, type_name, total = data
    sample = [render(item) if isinstance(item, Captured) else item for item in items]
    return {"sample": sample, "_meta": {"type": type_name, "shape": [total], "truncated": total > len(items)}}


def capture_sequence(value: list[object] | tuple[object, ...], rows: int, columns: int) -> Captured:
    total = len(value)
    if total and isinstance(value[0], str):  # texts: their descriptors, if every sampled item is a string
        # Every item is a string as far as the sampler is concerned: the sampled ones are checked just below.
        texts = capture_texts(cast("Sequence[str]", value), rows, type_name=f"{type(value).__name__}[str]")
        if all(isinstance(text, str) for text in texts.data[0]):
            return texts
    if total and isinstance(value[0], Mapping):
        picked = random_rows(total, rows)
        chosen = [item for item in (value[i] for i in picked) if isinstance(item, Mapping)]
        if len(chosen) == len(picked):
            return _capture_records(value[0], chosen, total, picked, rows, columns)
    head = value[:rows]
    items = [item if type(item) in _PLAIN else _sample_item(item, rows, columns) for item in head]
    return Captured(_render_sequence, (items, type(value).__name__, total), total, 64 * rows * columns)


def _capture_records(
    first: Mapping[object, object],
    chosen: list[Mapping[object, object]],
    total: int,
    picked: list[int],
    rows: int,
    columns: int,
) -> Captured:
    # A list of dicts is a table: random rows, and the first record's keys are its columns, sampled through
    # the same rotating window as a frame's. Each value is a bounded copy, like a list's items.
    keys = list(first.keys())
    start, stop = column_window(len(keys), columns)
    window = keys[start:stop]
    records = []
    for item in chosen:
        record = {}
        for key in window:
            if key in item:
                v = item[key]
                record[str(key)] = v if type(v) in _PLAIN else _sample_item(v, rows, columns)
        records.append(record)
    names = [str(k) for k in keys]
    types = tuple(map(type, first.values()))
    data = (records, total, picked, start, stop, names, types)
    return Captured(_render_records, data, total, 64 * len(picked) * max(1, stop - start))


_PLAIN = frozenset({float, int, bool, type(None)})


def _sample_item(item: object, rows: int, columns: int) -> object:
    """One value of a list or record: a scalar as it is, a string cut, anything else captured (bounded)."""
    if item is None or isinstance(item, (bool, int, float)):
        return item
    if isinstance(item, str):
        return render_string(cut_string(item))
    return capture_value(item, rows, columns)
