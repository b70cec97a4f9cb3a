"""The ids of models and instances: found or created inside the write transaction, and kept by the process
only once that transaction commits (a rolled-back one must not leave ids of rows that do not exist)."""

from __future__ import annotations

import dataclasses

from aither_server.store.engine import Connection

__all__ = ["IdRegistry", "ModelKey", "NewIds"]

#: A model's (name, version, environment).
ModelKey = tuple[str, str, str]


@dataclasses.dataclass
class NewIds:
    """The ids one transaction (or one request's savepoint) created: the registry keeps them once it commits."""

    models: dict[ModelKey, int] = dataclasses.field(default_factory=dict)
    instances: dict[str, int] = dataclasses.field(default_factory=dict)

    def add(self, other: NewIds) -> None:
        self.models.update(other.models)
        self.instances.update(other.instances)


class IdRegistry:
    """The committed ids of the models and instances this process has seen; finds or creates the others."""

    def __init__(self) -> None:
        self.models: dict[ModelKey, int] = {}
        self.instances: dict[str, int] = {}

    def model_id(self, conn: Connection, key: ModelKey, seen_ns: int, new: NewIds) -> int:
        cached = self.models.get(key) or new.models.get(key)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO models (name, version, environment, first_seen_ns, last_seen_ns)"
            " VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (name, version, environment) DO NOTHING",
            (*key, seen_ns, seen_ns),
        )
        model_id: int = conn.execute(
            "SELECT id FROM models WHERE name = ? AND version = ? AND environment = ?", key
        ).fetchone()[0]
        new.models[key] = model_id
        return model_id

    def instance_id(self, conn: Connection, instance: str, seen_ns: int, new: NewIds) -> int:
        cached = self.instances.get(instance) or new.instances.get(instance)
        if cached is not None:
            return cached
        conn.execute(
            "INSERT INTO instances (instance, first_seen_ns) VALUES (?, ?) ON CONFLICT (instance) DO NOTHING",
            (instance, seen_ns),
        )
        instance_id: int = conn.execute("SELECT id FROM instances WHERE instance = ?", (instance,)).fetchone()[0]
        new.instances[instance] = instance_id
        return instance_id

    def remember(self, new: NewIds) -> None:
        """Keep the ids a committed transaction created (never a rolled-back one's)."""
        self.models.update(new.models)
        self.instances.update(new.instances)
