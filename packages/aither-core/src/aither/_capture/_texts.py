"""Texts as the rows drift profiles: a list of strings (or one string) becomes per-row text descriptors.

The caller's thread only draws the sampled rows and keeps references to those strings (immutable: nothing is
copied); the worker computes the descriptors (``_columns.text_columns``) with the model's tokenizer when there
is one. ``_meta.texts`` keeps the sampled texts themselves, cut to ``MAX_STRING_CHARS``, for reading.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Protocol

from ._captured import Captured
from ._columns import Tokenize, records, text_columns, text_field_columns
from ._scalars import cut_string
from ._schema import schema_meta
from ._window import random_rows


class Tokenizer(Protocol):
    """A transformers tokenizer, as far as counting tokens goes: ``tokenizer(texts, add_special_tokens=False)``."""

    def __call__(self, texts: list[str], *, add_special_tokens: bool) -> Mapping[str, Sequence[Sequence[int]]]: ...


__all__ = ["capture_text_records", "capture_texts", "tokenizer_counts"]


def _kind(name: str) -> str:
    base = name.rpartition(".")[2]
    return "bool" if base == "empty" else "int64" if base in ("chars", "words", "tokens") else "float64"


def _render_texts(data: tuple[list[str], list[int], int, str, Tokenize | None, dict[str, object]]) -> object:
    texts, rows, total, type_name, tokenize, extra = data
    columns = text_columns(texts, tokenize)
    kinds = [_kind(name) for name in columns]
    meta: dict[str, object] = {"type": type_name, "shape": [total], "rows": rows}
    meta.update(schema_meta(("texts", tuple(columns)), columns, kinds))
    meta["texts"] = [cut_string(text)[0] for text in texts]
    meta["truncated"] = total > len(rows) or any(cut_string(text)[1] for text in texts)
    meta.update(extra)
    return {"sample": records(columns), "_meta": meta}


def capture_texts(
    texts: Sequence[str],
    rows: int,
    *,
    tokenize: Tokenize | None = None,
    type_name: str = "list[str]",
    extra: dict[str, object] | None = None,
) -> Captured:
    """``rows`` texts drawn at random from ``texts``, rendered as their descriptors; ``extra`` joins ``_meta``."""
    total = len(texts)
    picked = random_rows(total, rows)
    chosen = [texts[i] for i in picked]
    nbytes = 64 + sum(49 + min(len(text), 1000) for text in chosen)
    return Captured(_render_texts, (chosen, picked, total, type_name, tokenize, extra or {}), total, nbytes)


def tokenizer_counts(tokenizer: Tokenizer) -> Tokenize:
    """Token and unknown-token counts per text from a transformers tokenizer (or anything called like one:
    ``tokenizer(texts, add_special_tokens=False)["input_ids"]``, and an ``unk_token_id``)."""
    unknown_id = getattr(tokenizer, "unk_token_id", None)

    def tokenize(texts: Sequence[str]) -> tuple[list[int], list[int]]:
        ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        counts = [len(row) for row in ids]
        unknown = [sum(1 for token in row if token == unknown_id) if unknown_id is not None else 0 for row in ids]
        return counts, unknown

    return tokenize


def _render_text_records(
    data: tuple[list[Mapping[str, str]], list[int], int, str, Tokenize | None, dict[str, object]],
) -> object:
    items, rows, total, type_name, tokenize, extra = data
    columns = text_field_columns(items, tokenize)
    kinds = [_kind(name) for name in columns]
    meta: dict[str, object] = {"type": type_name, "shape": [total], "rows": rows}
    meta.update(schema_meta(("text_records", tuple(columns)), columns, kinds))
    cut = [{str(k): cut_string(v)[0] for k, v in item.items()} for item in items]
    meta["texts"] = cut
    meta["truncated"] = total > len(rows) or any(cut_string(v)[1] for item in items for v in item.values())
    meta.update(extra)
    return {"sample": records(columns), "_meta": meta}


def capture_text_records(
    items: Sequence[Mapping[str, str]],
    rows: int,
    *,
    tokenize: Tokenize | None = None,
    type_name: str = "list[dict]",
    extra: dict[str, object] | None = None,
) -> Captured:
    """``rows`` records of texts (a pipeline's ``{"question", "context"}`` inputs) drawn at random, rendered as
    each field's descriptors (``question.chars``...); references only on the caller's thread."""
    total = len(items)
    picked = random_rows(total, rows)
    # Shallow copies of the sampled records: a pipeline may pop keys from its input dicts while it runs.
    chosen = [dict(items[i]) for i in picked]
    nbytes = 64 + sum(49 + min(len(text), 1000) for item in chosen for text in item.values())
    return Captured(_render_text_records, (chosen, picked, total, type_name, tokenize, extra or {}), total, nbytes)
