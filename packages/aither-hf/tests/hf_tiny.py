"""Tiny pipelines for the tests: random-weight BERT/ViT/Wav2Vec2 models and a tokenizer from a local vocab."""

from __future__ import annotations

import atexit
import functools
import inspect
import pathlib
import shutil
import tempfile
from typing import Any

import numpy as np
import torch
from transformers import (
    BertConfig,
    BertForMaskedLM,
    BertForSequenceClassification,
    BertForTokenClassification,
    BertModel,
    Pipeline,
    ViTConfig,
    ViTForImageClassification,
    ViTImageProcessor,
    Wav2Vec2Config,
    Wav2Vec2FeatureExtractor,
    Wav2Vec2ForSequenceClassification,
    pipeline,
)

# isort: split
from transformers import BertTokenizerFast  # type: ignore[attr-defined]  # exported lazily: not in the stubs

# transformers' overloads of ``pipeline`` and its configs' signatures know neither custom pipeline classes nor
# the ``PretrainedConfig`` keywords (``num_labels``) every config takes: the tests call them untyped.
_pipeline: Any = pipeline


def _untyped(factory: Any) -> Any:
    return factory


WORDS = [
    "the",
    "a",
    "cat",
    "dog",
    "sat",
    "on",
    "mat",
    "good",
    "bad",
    "movie",
    "is",
    "was",
    "very",
    "not",
    "paris",
    "london",
    "city",
]
VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS]
HIDDEN = 16

TEXTS = ["the cat sat on the mat", "a very good movie", "the dog was bad", "paris is a city"]

_MODELS = {
    "text-classification": BertForSequenceClassification,
    "token-classification": BertForTokenClassification,
    "feature-extraction": BertModel,
    "fill-mask": BertForMaskedLM,
}


@functools.cache
def vocab_file() -> str:
    folder = tempfile.mkdtemp(prefix="aither-hf-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)  # the test run leaves nothing in /tmp
    path = pathlib.Path(folder) / "vocab.txt"
    path.write_text("\n".join(VOCAB) + "\n")
    return str(path)


def tokenizer() -> BertTokenizerFast:
    # transformers 5 takes the vocabulary itself (``vocab=``) and ignores ``vocab_file=``: every word was [UNK].
    if "vocab" in inspect.signature(BertTokenizerFast.__init__).parameters:
        return BertTokenizerFast(vocab={word: i for i, word in enumerate(VOCAB)})
    return BertTokenizerFast(vocab_file=vocab_file())


def text_pipeline(task: str, pipeline_class: type[Pipeline] | None = None) -> Any:
    torch.manual_seed(0)
    config: Any = _untyped(BertConfig)(
        vocab_size=len(VOCAB),
        hidden_size=HIDDEN,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=64,
        num_labels=2,
    )
    extra: dict[str, Any] = {} if pipeline_class is None else {"pipeline_class": pipeline_class}
    model: Any = _MODELS[task](config)
    return _pipeline(task, model=model.eval(), tokenizer=tokenizer(), **extra)


def image_pipeline() -> Any:
    torch.manual_seed(0)
    config: Any = _untyped(ViTConfig)(
        image_size=32, patch_size=16, hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2,
        intermediate_size=32, num_labels=2,
    )  # fmt: skip
    processor = ViTImageProcessor(size={"height": 32, "width": 32})
    model: Any = ViTForImageClassification(config)
    return _pipeline("image-classification", model=model.eval(), image_processor=processor)


def audio_pipeline() -> Any:
    torch.manual_seed(0)
    config: Any = _untyped(Wav2Vec2Config)(
        hidden_size=HIDDEN, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32, conv_dim=(8, 8),
        conv_stride=(5, 4), conv_kernel=(10, 4), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        num_labels=2, classifier_proj_size=8,
    )  # fmt: skip
    extractor = _untyped(Wav2Vec2FeatureExtractor)(sampling_rate=16000)
    model: Any = Wav2Vec2ForSequenceClassification(config)
    return _pipeline("audio-classification", model=model.eval(), feature_extractor=extractor)


def wave(samples: int = 1600) -> np.ndarray[Any, Any]:
    return np.asarray(np.sin(np.arange(samples, dtype=np.float32) / 10.0))
