"""The ids of models and instances: found or created inside the write transaction, and kept by the process
only once that transaction commits (a rolled-back one must not leave ids of rows that do not exist)."""

from __future__ import annotations

import dataclasses

from sqlalchemy import bindparam, select
from sqlalchemy.sql import Executable

from aither_server.store.core_tables import instances, models
from aither_server.store.engine import Connection, PerDialect, run

__all__ = ["IdRegistry", "ModelKey", "NewIds"]

#: A model's (name, version, environment).
ModelKey = tuple[str, str, str]


# inline(): no ``RETURNING id`` (SQLAlchemy's for a generated key on PostgreSQL): the id is read by its key after.
def _new_model(dialect: str) -> Executable:
    values: dict[str, object] = {
        name: bindparam(name) for name in ("name", "version", "environment", "first_seen_ns", "last_seen_ns")
    }
    key = [models.c.name, models.c.version, models.c.environment]
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(models).inline().values(values).on_conflict_do_nothing(index_elements=key)
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(models).inline().values(values).on_conflict_do_nothing(index_elements=key)


def _new_instance(dialect: str) -> Executable:
    values: dict[str, object] = {"instance": bindparam("instance"), "first_seen_ns": bindparam("first_seen_ns")}
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return (
            sqlite_insert(instances)
            .inline()
            .values(values)
            .on_conflict_do_nothing(index_elements=[instances.c.instance])
        )
    from sqlalchemy.dialects.postgresql import insert as pg_insert

    return pg_insert(instances).inline().values(values).on_conflict_do_nothing(index_elements=[instances.c.instance])


_NEW_MODEL = PerDialect(_new_model)
_MODEL_ID = select(models.c.id).where(
    models.c.name == bindparam("name"),
    models.c.version == bindparam("version"),
    models.c.environment == bindparam("environment"),
)
_NEW_INSTANCE = PerDialect(_new_instance)
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
