"""The models the server has seen: their names, versions, environments and counts, and the rows behind a name."""

from __future__ import annotations

from pydantic import ConfigDict, with_config
from sqlalchemy import bindparam, select
from typing_extensions import TypedDict

from aither_server.query import aggregates as query_aggregates
from aither_server.query.time import iso
from aither_server.store.core_tables import models
from aither_server.store.engine import Connection, run

__all__ = ["ModelOut", "list_models", "model_ids"]

_m = models.c
_ALL = select(_m.id, _m.name, _m.version, _m.environment, _m.first_seen_ns, _m.last_seen_ns).order_by(
    _m.name, _m.version, _m.environment
)
_NAMED = select(_m.id, _m.version, _m.environment, _m.first_seen_ns, _m.last_seen_ns).where(
    _m.name == bindparam("name")
)


@with_config(ConfigDict(extra="forbid"))
class ModelOut(TypedDict):  # a model name's versions, environments, first and last span and counts
    name: str
    versions: list[str]
    environments: list[str]
    first_seen: str | None
    last_seen: str | None
    calls: int
    predictions: int


def list_models(conn: Connection) -> list[ModelOut]:
    by_name: dict[str, ModelOut] = {}
    first_ns: dict[str, int] = {}
    last_ns: dict[str, int] = {}
    totals = query_aggregates.model_totals(conn)
    for model_id, name, version, env, first, last in run(conn, _ALL):
        calls, preds = totals[model_id]
        entry = by_name.get(name)
        if entry is None:
            entry = by_name[name] = ModelOut(
                name=name, versions=[], environments=[], first_seen=None, last_seen=None, calls=0, predictions=0
            )
            first_ns[name], last_ns[name] = first, last
        if version and version not in entry["versions"]:
            entry["versions"].append(version)
        if env and env not in entry["environments"]:
            entry["environments"].append(env)
        first_ns[name] = min(first_ns[name], first)
        last_ns[name] = max(last_ns[name], last)
        entry["calls"] += calls
        entry["predictions"] += preds
    for name, entry in by_name.items():
        entry["first_seen"] = iso(first_ns[name])
        entry["last_seen"] = iso(last_ns[name])
    return list(by_name.values())


def model_ids(
    conn: Connection, name: str, version: str | None, environment: str | None
) -> list[tuple[int, int, int]] | None:
    """(id, first_seen, last_seen) of the matching model rows; ``None`` when no model has this name."""
    rows = run(conn, _NAMED, {"name": name}).fetchall()
    if not rows:
        return None
    return [
        (mid, first, last)
        for mid, ver, env, first, last in rows
        if (version is None or ver == version) and (environment is None or env == environment)
    ]
