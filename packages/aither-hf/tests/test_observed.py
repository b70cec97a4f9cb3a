"""A transformers text-classification pipeline (tiny random BERT, local vocabulary) observed end to end through a
real aither server: texts become descriptors on both sides (``log_reference`` with the pipeline's tokenizer, and
live calls), drift flags the length descriptors when texts get longer and nothing otherwise, and the accuracy
from string labels joined to the pipeline's answers (top-1 and top-k) equals a hand computation."""

from __future__ import annotations

import numpy as np
import pytest
from hf_tiny import WORDS, text_pipeline

import aither
from aither.testing import LiveServer


def _texts(rng: np.random.Generator, count: int, words: tuple[int, int] = (3, 9)) -> list[str]:
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(*words)))) for _ in range(count)]


def test_longer_texts_are_flagged_in_the_length_descriptors_only(aither_server: LiveServer) -> None:
    rng = np.random.default_rng(0)
    pipe = text_pipeline("text-classification")
    stored = aither.log_reference("sentiment", _texts(rng, 3000), tokenizer=pipe.tokenizer)
    expected = {"chars", "words", "tokens", "unknown_share", "non_ascii_share", "digit_share", "empty"}
    assert set(stored["columns"]) == expected
    tracked = aither.wrap(pipe, name="sentiment", sample_rows=32)
    for _ in range(50):
        tracked(_texts(rng, 32, words=(12, 20)), batch_size=32)
    assert aither.flush(30)
    drift = aither_server.drift("sentiment")
    assert set(drift["by_name"]) == expected and drift["by_name"]["tokens"]["current_count"] == 50 * 32
    assert aither_server.drifted("sentiment") == {"chars", "words", "tokens"}


@pytest.mark.parametrize("seed", range(1, 11))  # ten seeds: no false positive on any
def test_texts_like_the_reference_flag_nothing(aither_server: LiveServer, seed: int) -> None:
    rng = np.random.default_rng(seed)
    pipe = text_pipeline("text-classification")
    aither.log_reference("steady", _texts(rng, 3000), tokenizer=pipe.tokenizer)
    tracked = aither.wrap(pipe, name="steady", sample_rows=32)
    for _ in range(50):
        tracked(_texts(rng, 32), batch_size=32)
    assert aither.flush(30)
    assert aither_server.drifted("steady") == set()


def test_accuracy_from_string_labels_joined_to_top1_and_topk_answers_equals_a_hand_computation(
    aither_server: LiveServer,
) -> None:
    rng = np.random.default_rng(4)
    tracked = aither.wrap(text_pipeline("text-classification"), name="scored")
    hits: list[bool] = []
    for call in range(12):
        texts = _texts(rng, 8)
        top_k = 2 if call % 2 else None  # every other call answers a ranked list of both labels per text
        answers = tracked(texts, top_k=top_k) if top_k else tracked(texts)
        truth = ["LABEL_1" if "good" in text else "LABEL_0" for text in texts]
        aither.log_label(tracked.last_trace_id, truth)
        best = [max(a, key=lambda c: c["score"])["label"] if isinstance(a, list) else a["label"] for a in answers]
        hits += [b == t for b, t in zip(best, truth, strict=True)]
    assert aither.flush(30)
    found = aither_server.metrics("scored")
    assert found["task"] == "classification" and found["labels"] == 96
    assert found["accuracy"] == pytest.approx(float(np.mean(hits)))
