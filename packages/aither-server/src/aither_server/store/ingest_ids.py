"""The ids of models and instances: found or created inside the write transaction, and kept by the process
only once that transaction commits (a rolled-back one must not leave ids of rows that do not exist)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import bindparam, select

from aither_server.store.core_tables import instances, models
from aither_server.store.engine import Connection, insert_if_new, run

__all__ = ["IdRegistry", "ModelKey", "NewIds"]

#: A model's (name, version, environment).
ModelKey = tuple[str, str, str]


_NEW_MODEL = insert_if_new(
    models,
    {name: bindparam(name) for name in ("name", "version", "environment", "first_seen_ns", "last_seen_ns")},
    [models.c.name, models.c.version, models.c.environment],
)
_MODEL_ID = select(models.c.id).where(
    models.c.name == bindparam("name"),
    models.c.version == bindparam("version"),
    models.c.environment == bindparam("environment"),
)
_NEW_INSTANCE = insert_if_new(
    instances,
    {"instance": bindparam("instance"), "first_seen_ns": bindparam("first_seen_ns")},
    [instances.c.instance],
)
_INSTANCE_ID = select(instances.c.id).where(instances.c.instance == bindparam("instance"))


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
        name, version, environment = key
        found = {"name": name, "version": version, "environment": environment}
        run(conn, _NEW_MODEL, {**found, "first_seen_ns": seen_ns, "last_seen_ns": seen_ns})
        model_id: int = run(conn, _MODEL_ID, found).fetchone()[0]
        new.models[key] = model_id
        return model_id

    def instance_id(self, conn: Connection, instance: str, seen_ns: int, new: NewIds) -> int:
        cached = self.instances.get(instance) or new.instances.get(instance)
        if cached is not None:
            return cached
        run(conn, _NEW_INSTANCE, {"instance": instance, "first_seen_ns": seen_ns})
        instance_id: int = run(conn, _INSTANCE_ID, {"instance": instance}).fetchone()[0]
        new.instances[instance] = instance_id
        return instance_id

    def remember(self, new: NewIds) -> None:
        """Keep the ids a committed transaction created (never a rolled-back one's)."""
        self.models.update(new.models)
        self.instances.update(new.instances)
