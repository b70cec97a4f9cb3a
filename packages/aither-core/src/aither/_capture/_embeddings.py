"""Embeddings: each sampled row's pooled hidden state, reduced to :data:`EMBEDDING_DIM` values on the worker.

A plugin's forward hook hands over the hidden states the model's own forward pass already computed (no second
pass). On the caller's thread only the sampled rows are kept (:func:`capture_embeddings`: an index into the
tensor, a copy of a few rows); the worker pools them (the mean over the tokens a mask keeps, for a sequence
of hidden states) and projects them with :func:`projection`, a fixed random matrix that depends only on the
vectors' width. ``log_reference(..., embeddings=)`` projects the reference's vectors with the same matrix, so
the server compares like with like (``_meta.embeddings`` of a span, ``embeddings`` of a reference).

numpy is imported inside the functions: they run on the worker or in ``log_reference``, never at import.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypedDict, TypeGuard

from ._captured import Captured, render
from ._window import random_rows

if TYPE_CHECKING:
    import torch

    from .._types import Array, FloatArray, Shaped

    #: ``(hidden states, token mask or None)`` of one forward pass: torch tensors or numpy arrays, rows first.
    HiddenPart = tuple[Shaped, Shaped | None]

__all__ = [
    "EMBEDDING_DIM",
    "EMBEDDING_SEED",
    "MAX_REFERENCE_EMBEDDINGS",
    "capture_embeddings",
    "first_tensor",
    "is_torch_tensor",
    "pooled",
    "project",
    "projection",
    "reference_embeddings",
    "with_embeddings",
]

#: Width of every projected embedding, on the wire and on the server.
EMBEDDING_DIM = 32
#: Seed of the projection: with the source width it fixes the matrix, on every client and for every reference.
EMBEDDING_SEED = 0xA17E
#: Reference rows sent (drawn at random from a larger reference; the domain classifier needs no more).
MAX_REFERENCE_EMBEDDINGS = 2000
#: Digits kept of each projected value: the classifier cannot use more, and the span stays small.
_DIGITS = 5


class Projected(TypedDict):
    """Projected embeddings as sent: the source width, and :data:`EMBEDDING_DIM` values per row."""

    dim: int
    vectors: list[list[float]]


_matrices: dict[int, FloatArray] = {}
_lock = threading.Lock()


def projection(width: int) -> FloatArray:
    """The ``(width, EMBEDDING_DIM)`` Gaussian random projection (scaled to keep distances), made once per width.

    Drawn from numpy's PCG64 seeded with ``(EMBEDDING_SEED, width)``: the same matrix in every process."""
    import numpy as np

    with _lock:
        matrix = _matrices.get(width)
        if matrix is None:
            rng = np.random.Generator(np.random.PCG64([EMBEDDING_SEED, width]))
            matrix = rng.standard_normal((width, EMBEDDING_DIM)) / np.sqrt(EMBEDDING_DIM)
            _matrices[width] = matrix
        return matrix


def pooled(hidden: object, mask: object = None) -> FloatArray:
    """One vector per row: a 2-D ``(rows, width)`` array as it is; a 3-D ``(rows, tokens, width)`` one averaged
    over the tokens ``mask`` keeps (all without a mask); wider ones flattened after the row axis."""
    import numpy as np

    array = np.asarray(hidden, dtype=np.float64)
    if array.ndim == 1:
        return array.reshape(1, -1)
    if array.ndim == 3:
        if mask is None:
            mean: FloatArray = array.mean(axis=1)
            return mean
        weights = np.asarray(mask, dtype=np.float64).reshape(array.shape[0], array.shape[1], 1)
        kept = weights.sum(axis=1)
        weighted: FloatArray = (array * weights).sum(axis=1) / np.where(kept == 0, 1.0, kept)
        return weighted
    return array.reshape(array.shape[0], -1)


def project(vectors: object) -> Projected:
    """``{"dim": source width, "vectors": [[EMBEDDING_DIM floats] per row]}`` of 2-D ``vectors`` (rows, width)."""
    import numpy as np

    array = np.asarray(vectors, dtype=np.float64)
    if array.ndim != 2 or array.shape[1] == 0:
        raise ValueError(f"embeddings must be 2-D (rows, width), got shape {array.shape}")
    projected = np.round(array @ projection(array.shape[1]), _DIGITS)
    projected[~np.isfinite(projected)] = 0.0
    return {"dim": int(array.shape[1]), "vectors": projected.tolist()}


def _host(value: object) -> Array:
    """A torch tensor (or anything numpy reads) as a numpy array, on the worker."""
    from ._columns import as_array

    return as_array(value)


def _render_embeddings(data: tuple[list[HiddenPart], int]) -> object:
    parts, _ = data
    import numpy as np

    vectors = [pooled(_host(hidden), None if mask is None else _host(mask)) for hidden, mask in parts]
    widths = {v.shape[1] for v in vectors}
    if len(widths) != 1:  # forward passes of one call disagree on the width: nothing comparable
        return None
    return project(np.concatenate(vectors))


def capture_embeddings(parts: Sequence[HiddenPart], rows: int) -> Captured | None:
    """The sampled rows of one call's hidden states, on the caller's thread: ``parts`` are ``(hidden, mask)``
    of each forward pass (torch tensors or numpy arrays, rows first; ``mask`` a token mask or None). At most
    ``rows`` rows are drawn at random over all the parts; each part is indexed once (a copy of those rows)."""
    if not parts or rows <= 0:
        return None
    if len(parts) == 1:  # one forward pass: the common case, without the walk over parts
        hidden, mask = parts[0]
        if hidden.ndim > 1:
            total = int(hidden.shape[0])
            picked = random_rows(total, rows)
            chosen = _copy(hidden, picked)
            data = [(chosen, None if mask is None else _copy(mask, picked))]
            return Captured(_render_embeddings, (data, total), total, 64 + int(chosen.nbytes))
    sizes = [int(hidden.shape[0]) if hidden.ndim > 1 else 1 for hidden, _ in parts]
    total = sum(sizes)
    picked = random_rows(total, rows)
    kept: list[HiddenPart] = []
    nbytes = 64
    offset, at = 0, 0
    for (hidden, mask), size in zip(parts, sizes, strict=True):
        mine = []
        while at < len(picked) and picked[at] < offset + size:
            mine.append(picked[at] - offset)
            at += 1
        offset += size
        if not mine:
            continue
        if hidden.ndim <= 1:
            kept.append((_copy(hidden, None), None))
            continue
        rows_of_hidden = _copy(hidden, mine)
        kept.append((rows_of_hidden, None if mask is None else _copy(mask, mine)))
        nbytes += int(rows_of_hidden.nbytes)
    return Captured(_render_embeddings, (kept, total), total, nbytes)


def _copy(value: Shaped, rows: list[int] | None) -> Shaped:
    """``value[rows]`` as a fresh copy (torch: detached, indexed on its device; numpy: fancy indexing)."""
    if is_torch_tensor(value):
        tensor = value.detach()
        if tensor.is_cpu:
            try:  # numpy's indexing costs a fraction of torch's dispatch; bfloat16 has no numpy view
                array = tensor.numpy()
            except (TypeError, RuntimeError):
                pass
            else:
                return array.copy() if rows is None else array[rows]
        if rows is None or len(rows) == int(tensor.shape[0]):
            return tensor.clone()
        return tensor[rows]  # advanced indexing on the device copies just these rows, queued, no sync
    import numpy as np

    array = np.asarray(value)
    return array.copy() if rows is None else array[rows]


def is_torch_tensor(value: object) -> TypeGuard[torch.Tensor]:
    """Whether ``value`` reads like a torch tensor (``detach`` and ``shape``), without importing torch: torch is
    loaded already if so (a plugin's hook handed it over)."""
    return hasattr(value, "detach") and hasattr(value, "shape")


def first_tensor(value: object) -> torch.Tensor | None:
    """The tensor a torch layer's output (or input) stands for: itself, ``last_hidden_state`` of a transformers
    ``ModelOutput`` (or dict), or the first tensor of a tuple, list or other mapping; None without one."""
    if is_torch_tensor(value):
        return value
    if isinstance(value, Mapping):
        if "last_hidden_state" in value:
            hidden: torch.Tensor = value["last_hidden_state"]
            return hidden
        value = list(value.values())
    if isinstance(value, (tuple, list)) and value:
        return first_tensor(value[0])
    return None


def with_embeddings(features: Captured, embeddings: Captured) -> Captured:
    """``features`` rendered with ``_meta.embeddings`` (the projected rows of ``embeddings``) added."""
    return Captured(_render_with, (features, embeddings), features.rows, features.nbytes + embeddings.nbytes)


def _render_with(data: tuple[Captured, Captured]) -> object:
    features, embeddings = data
    value = render(features)
    projected = render(embeddings)
    if isinstance(value, dict) and isinstance(projected, dict) and "vectors" in projected:
        meta = value.get("_meta")
        value["_meta"] = {**meta, "embeddings": projected} if isinstance(meta, dict) else {"embeddings": projected}
    return value


def reference_embeddings(vectors: object, seed: int = 0) -> Projected:
    """What ``log_reference(..., embeddings=)`` sends: the projection of at most :data:`MAX_REFERENCE_EMBEDDINGS`
    rows of ``vectors`` (rows, width; a tensor of any framework or anything numpy reads), drawn at random."""
    import numpy as np

    array = pooled(_host(vectors))
    if array.shape[0] > MAX_REFERENCE_EMBEDDINGS:
        rng = np.random.default_rng(seed)
        array = array[np.sort(rng.choice(array.shape[0], MAX_REFERENCE_EMBEDDINGS, replace=False))]
    return project(array)
