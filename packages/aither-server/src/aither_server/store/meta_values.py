"""The ``meta`` table's named values (the organisation, a kept key's secret, the privacy policies' generation):
read one, or set it."""

from __future__ import annotations

from sqlalchemy import bindparam, select

from aither_server.store.core_tables import meta
from aither_server.store.engine import Connection, run, upsert

__all__ = ["read_meta", "write_meta"]

_READ = select(meta.c.value).where(meta.c.key == bindparam("key"))
_WRITE = upsert(
    meta, {"key": bindparam("key"), "value": bindparam("value")}, [meta.c.key], lambda new: {"value": new.value}
)


def read_meta(conn: Connection, key: str) -> str | None:
    found = run(conn, _READ, {"key": key}).fetchone()
    return None if found is None else str(found[0])


def write_meta(conn: Connection, key: str, value: str) -> None:
    run(conn, _WRITE, {"key": key, "value": value})
