"""What plugin packages build on: the integration base class, the per-model logger, samplers.

A plugin (``aither-sklearn``, ``aither-torch``...) subclasses :class:`Integration`, registers an instance under
the ``aither.integrations`` entry-point group, and records calls through a :class:`ModelLogger`.
"""

from __future__ import annotations

from ._capture import (
    Captured,
    Sampler,
    capture_embeddings,
    capture_failed,
    capture_features,
    capture_prediction,
    capture_text_records,
    capture_texts,
    column_window,
    first_tensor,
    is_torch_tensor,
    pooled,
    register_sampler,
    remove_forward_hooks,
    render,
    render_as_is,
    render_fields,
    render_items,
    sampled_array,
    tokenizer_counts,
    torch_copy_ready_event,
    truncated_rows,
)
from ._capture._columns import Tokenize
from ._frameworks import (
    bounded_prediction,
    max_prediction_rows,
    require_framework,
    supported_versions,
    telemetry_disabled,
    version_in_range,
)
from ._plugins import ENTRY_POINT_GROUP, PLUGIN_API_VERSION, Integration, find_integration, reset_cache
from ._records import ModelIdentity, SpanRecord
from ._tracked import LOGGED_METHODS, TrackedModel
from ._tracking import (
    WRAP_OPTIONS,
    Features,
    ModelLogger,
    OutputCapture,
    TraceIdsMixin,
    WrapOptions,
    batch_size_of,
    current_otel_link,
    inputs_of,
)
from ._types import Synchronizable

__all__ = [
    "ENTRY_POINT_GROUP",
    "LOGGED_METHODS",
    "PLUGIN_API_VERSION",
    "WRAP_OPTIONS",
    "Captured",
    "Features",
    "Integration",
    "ModelIdentity",
    "ModelLogger",
    "OutputCapture",
    "Sampler",
    "capture_embeddings",
    "capture_text_records",
    "SpanRecord",
    "Synchronizable",
    "TraceIdsMixin",
    "Tokenize",
    "TrackedModel",
    "WrapOptions",
    "batch_size_of",
    "bounded_prediction",
    "capture_failed",
    "capture_features",
    "capture_prediction",
    "capture_texts",
    "column_window",
    "current_otel_link",
    "find_integration",
    "first_tensor",
    "inputs_of",
    "is_torch_tensor",
    "pooled",
    "max_prediction_rows",
    "register_sampler",
    "remove_forward_hooks",
    "render",
    "render_as_is",
    "render_fields",
    "render_items",
    "require_framework",
    "reset_cache",
    "sampled_array",
    "supported_versions",
    "telemetry_disabled",
    "tokenizer_counts",
    "torch_copy_ready_event",
    "truncated_rows",
    "version_in_range",
]
