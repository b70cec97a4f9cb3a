"""The models the server has seen: their names, versions, environments and counts, and the rows behind a name."""

from __future__ import annotations

from typing import Any

from aither_server.query import aggregates as query_aggregates
from aither_server.query.time import iso
from aither_server.store.engine import Connection

__all__ = ["list_models", "model_ids"]


def list_models(conn: Connection) -> list[dict[str, Any]]:
    by_name: dict[str, dict[str, Any]] = {}
    totals = query_aggregates.model_totals(conn)
    for model_id, name, version, env, first, last in conn.execute(
        "SELECT id, name, version, environment, first_seen_ns, last_seen_ns FROM models"
        " ORDER BY name, version, environment"
    ):
        calls, preds = totals[model_id]
        entry = by_name.setdefault(
            name,
            {
                "name": name,
                "versions": [],
                "environments": [],
                "first": first,
                "last": last,
                "calls": 0,
                "p": 0,
            },
        )
        if version and version not in entry["versions"]:
            entry["versions"].append(version)
        if env and env not in entry["environments"]:
            entry["environments"].append(env)
        entry["first"] = min(entry["first"], first)
        entry["last"] = max(entry["last"], last)
        entry["calls"] += calls
        entry["p"] += preds
    return [
        {
            "name": e["name"],
            "versions": e["versions"],
            "environments": e["environments"],
            "first_seen": iso(e["first"]),
            "last_seen": iso(e["last"]),
            "calls": e["calls"],
            "predictions": e["p"],
        }
        for e in by_name.values()
    ]


def model_ids(
    conn: Connection, name: str, version: str | None, environment: str | None
) -> list[tuple[int, int, int]] | None:
    """(id, first_seen, last_seen) of the matching model rows; ``None`` when no model has this name."""
    rows = conn.execute(
        "SELECT id, version, environment, first_seen_ns, last_seen_ns FROM models WHERE name = ?", (name,)
    ).fetchall()
    if not rows:
        return None
    return [
        (mid, first, last)
        for mid, ver, env, first, last in rows
        if (version is None or ver == version) and (environment is None or env == environment)
    ]
