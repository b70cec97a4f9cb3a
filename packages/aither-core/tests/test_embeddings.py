"""The embeddings' projection is one fixed matrix per width in every process (so live rows and a reference's are
comparable), a reference is cut to a bounded random sample, and the rows of several forward passes are sampled
together; ``wrap(embeddings=)`` takes True, False or a layer's name."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import numpy as np
import pytest

import aither
from aither._capture._captured import render
from aither._capture._columns import text_field_columns
from aither._capture._embeddings import (
    EMBEDDING_DIM,
    MAX_REFERENCE_EMBEDDINGS,
    capture_embeddings,
    pooled,
    project,
    projection,
    reference_embeddings,
)


def _as_dict(value: object) -> dict[str, Any]:
    """A rendered or transformed sample that the test reads as a JSON object."""
    assert isinstance(value, dict)
    return value


def test_the_projection_is_the_same_matrix_in_another_process() -> None:
    here = projection(48)
    code = (
        "import json; from aither._capture._embeddings import projection;"
        " print(json.dumps(projection(48)[:2, :3].tolist()))"
    )
    there = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert np.allclose(json.loads(there), here[:2, :3])
    assert here.shape == (48, EMBEDDING_DIM) and not np.allclose(projection(47)[:47], here[:47])


def test_a_large_reference_is_cut_to_a_random_bounded_sample_of_projected_rows() -> None:
    vectors = np.random.default_rng(0).normal(size=(5000, 24))
    sent = reference_embeddings(vectors)
    assert sent["dim"] == 24 and len(sent["vectors"]) == MAX_REFERENCE_EMBEDDINGS
    every_row = {tuple(row) for row in project(vectors)["vectors"]}
    assert all(tuple(row) in every_row for row in sent["vectors"])


def test_a_sequence_of_hidden_states_is_averaged_over_the_tokens_its_mask_keeps() -> None:
    hidden = np.arange(12, dtype=np.float64).reshape(1, 3, 4)
    assert pooled(hidden, np.array([[1, 1, 0]])).tolist() == [[2.0, 3.0, 4.0, 5.0]]
    assert pooled(hidden).tolist() == [[4.0, 5.0, 6.0, 7.0]]


def test_rows_are_drawn_over_every_forward_pass_of_a_call() -> None:
    first, second = np.zeros((3, 8)), np.ones((3, 8))
    captured = capture_embeddings([(first, None), (second, None)], 6)
    assert captured is not None and captured.rows == 6
    sent = _as_dict(render(captured))
    assert sent["dim"] == 8 and sent["vectors"] == project(np.vstack([first, second]))["vectors"]


def test_records_of_texts_are_described_per_field() -> None:
    columns = text_field_columns([{"question": "who?", "context": "paris is a city"}, {"question": "x 1"}])
    assert columns["question.chars"] == [4, 3] and columns["context.words"] == [4, 0]
    assert columns["context.empty"] == [False, True] and columns["question.digit_share"] == [0.0, 1 / 3]


@pytest.mark.parametrize("bad", ["", 3, None])
def test_embeddings_takes_true_false_or_a_layer_name(bad: object) -> None:
    with pytest.raises(TypeError, match="embeddings"):
        aither.wrap(lambda x: x, name="f", embeddings=bad)  # type: ignore[arg-type]
