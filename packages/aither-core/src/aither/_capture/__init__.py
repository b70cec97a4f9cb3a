"""Bounded copies of model inputs and outputs, taken on the caller's thread and rendered on the worker.

Capturing is split in two so the caller's thread does almost nothing:

* ``capture`` runs on the calling thread. It takes a bounded slice of the input (``sample_rows`` rows drawn at
  random, a window of ``sample_columns`` columns that rotates across calls: ``_window``), copies only that
  slice, and notes the shape. Its cost does not depend on the number of rows.
* ``render`` runs on the worker thread and turns the captured slice into plain JSON-able data with ``_meta``.

Types are recognised by the module and name of their class (``numpy.ndarray``, ``pandas...DataFrame``), never
by importing a framework, so sampling a numpy array does not import pandas and ``import aither`` imports neither.
One module per family: ``_captured`` (the type), ``_registry``, ``_scalars``, ``_tables``, ``_tensors``,
``_texts``, ``_containers`` (features), ``_predictions`` (outputs), ``_window`` (which rows and columns),
``_schema`` (the whole input's columns and dtypes, once per schema), ``_columns`` (what sampled rows become as
the columns drift profiles, shared with ``log_reference``), ``_named`` (``feature_names``), ``_embeddings``
(pooled hidden states, projected), ``_outputs`` (a network's output read as class probabilities or regression
values), ``_torch_hooks`` (a plugin's torch hooks removed by type). This module registers the built-in samplers.
"""

from __future__ import annotations

from ._captured import (
    Captured,
    capture_failed,
    render,
    render_as_is,
    render_fields,
    render_items,
    truncated_rows,
    type_name,
)
from ._containers import capture_mapping, capture_sequence
from ._embeddings import (
    EMBEDDING_DIM,
    capture_embeddings,
    first_tensor,
    is_torch_tensor,
    pooled,
    reference_embeddings,
)
from ._outputs import TASKS, interpreted_output, output_as_prediction
from ._predictions import capture_prediction
from ._registry import Sampler, capture_features, capture_value, register_sampler
from ._scalars import capture_bytes, capture_scalar, capture_string
from ._tables import (
    capture_numpy,
    capture_numpy_scalar,
    capture_pandas_frame,
    capture_pandas_series,
    capture_polars_frame,
    capture_polars_series,
)
from ._tensors import capture_tensorflow, capture_torch, sampled_array, torch_copy_ready_event
from ._texts import capture_text_records, capture_texts, tokenizer_counts
from ._torch_hooks import remove_forward_hooks
from ._window import column_window, set_turn

__all__ = [
    "EMBEDDING_DIM",
    "TASKS",
    "Captured",
    "Sampler",
    "capture_failed",
    "capture_features",
    "capture_embeddings",
    "capture_prediction",
    "capture_text_records",
    "capture_texts",
    "column_window",
    "first_tensor",
    "interpreted_output",
    "is_torch_tensor",
    "output_as_prediction",
    "pooled",
    "reference_embeddings",
    "capture_value",
    "register_sampler",
    "remove_forward_hooks",
    "render",
    "render_as_is",
    "render_fields",
    "render_items",
    "sampled_array",
    "set_turn",
    "tokenizer_counts",
    "torch_copy_ready_event",
    "truncated_rows",
    "type_name",
]

for module_, name_, sampler_ in (
    ("numpy", "ndarray", capture_numpy),
    ("numpy", "generic", capture_numpy_scalar),
    ("pandas", "DataFrame", capture_pandas_frame),
    ("pandas", "Series", capture_pandas_series),
    ("polars", "DataFrame", capture_polars_frame),
    ("polars", "Series", capture_polars_series),
    ("torch", "Tensor", capture_torch),
    ("tensorflow", "EagerTensor", capture_tensorflow),
    ("tensorflow", "Tensor", capture_tensorflow),
    ("builtins", "str", capture_string),
    ("builtins", "bytes", capture_bytes),
    ("builtins", "bytearray", capture_bytes),
    ("builtins", "memoryview", capture_bytes),
    ("builtins", "bool", capture_scalar),
    ("builtins", "int", capture_scalar),
    ("builtins", "float", capture_scalar),
    ("builtins", "NoneType", capture_scalar),
    ("builtins", "complex", capture_scalar),
    ("datetime", "datetime", capture_scalar),
    ("datetime", "date", capture_scalar),
    ("datetime", "time", capture_scalar),
    ("datetime", "timedelta", capture_scalar),
    ("decimal", "Decimal", capture_scalar),
    ("builtins", "dict", capture_mapping),
    ("builtins", "list", capture_sequence),
    ("builtins", "tuple", capture_sequence),
):
    register_sampler(module_, name_, sampler_)
