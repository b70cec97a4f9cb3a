"""What a model input's rows become as the named columns drift and data quality profile.

One derivation for both sides of a drift comparison: the worker renders the sampled rows of a live call
through :func:`input_columns` / :func:`text_columns`, and ``aither.log_reference`` profiles every row of its
data through the same functions, so the two always have the same columns, named and computed alike.

* A table (2-D: rows, features): one column per feature, ``"0".."n-1"``, or the ``feature_names`` given to
  ``wrap`` and ``log_reference`` (:func:`named`).
* Images (4-D and more): per row and channel, ``pixel_mean[c]``, ``pixel_std[c]``, ``pixel_min[c]``,
  ``pixel_max[c]`` over the other axes. Channels are axis 1 (``N, C, H, W``) unless the last axis looks like
  channels and axis 1 does not (``N, H, W, C``: at most 4 values against more than 4).
* Sequences (3-D: rows, steps, features): ``length`` (steps up to the last one that is not all zeros),
  ``padding_share`` (the rest, as a share of the steps), and ``value_mean``, ``value_std``, ``value_min``,
  ``value_max`` over the steps kept.
* Texts: ``chars``, ``words``, ``digit_share``, ``non_ascii_share``, ``empty``, and with a tokenizer
  ``tokens`` and ``unknown_share`` (tokens the tokenizer does not know).
* Records of texts (a pipeline's dict inputs: ``{"question", "context"}``, ``{"text", "text_pair"}``): each
  field's text descriptors, named by field: ``question.chars``, ``context.tokens``...

numpy is imported inside the functions: they run on the worker or in ``log_reference``, never at import.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, TypeVar

from .._types import is_detachable, is_host_readable

if TYPE_CHECKING:
    from .._types import Array, FloatArray

__all__ = [
    "IMAGE_DESCRIPTORS",
    "as_array",
    "MAX_CHANNELS",
    "SEQUENCE_DESCRIPTORS",
    "TEXT_DESCRIPTORS",
    "Tokenize",
    "channels_last",
    "input_columns",
    "is_descriptor",
    "is_text_records",
    "named",
    "positional_names",
    "records",
    "text_columns",
    "text_field_columns",
]

#: Descriptors of each image channel, in column order: ``pixel_mean[0]``, ``pixel_std[0]``...
IMAGE_DESCRIPTORS = ("pixel_mean", "pixel_std", "pixel_min", "pixel_max")
#: Channels described per image; further ones (a feature map, not an image) are left out.
MAX_CHANNELS = 16
#: Descriptors of a sequence (rows, steps, features).
SEQUENCE_DESCRIPTORS = ("length", "padding_share", "value_mean", "value_std", "value_min", "value_max")
#: Descriptors of a text, in column order (``tokens`` and ``unknown_share`` only with a tokenizer).
TEXT_DESCRIPTORS = ("chars", "words", "tokens", "unknown_share", "non_ascii_share", "digit_share", "empty")

_DESCRIPTOR_NAMES = frozenset(IMAGE_DESCRIPTORS + SEQUENCE_DESCRIPTORS + TEXT_DESCRIPTORS)
#: ``tokenize(texts) -> (tokens per text, unknown tokens per text)``.
Tokenize = Callable[[Sequence[str]], tuple[Sequence[int], Sequence[int]]]
_V = TypeVar("_V")


def as_array(value: object) -> Array:
    """A torch, TensorFlow or tinygrad tensor, or anything numpy reads, as a numpy array (on the host)."""
    import numpy as np

    if is_detachable(value):  # torch
        host = value.detach().cpu()
        try:
            return host.numpy()
        except (TypeError, RuntimeError):  # bfloat16 and other dtypes numpy lacks
            return host.float().numpy()
    if not isinstance(value, np.ndarray) and is_host_readable(value):
        return np.asarray(value.numpy())  # TensorFlow, tinygrad (realised here)
    return np.asarray(value)


def channels_last(shape: Sequence[int]) -> bool:
    """Whether an image batch of ``shape`` holds its channels on the last axis (``N, H, W, C``)."""
    return len(shape) >= 4 and shape[-1] <= 4 < shape[1]


def input_columns(array: Array, start: int = 0) -> dict[str, Array]:
    """The named columns of ``array``'s rows (a numpy array, rows first): see the module docstring.

    ``start`` is the index of the first column of a 2-D array (a window of a wider table). A 1-D array is one
    column, ``"0"``.
    """
    import numpy as np

    if array.ndim == 1:
        return {str(start): array}
    if array.ndim > 2 and array.dtype.kind not in "biuf":
        return {}  # descriptors of complex, text or object arrays: none
    if array.ndim == 2:
        return {str(start + j): array[:, j] for j in range(array.shape[1])}
    with np.errstate(all="ignore"):  # huge values overflow to inf in a std: a descriptor, not a warning
        if array.ndim == 3:
            return _sequence_columns(np.asarray(array, dtype=np.float64))
        return _image_columns(array)


def _image_columns(array: Array) -> dict[str, Array]:
    import numpy as np

    moved = np.moveaxis(array, -1, 1) if channels_last(array.shape) else array
    count = min(moved.shape[1], MAX_CHANNELS)
    flat = moved[:, :count].reshape(moved.shape[0], count, -1).astype(np.float64, copy=False)
    empty = flat.shape[2] == 0
    stats = (
        [np.full(flat.shape[:2], np.nan)] * 4
        if empty
        else [flat.mean(axis=2), flat.std(axis=2), flat.min(axis=2), flat.max(axis=2)]
    )
    columns: dict[str, Array] = {}
    for channel in range(count):
        for name, values in zip(IMAGE_DESCRIPTORS, stats, strict=True):
            columns[f"{name}[{channel}]"] = values[:, channel]
    return columns


def _sequence_columns(array: FloatArray) -> dict[str, Array]:
    import numpy as np

    rows, steps = array.shape[0], array.shape[1]
    used = np.abs(array).sum(axis=2) != 0 if array.shape[2] else np.zeros((rows, steps), dtype=bool)
    # The length runs to the last step with any non-zero value: padding is the zeros after it.
    last = np.where(used.any(axis=1), steps - np.argmax(used[:, ::-1], axis=1), 0)
    columns: dict[str, Array] = {
        "length": last.astype(np.int64),
        "padding_share": 1.0 - last / steps if steps else np.zeros(rows),
    }
    mean = np.full(rows, np.nan)
    std, low, high = mean.copy(), mean.copy(), mean.copy()
    for i in range(rows):
        kept = array[i, : last[i]]
        if kept.size:
            mean[i], std[i], low[i], high[i] = kept.mean(), kept.std(), kept.min(), kept.max()
    columns.update(value_mean=mean, value_std=std, value_min=low, value_max=high)
    return columns


def text_columns(texts: Sequence[str], tokenize: Tokenize | None = None) -> dict[str, Sequence[float]]:
    """The descriptors of each text (see the module docstring); the token counts when ``tokenize`` is given
    and does not raise."""
    chars = [len(text) for text in texts]
    columns: dict[str, Sequence[float]] = {"chars": chars, "words": [len(text.split()) for text in texts]}
    if tokenize is not None:
        try:
            tokens, unknown = tokenize(texts)
        except Exception:  # a tokenizer that fails on these texts leaves its two columns out, nothing else
            pass
        else:
            columns["tokens"] = [int(n) for n in tokens]
            columns["unknown_share"] = [u / n if n else 0.0 for n, u in zip(tokens, unknown, strict=True)]
    columns["non_ascii_share"] = [
        sum(1 for ch in text if ord(ch) > 127) / n if n else 0.0 for text, n in zip(texts, chars, strict=True)
    ]
    columns["digit_share"] = [
        sum(1 for ch in text if ch.isdigit()) / n if n else 0.0 for text, n in zip(texts, chars, strict=True)
    ]
    columns["empty"] = [not text.strip() for text in texts]
    return columns


def is_text_records(value: object) -> bool:
    """Whether ``value`` is a non-empty list of dicts whose values are all strings (a pipeline's text fields)."""
    return (
        isinstance(value, (list, tuple))
        and bool(value)
        and all(isinstance(item, Mapping) and item and all(isinstance(v, str) for v in item.values()) for item in value)
    )


def text_field_columns(
    items: Sequence[Mapping[str, str]], tokenize: Tokenize | None = None
) -> dict[str, Sequence[float]]:
    """Each field's :func:`text_columns` over ``items`` (records of texts), named ``field.descriptor``; a field
    an item lacks counts as an empty text."""
    fields = list(dict.fromkeys(str(key) for item in items for key in item))
    columns: dict[str, Sequence[float]] = {}
    for field in fields:
        texts = [str(item.get(field, "")) for item in items]
        for name, values in text_columns(texts, tokenize).items():
            columns[f"{field}.{name}"] = values
    return columns


def is_descriptor(name: str) -> bool:
    """Whether ``name`` is a descriptor column (of texts, sequences or images), not one of a table's features.

    Descriptors are a fixed, small set per kind of input: every one is in every sampled row, where a wide
    table's features come a window of ``sample_columns`` at a time."""
    base = name.partition("[")[0] if name.endswith("]") else name
    return base in _DESCRIPTOR_NAMES or base.rpartition(".")[2] in TEXT_DESCRIPTORS


def named(columns: Mapping[str, _V], feature_names: Sequence[str] | None) -> dict[str, _V]:
    """``columns`` with the positional names ``"0".."n-1"`` replaced by ``feature_names[i]``."""
    if not feature_names:
        return dict(columns)
    return {_name(key, feature_names): value for key, value in columns.items()}


def _name(key: str, feature_names: Sequence[str]) -> str:
    if key.isdigit():
        index = int(key)
        if index < len(feature_names):
            return feature_names[index]
    return key


_positional: dict[int, list[str]] = {}


def positional_names(count: int) -> list[str]:
    """``["0", "1", ..., str(count - 1)]``, built once per width (shared: never mutate it)."""
    names = _positional.get(count)
    if names is None:
        if len(_positional) >= 1024:
            _positional.clear()
        names = _positional[count] = [str(j) for j in range(count)]
    return names


def records(columns: Mapping[str, Array | Sequence[object]]) -> list[dict[str, object]]:
    """Columns (numpy arrays or lists of equal length) as one JSON-able dict per row."""
    names = list(columns)
    lists = [list(values) if isinstance(values, Sequence) else values.tolist() for values in columns.values()]
    return [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
