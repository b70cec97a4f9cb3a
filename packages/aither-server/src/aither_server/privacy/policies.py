"""Policies in the database, and each process's cache of them.

Every ingestion request needs its models' policies, so each process keeps them in memory. A change bumps a
generation number in ``meta`` in the transaction that writes it: the process that made it reloads at once, and
every other process on the database (several servers on one PostgreSQL) reads the generation at most
:data:`CHECK_INTERVAL_S` after its last look and reloads when it moved. So a change applies to the next request
of the process that made it, and to every request of every process from one second after its commit.
"""

from __future__ import annotations

import json
import threading
import time

from sqlalchemy import bindparam, delete, select

from aither.privacy import hash_key_from_env
from aither_server.privacy import audit
from aither_server.privacy.policy import ORG, EffectivePolicy, PolicySpec, effective, parse_spec
from aither_server.store.core_tables import privacy_policies
from aither_server.store.database import Store
from aither_server.store.engine import Connection, run, upsert
from aither_server.store.meta_values import read_meta, write_meta

__all__ = ["CHECK_INTERVAL_S", "PolicyCache", "StoredPolicy"]

#: How often a process asks the database whether another changed a policy.
CHECK_INTERVAL_S = 1.0
_GENERATION = "privacy_generation"

StoredPolicy = tuple[str, PolicySpec, int, str]
"""(model, policy, updated at (ns), updated by (key id))."""

_p = privacy_policies.c
_SPECS = select(_p.model, _p.body)
_LIST = select(_p.model, _p.body, _p.updated_ns, _p.updated_by).order_by(_p.model)
_PUT = upsert(
    privacy_policies,
    {
        "model": bindparam("model"),
        "body": bindparam("body"),
        "updated_ns": bindparam("updated_ns"),
        "updated_by": bindparam("updated_by"),
    },
    [_p.model],
    lambda new: {"body": new.body, "updated_ns": new.updated_ns, "updated_by": new.updated_by},
)
_DELETE = delete(privacy_policies).where(_p.model == bindparam("model"))


def _stored(body: str) -> PolicySpec:
    """A stored policy, checked when it was set (its ``hash`` rules are checked against the key at use)."""
    return parse_spec(json.loads(body), b"checked when set")


def _bump(conn: Connection) -> None:
    found = read_meta(conn, _GENERATION)
    write_meta(conn, _GENERATION, str(int(found) + 1 if found is not None else 1))


class PolicyCache:
    """The policies of one store, cached; ``policy_of`` is what ingestion calls for each model."""

    def __init__(self, store: Store, *, check_interval_s: float = CHECK_INTERVAL_S) -> None:
        self._store = store
        self._interval = check_interval_s
        self._lock = threading.Lock()
        self._checked = -float("inf")
        self._generation: str | None = None
        self._specs: dict[str, PolicySpec] = {}
        self._effective: dict[str, EffectivePolicy] = {}
        self._hash_key = hash_key_from_env()

    @property
    def hash_key(self) -> bytes | None:
        return self._hash_key

    def policy_of(self, model: str) -> EffectivePolicy:
        self._refresh()
        found = self._effective.get(model)
        if found is None:
            found = effective(self._specs.get(ORG), self._specs.get(model), self._hash_key)
            if len(self._effective) < 100_000:
                self._effective[model] = found
        return found

    def _refresh(self, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self._checked < self._interval:
            return
        with self._lock:
            if not force and now - self._checked < self._interval:
                return
            conn = self._store.reader()
            generation = read_meta(conn, _GENERATION)
            if force or generation != self._generation:
                specs = {model: _stored(body) for model, body in run(conn, _SPECS).fetchall()}
                self._specs, self._effective, self._generation = specs, {}, generation
            self._checked = now

    def invalidate(self) -> None:
        """Reload now (this process changed a policy)."""
        self._refresh(force=True)

    def list(self) -> list[StoredPolicy]:
        rows = run(self._store.reader(), _LIST).fetchall()
        return [(r[0], _stored(r[1]), r[2], r[3]) for r in rows]

    def get(self, model: str) -> StoredPolicy | None:
        return next((p for p in self.list() if p[0] == model), None)

    def put(self, model: str, body: object, key_id: str) -> StoredPolicy:
        """Set ``model``'s policy (``*``: the organisation's); :class:`PolicyError` for a bad one."""
        spec = parse_spec(body, self._hash_key)
        now = time.time_ns()
        text = json.dumps(spec.to_json(), separators=(",", ":"), sort_keys=True)
        with self._store.write() as conn:
            run(conn, _PUT, {"model": model, "body": text, "updated_ns": now, "updated_by": key_id})
            _bump(conn)
            audit.record(conn, key_id, "policy.set", model, spec.to_json())
        self.invalidate()
        return model, spec, now, key_id

    def delete(self, model: str, key_id: str) -> bool:
        with self._store.write() as conn:
            deleted = run(conn, _DELETE, {"model": model}).rowcount
            if deleted:
                _bump(conn)
                audit.record(conn, key_id, "policy.delete", model, {})
        self.invalidate()
        return bool(deleted)
