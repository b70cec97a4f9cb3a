"""Estimated performance's tables, in SQLAlchemy Core: defined below every layer that reads them, so the
migration that creates them (``v0013_estimates``) and ``estimate/store.py`` share one definition.

- ``estimators``: what a reference taught the server about a model version's scores (``aither.log_reference``
  with ``predictions=`` and ``labels=``): the per-class calibration and the score bins, as JSON. One per model,
  version and reference name; ``created_ns`` identifies it in the cache below.
- ``estimate_hours``: the sufficient statistics of one closed hour of one model row's predictions under one
  estimator (``estimate/cbpe.py``'s vector, float64 bytes), so a 30-day question reads 720 small blobs instead of
  parsing a million predictions. A new estimator has a new ``created_ns``: its hours are computed afresh and
  the old ones are deleted when it is stored.
- ``realized_hours`` (v0018, its own metadata so ``v0013`` keeps creating only the two above): what the realized
  figures of one closed hour of one model row need, read from its labelled rows once (``estimate/realized.py``),
  and the hour's own figures as JSON (a one-hour slice of one model row reads them as they are), with ``state``,
  a digest of the hour's ``quality_hours`` cells when it was computed: a label that joins, is replaced or is
  erased changes those cells, and the hour is computed again.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, LargeBinary, MetaData, PrimaryKeyConstraint, String, Table, Text

from aither_server.store.model_keyed import names

__all__ = ["estimate_hours", "estimators", "metadata", "realized_hours", "realized_metadata"]


def _hour_key() -> tuple[Column[int], Column[int], Column[int], PrimaryKeyConstraint]:
    """One closed hour of one model row under one estimator: the key of both caches."""
    return (
        Column("model_id", Integer, nullable=False),
        Column("estimator_ns", BigInteger, nullable=False),
        Column("hour", BigInteger, nullable=False),
        PrimaryKeyConstraint("model_id", "estimator_ns", "hour"),
    )


metadata = MetaData()

estimators = Table(
    "estimators",
    metadata,
    *names("model", "version", "name"),
    Column("created_ns", BigInteger, nullable=False),
    Column("body", Text, nullable=False),
    PrimaryKeyConstraint("model", "version", "name"),
)

estimate_hours = Table(
    "estimate_hours",
    metadata,
    *_hour_key(),
    Column("rows", BigInteger, nullable=False),
    Column("stats", LargeBinary, nullable=False),
)

realized_metadata = MetaData()

realized_hours = Table(
    "realized_hours",
    realized_metadata,
    *_hour_key(),
    Column("state", String(64), nullable=False),
    Column("stats", LargeBinary, nullable=False),
    Column("figures", Text, nullable=False),
)
