"""aither integration for Hugging Face ``transformers`` pipelines.

``aither.wrap(pipe, name="sentiment")`` returns an instance of a subclass of the pipeline's own class: every
call logs one span, with the inputs (texts cut to :data:`MAX_TEXT_CHARS`, images and audio as metadata) and the
output (labels and scores, entities, or a summary of embeddings). transformers is imported only when a pipeline
is wrapped.
"""

from __future__ import annotations

from ._embeddings import embeddings
from ._integration import TransformersIntegration, integration, wrap
from ._sampling import EMBEDDING_HEAD, MAX_TEXT_CHARS
from ._tracked import TrackedPipeline
from ._version import __version__

__all__ = [
    "EMBEDDING_HEAD",
    "MAX_TEXT_CHARS",
    "TrackedPipeline",
    "TransformersIntegration",
    "__version__",
    "embeddings",
    "integration",
    "wrap",
]
