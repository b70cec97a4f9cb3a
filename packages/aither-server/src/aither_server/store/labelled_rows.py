"""A prediction row's first label: its ``prediction_rows`` row, written with the label, and its count in the
quality rollups. A row meets its first label in two ways: the label stored before its prediction
(``store/predictions.py``) or after it (``store/label_joins.py``)."""

from __future__ import annotations

from sqlalchemy import bindparam, insert

from aither_server.model.records import RowValue
from aither_server.store.core_tables import prediction_rows
from aither_server.store.rollups import LabelCell, QualityDeltas, add_quality

__all__ = ["INSERT_ROW", "labelled_row", "sample_weight"]

# A prediction's row is written to prediction_rows only once it is labelled: with its label, when the label
# arrives (``label_joins``), or with the prediction when the label came first. Every query of that table
# reads labelled rows only, and most rows are never labelled: writing them all was a third of a span's storing.
# A plain INSERT: COPY on PostgreSQL (``run_many``).
INSERT_ROW = insert(prediction_rows).values(
    {
        name: bindparam(name)
        for name in ("pred_id", "row", "model_id", "start_ns", "kind", "pred_key", "pred_num", "score", "proba",
                     "weight", "label_key", "label_num", "label_kind")
    }
)  # fmt: skip


def sample_weight(sample_rate: float | None) -> float | None:
    """A span's weight in the quality sums: it stands for ``1 / sample_rate`` calls (``None``: one call)."""
    return None if sample_rate is None else 1.0 / sample_rate


def labelled_row(
    rows: list[dict[str, object]],
    quality: QualityDeltas,
    pred_id: int,
    model_id: int,
    start_ns: int,
    weight: float | None,
    value: RowValue,
    label: LabelCell,
) -> None:
    """Add a prediction row's first label: its ``prediction_rows`` row, and its count in ``quality_hours``."""
    label_key, label_num, label_kind = label
    rows.append(
        {"pred_id": pred_id, "row": value.row, "model_id": model_id, "start_ns": start_ns, "kind": value.kind,
         "pred_key": value.key, "pred_num": value.num, "score": value.score, "proba": value.proba, "weight": weight,
         "label_key": label_key, "label_num": label_num, "label_kind": label_kind}
    )  # fmt: skip
    if label_kind is not None:
        add_quality(quality, 1, model_id, start_ns, (value.kind, value.key, value.num, value.score), label, weight)
