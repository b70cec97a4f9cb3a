"""The estimators references carry and the cached statistics of closed hours (``store/estimate_tables.py``)."""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
from sqlalchemy import Connection, Engine, RowMapping, Table, and_, bindparam, delete, insert, or_, select
from sqlalchemy.exc import IntegrityError

from aither_server.estimate.calibration import Estimator, Floats, InvalidEstimator, parse_estimator
from aither_server.estimate.dle import LossModel, parse_loss_model
from aither_server.store.core_tables import models as models_table
from aither_server.store.estimate_tables import estimate_hours, estimators, realized_hours
from aither_server.store.model_keyed import newest_for_version

__all__ = ["AnyEstimator", "EstimateStore", "parse_any"]

#: A classifier's calibration (CBPE) or a regressor's loss model (DLE).
AnyEstimator = Estimator | LossModel


def parse_any(body: object, created_ns: int = 0) -> AnyEstimator:
    """The estimator of a body as ``log_reference`` sends it, by its ``task``; :class:`InvalidEstimator` else."""
    if isinstance(body, dict) and body.get("task") == "regression":
        return parse_loss_model(body, created_ns)
    if not isinstance(body, dict):
        raise InvalidEstimator("the estimator must be an object")
    return parse_estimator(body, created_ns)


#: (model id, hour start ns) -> (rows, statistics vector).
HourStats = dict[tuple[int, int], tuple[int, "np.typing.NDArray[np.float64]"]]


def _cached(
    conn: Connection, table: Table, model_ids: Sequence[int], estimator_ns: int, lo: int, hi: int
) -> list[RowMapping]:
    """The rows of a cache of hours (``estimate_hours``, ``realized_hours``) starting in ``[lo, hi)`` of these
    model rows under an estimator."""
    if not model_ids:
        return []
    t = table.c
    query = select(table).where(
        t.model_id.in_(list(model_ids)), t.estimator_ns == estimator_ns, t.hour >= lo, t.hour < hi
    )
    return list(conn.execute(query).mappings())


class EstimateStore:
    """Reads and writes the estimate tables through the process's SQLAlchemy engine (SQLite or PostgreSQL)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def put_estimator(self, model: str, version: str, name: str, body: Mapping[str, object]) -> int:
        """Store (or replace) the estimator of reference ``name``; returns its creation time. The model's cached
        hours (estimated and realized) are dropped: they were computed under the estimator this one may replace."""
        created = time.time_ns()
        with self.engine.begin() as conn:
            conn.execute(
                delete(estimators).where(
                    estimators.c.model == model, estimators.c.version == version, estimators.c.name == name
                )
            )
            conn.execute(
                insert(estimators),
                [{"model": model, "version": version, "name": name, "created_ns": created, "body": json.dumps(body)}],
            )
            models = select(models_table.c.id).where(models_table.c.name == bindparam("model"))
            for table in (estimate_hours, realized_hours):
                conn.execute(delete(table).where(table.c.model_id.in_(models)), {"model": model})
        return created

    def estimator(self, model: str, version: str | None) -> AnyEstimator | None:
        """The newest estimator of ``version`` (else one logged without a version) of ``model``."""
        with self.engine.connect() as conn:
            row = conn.execute(newest_for_version(estimators, model, version)).first()
        if row is None:
            return None
        return parse_any(json.loads(row.body), row.created_ns)

    def hours(self, model_ids: Sequence[int], estimator_ns: int, lo: int, hi: int) -> HourStats:
        """The cached hours starting in ``[lo, hi)`` of these model rows under an estimator."""
        with self.engine.connect() as conn:
            return {
                (r["model_id"], r["hour"]): (r["rows"], np.frombuffer(r["stats"], dtype=np.float64))
                for r in _cached(conn, estimate_hours, model_ids, estimator_ns, lo, hi)
            }

    def put_hours(self, estimator_ns: int, found: Iterable[tuple[int, int, int, Floats]]) -> None:
        """Cache closed hours: (model id, hour, rows, statistics); an hour already cached is kept."""
        items = [
            {"model_id": m, "estimator_ns": estimator_ns, "hour": h, "rows": r, "stats": np.asarray(s).tobytes()}
            for m, h, r, s in found
        ]
        if not items:
            return
        with self.engine.begin() as conn:
            keys = [and_(estimate_hours.c.model_id == i["model_id"], estimate_hours.c.hour == i["hour"]) for i in items]
            conn.execute(delete(estimate_hours).where(estimate_hours.c.estimator_ns == estimator_ns, or_(*keys)))
            conn.execute(insert(estimate_hours), items)

    def realized(
        self, model_ids: Sequence[int], estimator_ns: int, lo: int, hi: int
    ) -> dict[tuple[int, int], tuple[str, np.typing.NDArray[np.float64], str]]:
        """The cached realized statistics of the hours starting in ``[lo, hi)``: (labels state, vector, the hour's
        figures as JSON) each."""
        with self.engine.connect() as conn:
            return {
                (r["model_id"], r["hour"]): (r["state"], np.frombuffer(r["stats"], dtype=np.float64), r["figures"])
                for r in _cached(conn, realized_hours, model_ids, estimator_ns, lo, hi)
            }

    def put_realized(self, estimator_ns: int, found: Iterable[tuple[int, int, str, Floats, str]]) -> None:
        """Cache closed hours' realized statistics: (model id, hour, labels state, vector, figures JSON), replacing
        older ones."""
        items = [
            {
                "model_id": m,
                "estimator_ns": estimator_ns,
                "hour": h,
                "state": st,
                "stats": np.asarray(s).tobytes(),
                "figures": figures,
            }
            for m, h, st, s, figures in found
        ]
        if not items:
            return
        # Two answers computing one hour at once: the second insert meets the first's row, checked by its digest next.
        with contextlib.suppress(IntegrityError), self.engine.begin() as conn:
            # In chunks: SQLite caps an expression's depth at 1,000, and a month of hours is 720 terms a model row.
            for at in range(0, len(items), 200):
                keys = [
                    and_(realized_hours.c.model_id == i["model_id"], realized_hours.c.hour == i["hour"])
                    for i in items[at : at + 200]
                ]
                conn.execute(delete(realized_hours).where(realized_hours.c.estimator_ns == estimator_ns, or_(*keys)))
            conn.execute(insert(realized_hours), items)
