"""Labels that cannot join a prediction, kept and listed so they are seen (``GET /api/v1/labels/unjoined``).

Two reasons, judged from what is stored now:

- ``unknown trace``: no prediction with the label's trace id was stored within the grace period after the
  label arrived (labels may arrive first; the SDK's own labels follow their prediction within seconds);
- ``row out of range``: the prediction is stored and has fewer rows than the label's row (``row=10`` on a
  3-row prediction, or the 4th to 7th values of a 7-value list on one). Judged only once the prediction is
  stored, never before.

A label knows its prediction's row count once that is stored (``labels.pred_rows``), so both kinds are read
through the ``labels_unjoined`` partial index.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, with_config
from sqlalchemy import Select, bindparam, func, or_, select
from typing_extensions import TypedDict

from aither_server.query.render import stored_json
from aither_server.query.time import iso
from aither_server.store.core_tables import labels, models
from aither_server.store.engine import Connection, indexed_by, run

__all__ = ["ROW_OUT_OF_RANGE", "UNKNOWN_TRACE", "UnjoinedLabel", "UnjoinedLabels", "unjoined_labels"]

UNKNOWN_TRACE: Literal["unknown trace"] = "unknown trace"
ROW_OUT_OF_RANGE: Literal["row out of range"] = "row out of range"


@with_config(ConfigDict(extra="forbid"))
class UnjoinedLabel(TypedDict):
    trace_id: str
    row: int
    label: object
    reason: Literal["unknown trace", "row out of range"]
    received_at: str


@with_config(ConfigDict(extra="forbid"))
class UnjoinedLabels(TypedDict):
    count: Annotated[int, Field(description="All the labels that cannot join (for this model, with model=).")]
    data: Annotated[list[UnjoinedLabel], Field(description="The newest of them, up to limit.")]


_l = labels.c
_received = func.coalesce(_l.received_ns, _l.time_ns)
_UNJOINED = or_(_l.pred_rows.is_(None), _l.row >= _l.pred_rows)
#: Any model's: a label of an unknown trace once its grace period is over, or of a row out of range.
_ANY_MODEL = (_UNJOINED, or_(_l.pred_rows.is_not(None), _received <= bindparam("received_by")))
#: One model's: a row out of range of one of its predictions.
_ONE_MODEL = (
    _UNJOINED,
    _l.pred_rows.is_not(None),
    _l.model_id.in_(select(models.c.id).where(models.c.name == bindparam("model"))),
)


def _unjoined(query: Select[Any]) -> Select[Any]:
    return indexed_by(query, labels, "labels_unjoined")


_COUNT = {
    one: _unjoined(select(func.count()).select_from(labels).where(*(_ONE_MODEL if one else _ANY_MODEL)))
    for one in (False, True)
}
_NEWEST = {
    one: _unjoined(
        select(_l.trace_id, _l.row, _l.label, _l.pred_rows, _received)
        .where(*(_ONE_MODEL if one else _ANY_MODEL))
        .order_by(_received.desc(), _l.trace_id, _l.row)
        .limit(bindparam("limit"))
    )
    for one in (False, True)
}


def unjoined_labels(conn: Connection, *, model: str | None, limit: int, grace_ns: int, now_ns: int) -> UnjoinedLabels:
    """``{"count", "data": [{"trace_id", "row", "label", "reason", "received_at"}]}``, newest first.

    With ``model``, only the labels whose prediction is one of that model's (``row out of range``): a label of
    an unknown trace has no model.
    """
    one = model is not None
    params: dict[str, object] = {"model": model} if one else {"received_by": now_ns - grace_ns}
    count = run(conn, _COUNT[one], params).fetchone()[0]
    rows = run(conn, _NEWEST[one], {**params, "limit": limit}).fetchall()
    return {
        "count": count,
        "data": [
            {
                "trace_id": trace_id.hex(),
                "row": row,
                "label": stored_json(label),
                "reason": UNKNOWN_TRACE if pred_rows is None else ROW_OUT_OF_RANGE,
                "received_at": iso(received_ns) or "",
            }
            for trace_id, row, label, pred_rows, received_ns in rows
        ],
    }
