"""A text-classification pipeline (tiny random BERT, local vocabulary) wrapped with ``embeddings=True``: each
sampled text's mean last hidden state travels projected, the reference's is computed and projected alike, and the
server's domain classifier flags a planted topic shift and no drift on unshifted traffic. Dict inputs (a text
pair) become text descriptors per field, named as ``log_reference`` names them."""

from __future__ import annotations

import numpy as np
import pytest
from hf_tiny import text_pipeline

import aither
import aither_hf
from aither._capture._embeddings import EMBEDDING_DIM, project
from aither.testing import LiveServer, SpanCapture

ANIMALS = ["the", "a", "cat", "dog", "sat", "on", "mat", "is", "was"]
PLACES = ["paris", "london", "city", "very", "good", "bad", "movie", "not", "is"]


def _texts(rng: np.random.Generator, count: int, words: list[str], length: tuple[int, int] = (3, 9)) -> list[str]:
    return [" ".join(rng.choice(words, size=int(rng.integers(*length)))) for _ in range(count)]


def test_each_sampled_text_carries_the_projection_of_its_mean_hidden_state(aither_capture: SpanCapture) -> None:
    pipe = text_pipeline("text-classification")
    tracked = aither.wrap(pipe, name="sentiment", embeddings=True, sample_rows=3)
    texts = _texts(np.random.default_rng(0), 8, ANIMALS + PLACES)
    tracked(texts, batch_size=4)  # two forward passes: rows are drawn over both
    (span,) = aither_capture.predictions()
    sent = span.features["_meta"]["embeddings"]
    assert sent["dim"] == 16 and len(sent["vectors"]) == 3
    assert all(len(v) == EMBEDDING_DIM for v in sent["vectors"])
    every_text = project(aither_hf.embeddings(pipe, texts, batch_size=8))["vectors"]  # padded otherwise: masked
    for vector in sent["vectors"]:
        assert any(np.allclose(vector, row, atol=1e-3) for row in every_text)
    assert len(aither_capture.predictions()) == 1  # the helper's pass is not logged


def test_a_named_layer_and_no_embeddings(aither_capture: SpanCapture) -> None:
    pipe = text_pipeline("text-classification")
    tracked = aither.wrap(pipe, name="pooled", embeddings="bert.pooler", sample_rows=2)
    tracked(["the cat sat", "a good movie"])
    plain = aither.wrap(pipe, name="plain")  # wrapping again without embeddings removes the hook
    plain(["the cat sat"])
    first, second = aither_capture.predictions()
    assert first.features["_meta"]["embeddings"]["dim"] == 16
    assert "embeddings" not in second.features["_meta"]


def _run(server: LiveServer, name: str, seed: int, live_words: list[str]) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    pipe = text_pipeline("text-classification")
    reference = _texts(rng, 1500, ANIMALS + PLACES if live_words != PLACES else ANIMALS)
    vectors = aither_hf.embeddings(pipe, reference, batch_size=64)
    aither.log_reference(name, reference, tokenizer=pipe.tokenizer, embeddings=vectors)
    tracked = aither.wrap(pipe, name=name, embeddings=True, sample_rows=16)
    for _ in range(40):
        tracked(_texts(rng, 32, live_words), batch_size=32)
    assert aither.flush(30)
    found: dict[str, object] = server.drift(name)
    return found


def test_a_topic_shift_is_flagged_as_embedding_drift(aither_server: LiveServer) -> None:
    drift = _run(aither_server, "topics", 0, PLACES)  # reference about animals, traffic about places
    found = drift["embeddings"]
    assert isinstance(found, dict) and found["method"] == "domain_classifier"
    assert found["drifted"] is True and found["score"] > 0.9
    assert found["current_count"] == 40 * 16 and found["reference_count"] == 1500
    flagged = {f["name"] for f in drift["features"] if f["drifted"]}  # type: ignore[attr-defined]
    assert "chars" in flagged  # place names are longer words: the descriptors see it too


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: the nominal level is 1%, so no false positive
def test_unshifted_texts_flag_no_embedding_drift(aither_server: LiveServer, seed: int) -> None:
    found = _run(aither_server, "steady", seed, ANIMALS + PLACES)["embeddings"]
    assert isinstance(found, dict) and found["score"] is not None and found["drifted"] is False


def _pairs(rng: np.random.Generator, count: int, pair_length: tuple[int, int]) -> list[dict[str, str]]:
    words = ANIMALS + PLACES
    return [
        {"text": text, "text_pair": pair}
        for text, pair in zip(_texts(rng, count, words), _texts(rng, count, words, pair_length), strict=True)
    ]


def test_text_pairs_are_described_per_field_with_the_reference_names_and_a_longer_field_is_flagged(
    aither_server: LiveServer,
) -> None:
    rng = np.random.default_rng(5)
    pipe = text_pipeline("text-classification")
    stored = aither.log_reference("pairs", _pairs(rng, 3000, (3, 9)), tokenizer=pipe.tokenizer)
    descriptors = ["chars", "words", "tokens", "unknown_share", "non_ascii_share", "digit_share", "empty"]
    expected = {f"{field}.{d}" for field in ("text", "text_pair") for d in descriptors}
    assert set(stored["columns"]) == expected
    tracked = aither.wrap(pipe, name="pairs", sample_rows=32)
    for _ in range(50):
        tracked(_pairs(rng, 32, (12, 20)), batch_size=32)
    tracked({"text": "the cat", "text_pair": "sat on the mat"})  # one dict: one record of the same fields
    assert aither.flush(30)
    drift = aither_server.drift("pairs")
    assert set(drift["by_name"]) == expected
    assert drift["by_name"]["text.chars"]["current_count"] == 50 * 32 + 1
    assert aither_server.drifted("pairs") == {"text_pair.chars", "text_pair.words", "text_pair.tokens"}
