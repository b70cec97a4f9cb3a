"""How the server reads a prediction the SDK tagged (``_meta.output``) and transformers' top-k answers."""

from __future__ import annotations

import json
import math

import pytest

from aither_server.model.records import KIND_CLASS, KIND_NUMBER, KIND_PROBA, parse_prediction


def _rows(value: object, batch: int, method: str = "forward") -> list[tuple[int | None, str | None, float | None]]:
    _, (_, rows) = parse_prediction(json.dumps(value), batch, method)
    return [(r.kind, r.key, r.score) for r in rows]


def test_logits_are_scored_like_predict_proba_through_a_softmax() -> None:
    rows = _rows({"values": [[2.0, -1.0], [0.1, 0.3]], "_meta": {"output": "logits", "total_rows": 2}}, 2)
    assert [(kind, key) for kind, key, _ in rows] == [(KIND_PROBA, "0"), (KIND_PROBA, "1")]
    assert rows[0][2] == pytest.approx(1 / (1 + math.exp(3.0)))  # softmax's class-1 probability


def test_probabilities_and_regression_values_are_read_as_tagged() -> None:
    probabilities = {"values": [[0.2, 0.8]], "_meta": {"output": "probabilities", "total_rows": 5, "truncated": True}}
    _, (total, rows) = parse_prediction(json.dumps(probabilities), 5, "predict")
    assert total == 5 and (rows[0].kind, rows[0].key, rows[0].score) == (KIND_PROBA, "1", 0.8)
    regression = _rows({"values": [3.0, 2.5], "_meta": {"output": "regression", "total_rows": 2}}, 2)
    assert [(kind, key) for kind, key, _ in regression] == [(KIND_NUMBER, "3.0"), (KIND_NUMBER, "2.5")]


def test_untagged_rows_of_a_forward_call_stay_unscored_and_a_function_named_logits_is_not_read_as_logits() -> None:
    assert _rows([[2.0, -1.0]], 1, "logits")[0][0] not in (KIND_PROBA, KIND_CLASS)


def test_a_top_k_answer_is_the_class_of_its_best_score() -> None:
    answer = [[{"label": "NEGATIVE", "score": 0.3}, {"label": "POSITIVE", "score": 0.7}]]
    assert _rows(answer, 1, "__call__") == [(KIND_CLASS, '"POSITIVE"', None)]
