"""What a pipeline call's features and prediction become.

Everything here runs on the caller's thread and only notes metadata or keeps a few references: texts become
core's text rows (their descriptors, computed on the worker: ``aither._capture._columns``), texts inside other
inputs are cut to :data:`MAX_TEXT_CHARS`, images and audio become their metadata (never their pixels or
samples), embeddings become their shape and their first :data:`EMBEDDING_HEAD` values. The ``render``
functions run on aither's worker. Types are recognised by class module and name, so nothing here imports PIL,
numpy or torch.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol, TypeGuard

from aither.integrations import (
    Captured,
    OutputCapture,
    Tokenize,
    bounded_prediction,
    capture_features,
    capture_prediction,
    capture_text_records,
    capture_texts,
    render_as_is,
    tokenizer_counts,
    truncated_rows,
)

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    from torch import Tensor
    from transformers import PreTrainedTokenizerBase

    #: An embedding's first values, kept for the worker: a slice of the tensor or array the pipeline returned.
    _Head = Tensor | npt.NDArray[np.generic]
    #: An embedding's summary: (shape, dtype, type name, first values) of a tensor or array, (shape, first items)
    #: of a nested list.
    _Summary = tuple[list[int], str, str, _Head] | tuple[list[int], list[object]]

__all__ = [
    "EMBEDDING_HEAD",
    "MAX_TEXT_CHARS",
    "capture_inputs",
    "capture_inputs_safely",
    "capture_output",
    "worker_tokenize",
]

#: Texts in ``ml.features`` are cut to this many characters (the cut is marked in ``_meta.truncated``).
MAX_TEXT_CHARS = 1000
#: Values kept from each embedding (feature-extraction output): its shape and its first values, never all of it.
EMBEDDING_HEAD = 8
#: Items of a list input checked to be records of texts (the rest are taken alike: a pipeline's list is uniform).
MAX_RECORDS_CHECKED = 8
#: Tasks whose output is an embedding, summarised instead of recorded whole.
EMBEDDING_TASKS = frozenset({"feature-extraction", "image-feature-extraction"})


class _Image(Protocol):
    """A PIL image, as far as its metadata is read here (recognised by class name: PIL is not imported)."""

    @property
    def size(self) -> tuple[int, int]: ...
    @property
    def mode(self) -> str: ...
    @property
    def format(self) -> str | None: ...


def _root(value: object) -> tuple[str, str]:
    cls = type(value)
    return cls.__module__.partition(".")[0], cls.__name__


def _is_pil_image(value: object) -> TypeGuard[_Image]:
    return any(k.__module__ == "PIL.Image" and k.__name__ == "Image" for k in type(value).__mro__)


def _is_array(value: object) -> TypeGuard[npt.NDArray[np.generic]]:
    return _root(value) == ("numpy", "ndarray")


def _is_tensor(value: object) -> TypeGuard[Tensor]:
    return _root(value)[0] == "torch" and hasattr(value, "shape") and hasattr(value, "detach")


def _array_type(value: object) -> str:
    return "numpy.ndarray" if _is_array(value) else "torch.Tensor"


class _Item:
    """Mutable flag shared while sampling one call: whether anything was cut."""

    __slots__ = ("truncated",)

    def __init__(self) -> None:
        self.truncated = False


def _audio(value: Tensor | npt.NDArray[np.generic], rate: int | None) -> dict[str, object]:
    shape = [int(n) for n in value.shape]
    meta: dict[str, object] = {"_type": "audio", "shape": shape, "dtype": str(value.dtype)}
    if rate is not None:
        meta["sampling_rate"] = int(rate)
        if shape:
            meta["seconds"] = round(shape[-1] / rate, 3) if rate else None
    return meta


def _item(value: object, columns: int, audio_rate: int | None, state: _Item, depth: int = 0) -> object:
    """One input item as JSON-able metadata (cheap; bounded whatever the item's size)."""
    if isinstance(value, str):
        if len(value) > MAX_TEXT_CHARS:
            state.truncated = True
            return value[:MAX_TEXT_CHARS]
        return value
    if value is None or isinstance(value, (bool, int, float)):
        return value
    if _is_pil_image(value):
        return {"_type": "PIL.Image", "size": list(value.size), "mode": value.mode, "format": value.format}
    if _is_array(value) or _is_tensor(value):
        if value.ndim == 1:  # raw audio samples (ASR, audio-classification)
            return _audio(value, audio_rate)
        shape = [int(n) for n in value.shape]
        return {"_type": _array_type(value), "shape": shape, "dtype": str(value.dtype)}
    if isinstance(value, Mapping):
        rate = value.get("sampling_rate", audio_rate)
        samples = value.get("raw", value.get("array"))
        if samples is not None and (_is_array(samples) or _is_tensor(samples)):
            meta = _audio(samples, rate)
            meta["keys"] = [str(k) for k in itertools.islice(value.keys(), columns)]
            return meta
        if len(value) > columns:
            state.truncated = True
        return {
            str(k): _item(v, columns, audio_rate, state, depth + 1) for k, v in itertools.islice(value.items(), columns)
        }
    if isinstance(value, (list, tuple)) and depth < 2:  # a text pair, pre-tokenised words
        if len(value) > columns:
            state.truncated = True
        return [_item(v, columns, audio_rate, state, depth + 1) for v in value[:columns]]
    if isinstance(value, (bytes, bytearray)):
        return {"_type": "bytes", "size": len(value)}
    return {"_type": f"{_root(value)[0]}.{type(value).__qualname__}"}


def _kind(value: object) -> str:
    if isinstance(value, str):
        return "str"
    if _is_pil_image(value):
        return "PIL.Image"
    if _is_array(value) or _is_tensor(value):
        return "audio" if value.ndim == 1 else _array_type(value)
    if isinstance(value, Mapping):
        samples = value.get("raw", value.get("array"))
        return "audio" if samples is not None and hasattr(samples, "shape") else "dict"
    root, name = _root(value)
    return name if root == "builtins" else f"{root}.{name}"


def capture_inputs(
    value: object, task: str | None, audio_rate: int | None, rows: int, columns: int, tokenize: Tokenize | None = None
) -> Captured:
    """A pipeline input as ``{"sample": [...], "_meta": {type, count, truncated, task}}`` (caller thread, cheap).

    Texts (a string, a list of strings) are core's text rows: each sampled text's descriptors, with its
    token counts from ``tokenize`` (the pipeline's own tokenizer), the texts in ``_meta.texts``."""
    if isinstance(value, str) or (
        isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value[:rows])
    ):
        texts = [value] if isinstance(value, str) else value
        if all(isinstance(v, str) for v in texts):
            extra: dict[str, object] = {"count": len(texts), "task": task} if task else {"count": len(texts)}
            kind = "str" if isinstance(value, str) else "list[str]"
            return capture_texts(texts, rows, tokenize=tokenize, type_name=kind, extra=extra)
    records = _text_records(value)
    if records is not None:
        extra = {"count": len(records), "task": task} if task else {"count": len(records)}
        kind = "dict" if isinstance(value, Mapping) else "list[dict]"
        return capture_text_records(records, rows, tokenize=tokenize, type_name=kind, extra=extra)
    state = _Item()
    if isinstance(value, (list, tuple)):
        count: int | None = len(value)
        head = value[:rows]
        kinds = {_kind(v) for v in head}
        type_name = f"list[{kinds.pop()}]" if len(kinds) == 1 else "list"
        sample = [_item(v, columns, audio_rate, state) for v in head]
        truncated = state.truncated or len(value) > rows
    elif isinstance(value, (str, Mapping)) or _is_pil_image(value) or _is_array(value) or _is_tensor(value):
        count = 1
        type_name = _kind(value)
        sample = [_item(value, columns, audio_rate, state)] if rows else []
        truncated = state.truncated or not rows
    else:
        # A generator, a Dataset, a DataLoader...: never consumed here, or the pipeline would lose its items.
        count = len(value) if hasattr(value, "__len__") else None
        type_name = _kind(value)
        sample = []
        truncated = True
    meta: dict[str, object] = {"type": type_name, "count": count, "truncated": truncated}
    if task:
        meta["task"] = task
    return Captured(render_as_is, {"sample": sample, "_meta": meta}, 1 if count is None else count, 256 * (rows + 1))


def _text_records(value: object) -> list[Mapping[str, str]] | None:
    """A pipeline's dict input of texts (``{"question", "context"}``, ``{"text", "text_pair"}``), or a list of
    them, as a list of records; None for anything else. Only the first ``MAX_RECORDS_CHECKED`` are checked."""
    items = [value] if isinstance(value, Mapping) else value if isinstance(value, (list, tuple)) and value else None
    if items is None:
        return None
    for item in items[:MAX_RECORDS_CHECKED]:
        if not isinstance(item, Mapping) or not item or not all(isinstance(v, str) for v in item.values()):
            return None
    return list(items) if isinstance(items, tuple) else items


def worker_tokenize(tokenizer: PreTrainedTokenizerBase | None) -> Tokenize | None:
    """Token counts for the worker, from a copy of the pipeline's tokenizer made once here: a fast tokenizer
    is not safe to share with the caller's thread ("Already borrowed"), and its own copy never contends.
    None without a tokenizer, or when it cannot be copied (then texts have no token counts)."""
    if tokenizer is None:
        return None
    try:
        return tokenizer_counts(copy.deepcopy(tokenizer))
    except Exception:
        return None


def capture_inputs_safely(
    value: object, task: str | None, audio_rate: int | None, rows: int, columns: int, tokenize: Tokenize | None = None
) -> Captured:
    try:
        return capture_inputs(value, task, audio_rate, rows, columns, tokenize)
    except Exception:  # fall back to core's generic sampling; never raise into the call
        return capture_features(value, rows, columns)


# ------------------------------------------------------------------------------------------------ outputs


def _nested_shape(value: object) -> list[int]:
    """Shape of a rectangular nested list, following the first element at each level (O(depth))."""
    shape: list[int] = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        if not value:
            break
        value = value[0]
    return shape


def _nested_head(value: object) -> list[object]:
    while isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple)):
        value = value[0]
    return list(value[:EMBEDDING_HEAD]) if isinstance(value, (list, tuple)) else [value]


def _summary(value: object) -> _Summary:
    """An embedding's summary; tensors keep a tiny slice, rendered on the worker."""
    if _is_tensor(value):
        tensor_head = value.detach().reshape(-1)[:EMBEDDING_HEAD].clone()
        dtype = str(value.dtype).removeprefix("torch.")
        return [int(n) for n in value.shape], dtype, "torch.Tensor", tensor_head
    if _is_array(value):
        array_head = value.reshape(-1)[:EMBEDDING_HEAD].copy()
        return [int(n) for n in value.shape], str(value.dtype), "numpy.ndarray", array_head
    return _nested_shape(value), _nested_head(value)


def _render_summary(summary: _Summary) -> dict[str, object]:
    if len(summary) == 4:  # a tensor's or an array's
        shape, dtype, type_name, head = summary
        return {"shape": shape, "head": head.tolist(), "_meta": {"type": type_name, "dtype": dtype, "summary": True}}
    shape, items = summary
    return {"shape": shape, "head": items, "_meta": {"type": "list", "summary": True}}


def _render_embeddings(data: tuple[bool, list[_Summary], int, int]) -> object:
    batched, summaries, total, limit = data
    if not batched:
        return _render_summary(summaries[0])
    values = [_render_summary(summary) for summary in summaries]
    if total <= limit:
        return values
    return truncated_rows(values, total)


def output_capture(task: str | None, batched: bool) -> OutputCapture:
    """How to capture the output of one call (of a ``task`` pipeline, on a batch or not), for ``ModelLogger.call``."""

    def capture(output: object, limit: int) -> Captured:
        try:
            return capture_output(output, task, batched, limit)
        except Exception:  # core's generic capture takes over
            return capture_prediction(output, limit)

    return capture


def capture_output(output: object, task: str | None, batched: bool, limit: int) -> Captured:
    """The pipeline's output: labels/scores/entities as they are (up to ``limit`` rows), embeddings summarised."""
    embedding = task in EMBEDDING_TASKS or _is_tensor(output) or _is_array(output)
    if isinstance(output, (list, tuple)):
        total = len(output) if batched else 1
        if embedding:
            rows = output[:limit] if batched else [output]
            summaries = [_summary(r) for r in rows]
            return Captured(_render_embeddings, (batched, summaries, total, limit), total, 128 * len(rows))
        # References to the pipeline's fresh output (lists of small dicts), turned into JSON on the worker.
        if batched:
            return bounded_prediction(list(output[:limit]), total, 64 * min(total, limit))
        return Captured(render_as_is, output, 1, 64)  # one input's output (a list of labels, of entities)
    if embedding:
        return Captured(_render_embeddings, (False, [_summary(output)], 1, limit), 1, 128)
    if isinstance(output, Mapping) or output is None or isinstance(output, (str, int, float, bool)):
        return Captured(render_as_is, output, 1, 256)
    # A generator (iterable inputs): the pipeline's results are produced as the caller iterates; never consume.
    root, name = _root(output)
    return Captured(render_as_is, {"_meta": {"type": f"{root}.{name}", "lazy": True}}, 1, 64)
