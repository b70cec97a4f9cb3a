"""What the SQLAlchemy Core tables keyed by a model's strings share (drift, embeddings, estimators, monitors):
their name columns, and the filters and the "newest of this version" question over them.

These tables name a model by its (name, version, environment) strings, not by the core tables' ids, so they
depend on nothing else in the schema; a reference (or an estimator) logged without a version has version ``''``
and serves every version that has none of its own.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import BigInteger, Column, ColumnElement, Select, String, Table, select

if TYPE_CHECKING:
    from typing_extensions import Unpack

__all__ = ["model_filter", "model_hour", "names", "newest_for_version"]


def names(*columns: str, nullable: bool = False) -> tuple[Column[str], ...]:
    """String columns that name a model, its version or environment, or a reference (at most 256 characters)."""
    return tuple(Column(column, String(256), nullable=nullable) for column in columns)


def model_hour() -> tuple[Column[str], Column[str], Column[str], Column[int]]:
    """A model's (name, version, environment) and an hour (nanoseconds // one hour's): an hourly table's key."""
    model, version, environment = names("model", "version", "environment")
    return model, version, environment, Column("hour", BigInteger, nullable=False)


def model_filter(table: Table, model: str, version: str | None, environment: str | None) -> list[ColumnElement[bool]]:
    """The rows of ``model``, of ``version`` and ``environment`` when given."""
    clauses = [table.c.model == model]
    if version is not None:
        clauses.append(table.c.version == version)
    if environment is not None:
        clauses.append(table.c.environment == environment)
    return clauses


def newest_for_version(
    table: Table, model: str, version: str | None, name: str | None = None
) -> Select[Unpack[tuple[object, ...]]]:
    """The one row that serves ``version`` of ``model`` (named ``name`` when given): the version's own first
    (versions sort after ``''``), then the newest by ``created_ns``."""
    query = select(table).where(table.c.model == model)
    if name is not None:
        query = query.where(table.c.name == name)
    if version is not None:
        query = query.where(table.c.version.in_([version, ""]))
    return query.order_by(table.c.version.desc(), table.c.created_ns.desc()).limit(1)
