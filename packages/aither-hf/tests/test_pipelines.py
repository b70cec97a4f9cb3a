"""Wrapping transformers pipelines: what arrives at a real OTLP receiver for each task."""

from __future__ import annotations

import importlib.metadata
import logging
import pickle
import re
import warnings
from typing import Any

import pytest
from hf_tiny import HIDDEN, TEXTS, audio_pipeline, image_pipeline, text_pipeline, wave
from PIL import Image
from transformers import Pipeline, TextClassificationPipeline

import aither
import aither_hf
from aither.testing import OTLPReceiver
from aither_hf import EMBEDDING_HEAD, MAX_TEXT_CHARS, TrackedPipeline


def _only_span(receiver: OTLPReceiver) -> Any:
    assert aither.flush(5.0)
    (span,) = receiver.wait_for_spans(1)
    return span


def _close(logged: Any, output: Any) -> bool:
    """The logged JSON matches the output; numbers (numpy float32 scores included) to float32 precision."""
    if isinstance(output, dict):
        return (
            isinstance(logged, dict)
            and logged.keys() == output.keys()
            and all(_close(logged[key], value) for key, value in output.items())
        )
    if isinstance(output, (list, tuple)):
        return (
            isinstance(logged, list)
            and len(logged) == len(output)
            and all(_close(a, b) for a, b in zip(logged, output, strict=True))
        )
    if isinstance(output, str) or output is None:
        return bool(logged == output)
    return bool(logged == pytest.approx(float(output), rel=1e-6))


# ------------------------------------------------------------------------------------------------ the wrapper


def test_tracked_pipeline_is_an_instance_of_the_pipelines_own_class_sharing_model_and_tokenizer() -> None:
    pipe = text_pipeline("text-classification")
    tracked = aither.wrap(pipe, name="sentiment")
    assert isinstance(tracked, TextClassificationPipeline)
    assert isinstance(tracked, TrackedPipeline)
    assert type(tracked) is not type(pipe)
    assert tracked.model is pipe.model  # nothing reloaded or copied
    assert tracked.tokenizer is pipe.tokenizer
    assert tracked.task == "text-classification"
    assert len(tracked.preprocess("the cat")["input_ids"]) == 1  # pipeline methods work as they are
    assert type(tracked) is type(aither.wrap(text_pipeline("text-classification"), name="other"))  # one class


def test_wrapping_does_not_log_calls_of_the_original_pipeline(aither_receiver: OTLPReceiver) -> None:
    pipe = text_pipeline("text-classification")
    tracked = aither.wrap(pipe, name="sentiment")
    pipe("the cat")
    tracked("the dog")
    span = _only_span(aither_receiver)
    assert span.features["_meta"]["texts"] == ["the dog"]
    assert tracked.unwrap().model is pipe.model
    assert type(tracked.unwrap()) is TextClassificationPipeline


def test_bare_transformers_models_are_not_claimed_as_pipelines() -> None:
    model = text_pipeline("text-classification").model
    assert not aither_hf.integration.claims(model)
    assert not isinstance(aither.wrap(model, name="bert"), Pipeline)


# ------------------------------------------------------------------------------------------------ tasks


def test_text_classification_single_text_logs_labels_and_scores(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="sentiment", version="2")
    output = tracked("the cat sat on the mat")
    span = _only_span(aither_receiver)
    assert span.name == "__call__"
    assert span.attributes["ml.framework"] == "transformers"
    assert span.attributes["ml.batch_size"] == 1
    # A text is described (its length in characters, words and the pipeline's tokens...), kept in _meta.texts.
    (row,) = span.features["sample"]
    assert row["chars"] == 22 and row["words"] == 6 and row["tokens"] == 6 and row["empty"] is False
    meta = span.features["_meta"]
    assert meta["texts"] == ["the cat sat on the mat"] and meta["rows"] == [0] and meta["count"] == 1
    assert meta["type"] == "str" and meta["truncated"] is False and meta["task"] == "text-classification"
    assert _close(span.prediction, output)
    assert set(span.prediction[0]) == {"label", "score"}
    assert span.trace_id == tracked.last_trace_id


def test_text_classification_list_logs_one_row_per_text_and_labels_join(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="sentiment")
    output = tracked(TEXTS)
    aither.log_label(tracked.last_trace_id, ["LABEL_0"] * len(TEXTS))
    assert aither.flush(5.0)
    prediction, label = aither_receiver.wait_for_spans(2)
    assert prediction.attributes["ml.batch_size"] == len(TEXTS)
    assert prediction.features["_meta"]["texts"] == TEXTS
    assert [row["words"] for row in prediction.features["sample"]] == [len(t.split()) for t in TEXTS]
    assert prediction.features["_meta"]["type"] == "list[str]"
    assert _close(prediction.prediction, output)
    assert label.trace_id == prediction.trace_id


def test_token_classification_logs_entities(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("token-classification"), name="ner")
    output = tracked("paris is a city")
    span = _only_span(aither_receiver)
    assert len(span.prediction) == len(output) == 4
    assert [e["word"] for e in span.prediction] == ["paris", "is", "a", "city"]
    assert {"entity", "score", "start", "end"} <= set(span.prediction[0])
    assert _close(span.prediction, output)  # numpy float32 scores arrive as JSON numbers


def test_fill_mask_logs_candidate_tokens_and_scores(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("fill-mask"), name="mlm")
    output = tracked("the cat sat on the [MASK]")
    span = _only_span(aither_receiver)
    assert _close(span.prediction, output)
    assert {"score", "token", "token_str"} <= set(span.prediction[0])


def test_feature_extraction_logs_a_summary_of_the_embeddings_never_the_whole_tensor(
    aither_receiver: OTLPReceiver,
) -> None:
    tracked = aither.wrap(text_pipeline("feature-extraction"), name="embedder")
    output = tracked("the cat sat on the mat")  # [1, tokens, hidden] nested lists
    span = _only_span(aither_receiver)
    tokens = len(output[0])
    assert span.prediction["shape"] == [1, tokens, HIDDEN]
    assert span.prediction["head"] == pytest.approx(output[0][0][:EMBEDDING_HEAD])
    assert span.prediction["_meta"]["summary"] is True
    assert len(span.attributes["ml.prediction"]) < 600  # a summary, not tokens x hidden floats


def test_feature_extraction_tensors_are_summarised_per_row(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("feature-extraction"), name="embedder")
    output = tracked(TEXTS[:2], return_tensors=True)
    span = _only_span(aither_receiver)
    assert [row["shape"] for row in span.prediction] == [list(t.shape) for t in output]
    assert span.prediction[0]["head"] == pytest.approx(output[0].reshape(-1)[:EMBEDDING_HEAD].tolist())
    assert span.prediction[0]["_meta"]["type"] == "torch.Tensor"


def test_batched_call_logs_one_span_per_call(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="sentiment", sample_rows=3)
    texts = TEXTS * 3
    output = tracked(texts, batch_size=4)
    assert len(output) == len(texts)
    span = _only_span(aither_receiver)
    assert span.attributes["ml.batch_size"] == len(texts)
    meta = span.features["_meta"]
    assert len(span.features["sample"]) == 3 and len(meta["rows"]) == 3  # at most sample_rows items, at random
    assert meta["texts"] == [texts[i] for i in meta["rows"]]
    assert (meta["type"], meta["count"], meta["truncated"], meta["task"]) == (
        "list[str]", len(texts), True, "text-classification",
    )  # fmt: skip
    assert len(span.prediction) == len(texts)


def test_long_texts_are_cut_to_the_documented_length(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="sentiment")
    text = "the cat sat on the mat " * 100
    tracked(text, truncation=True, max_length=32)
    span = _only_span(aither_receiver)
    assert span.features["_meta"]["texts"] == [text[:MAX_TEXT_CHARS]]
    assert span.features["sample"][0]["chars"] == len(text)  # described whole, kept cut
    assert span.features["_meta"]["truncated"] is True


def test_images_are_logged_by_metadata_not_pixels(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(image_pipeline(), name="vision")
    images = [Image.new("RGB", (40, 30), (255, 0, 0)), Image.new("L", (64, 64))]
    output = tracked(images)
    span = _only_span(aither_receiver)
    assert span.features["sample"] == [
        {"_type": "PIL.Image", "size": [40, 30], "mode": "RGB", "format": None},
        {"_type": "PIL.Image", "size": [64, 64], "mode": "L", "format": None},
    ]
    assert span.features["_meta"]["type"] == "list[PIL.Image]"
    assert _close(span.prediction, output)


def test_audio_is_logged_by_metadata_with_its_sampling_rate(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(audio_pipeline(), name="audio")
    tracked(wave(1600))
    tracked({"raw": wave(3200), "sampling_rate": 16000})  # the pipeline may consume this dict's keys
    assert aither.flush(5.0)
    first, second = aither_receiver.wait_for_spans(2)
    assert first.features["sample"] == [
        {"_type": "audio", "shape": [1600], "dtype": "float32", "sampling_rate": 16000, "seconds": 0.1}
    ]
    assert second.features["sample"][0]["shape"] == [3200]
    assert second.features["sample"][0]["sampling_rate"] == 16000
    assert second.features["_meta"]["type"] == "audio"
    assert len(first.attributes["ml.features"]) < 400  # no samples


def test_a_generator_input_is_not_consumed_by_logging(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="stream")
    results = list(tracked(text for text in TEXTS))
    assert len(results) == len(TEXTS)
    span = _only_span(aither_receiver)
    assert span.features["_meta"]["type"] == "generator"
    assert span.features["sample"] == []
    assert span.prediction["_meta"]["lazy"] is True


def test_a_failing_call_is_an_error_span_and_raises_as_before(aither_receiver: OTLPReceiver) -> None:
    tracked = aither.wrap(text_pipeline("text-classification"), name="sentiment")
    with pytest.raises(ValueError, match="text input must be of type"):
        tracked(123)
    span = _only_span(aither_receiver)
    assert span.is_error
    assert "ml.prediction" not in span.attributes


# ------------------------------------------------------------------------------------------------ custom classes


class MyCustomPipeline(TextClassificationPipeline):
    """A user's pipeline class, as given to ``pipeline(..., pipeline_class=...)``."""

    def top_label(self, text: str) -> str:
        return str(self(text)[0]["label"])

    def __call__(self, inputs: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        if isinstance(inputs, list):  # calls itself once per text: still one logged call
            return [self(text, **kwargs)[0] for text in inputs]
        return super().__call__(inputs, **kwargs)


def test_custom_pipeline_class_wraps_as_a_subclass_of_itself(aither_receiver: OTLPReceiver) -> None:
    pipe = text_pipeline("text-classification", pipeline_class=MyCustomPipeline)
    assert type(pipe) is MyCustomPipeline
    tracked = aither.wrap(pipe, name="custom")
    assert isinstance(tracked, MyCustomPipeline)
    output = tracked(TEXTS)  # recursive self-calls inside __call__ log only the outer call
    span = _only_span(aither_receiver)
    assert span.attributes["ml.batch_size"] == len(TEXTS)
    assert _close(span.prediction, output)
    aither_receiver.clear()
    assert tracked.top_label("the cat") in {"LABEL_0", "LABEL_1"}  # the user's method, and its call is logged
    assert _only_span(aither_receiver).features["_meta"]["texts"] == ["the cat"]


def test_pickled_tracked_pipeline_keeps_its_class_and_identity() -> None:
    tracked = aither.wrap(text_pipeline("text-classification", pipeline_class=MyCustomPipeline), name="custom")
    restored = pickle.loads(pickle.dumps(tracked))
    assert isinstance(restored, MyCustomPipeline)
    assert isinstance(restored, TrackedPipeline)
    assert restored._aither.identity.name == "custom"
    assert restored("the cat") == tracked("the cat")


def test_unsupported_transformers_version_warns_once(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    from aither import _frameworks  # its once-per-version memory, reset for this test

    monkeypatch.setattr(_frameworks, "_checked", set())
    version = importlib.metadata.version
    monkeypatch.setattr(
        importlib.metadata, "version", lambda name: "4.20.0" if name == "transformers" else version(name)
    )
    pattern = r"aither-hf supports transformers>=4\.40,<6, but 4\.20\.0 is installed"
    with caplog.at_level(logging.WARNING, logger="aither"), pytest.warns(RuntimeWarning, match=pattern):
        aither.wrap(text_pipeline("text-classification"), name="old")
    assert any(re.search(pattern, record.getMessage()) for record in caplog.records)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        aither.wrap(text_pipeline("text-classification"), name="old")
