"""API keys in the database: hashes only (never a secret), scopes, revocation, the last admin key kept.

Each function runs inside the caller's transaction; the write ones inside a write transaction, which holds the
engine's write lock (``store/engine.py``), so two processes cannot both revoke one of the last two admin keys.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from sqlalchemy import bindparam, func, insert, literal, select, update

from aither_server.model import api_keys
from aither_server.store.core_tables import api_keys as keys_table
from aither_server.store.engine import Connection, run
from aither_server.store.meta_values import read_meta, write_meta
from aither_server.store.results import KeyRecord, LastAdminKey

__all__ = ["bootstrap", "create", "find", "kept", "list_all", "revoke"]

_k = keys_table.c
_COLUMNS = (_k.id, _k.name, _k.prefix, _k.scopes, _k.created_ns, _k.last_used_ns, _k.revoked_ns)

_INSERT = insert(keys_table).values(
    id=bindparam("id"),
    name=bindparam("name"),
    prefix=bindparam("prefix"),
    hash=bindparam("hash"),
    scopes=bindparam("scopes"),
    created_ns=bindparam("created_ns"),
)
_EXISTS = select(literal(1)).where(_k.hash == bindparam("hash"))
_LIVE = select(literal(1)).where(_k.hash == bindparam("hash"), _k.revoked_ns.is_(None))
_COUNT = select(func.count()).select_from(keys_table)
_REVOKE_KEPT = (
    update(keys_table)
    .where(_k.name == bindparam("key_name"), _k.revoked_ns.is_(None), _k.scopes == bindparam("key_scopes"))
    .values(revoked_ns=bindparam("now"))
)
_LIST = select(*_COLUMNS).order_by(_k.created_ns, _k.id)
_ONE = select(*_COLUMNS).where(_k.id == bindparam("key_id"))
_LIVE_ADMINS = (
    select(func.count())
    .select_from(keys_table)
    .where(_k.revoked_ns.is_(None), (literal(",") + _k.scopes + literal(",")).like("%,admin,%"))
)
_REVOKE = update(keys_table).where(_k.id == bindparam("key_id")).values(revoked_ns=bindparam("now"))
_FIND = select(_k.id, _k.name, _k.scopes, _k.revoked_ns, _k.last_used_ns).where(_k.hash == bindparam("hash"))


#: An ``api_keys`` row as ``_COLUMNS`` selects it.
_KeyRow = tuple[str, str, str, str, int, int | None, int | None]


def _record(row: _KeyRow) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], tuple(row[3].split(",")), row[4], row[5], row[6])


def create(conn: Connection, name: str, scopes: Sequence[str], secret: str) -> KeyRecord:
    """Store a key for ``secret`` (its hash)."""
    record = KeyRecord(
        api_keys.generate_key_id(), name, api_keys.key_prefix(secret), tuple(scopes), time.time_ns(), None, None
    )
    run(
        conn,
        _INSERT,
        {
            "id": record.id,
            "name": name,
            "prefix": record.prefix,
            "hash": api_keys.hash_key(secret),
            "scopes": ",".join(scopes),
            "created_ns": record.created_ns,
        },
    )
    return record


def bootstrap(conn: Connection, bootstrap_key: str | None) -> str | None:
    """Make sure an admin key exists (see ``Store.bootstrap``)."""
    if bootstrap_key is not None:
        exists = run(conn, _EXISTS, {"hash": api_keys.hash_key(bootstrap_key)}).fetchone()
        if exists is None:
            create(conn, "bootstrap", ("admin",), bootstrap_key)
        return None
    if run(conn, _COUNT).fetchone()[0]:
        return None
    secret = api_keys.generate_key()
    create(conn, "admin", ("admin",), secret)
    return secret


def kept(conn: Connection, name: str, ordered: tuple[str, ...]) -> tuple[str, bool]:
    """The kept key ``name`` (see ``Store.kept_key``)."""
    slot = f"kept_key:{name}"
    stored = read_meta(conn, slot)
    if stored is not None:
        live = run(conn, _LIVE, {"hash": api_keys.hash_key(stored)}).fetchone()
        if live is not None:
            return stored, False
    run(conn, _REVOKE_KEPT, {"now": time.time_ns(), "key_name": name, "key_scopes": ",".join(ordered)})
    secret = api_keys.generate_key()
    create(conn, name, ordered, secret)
    write_meta(conn, slot, secret)
    return secret, True


def list_all(conn: Connection) -> list[KeyRecord]:
    return [_record(r) for r in run(conn, _LIST).fetchall()]


def revoke(conn: Connection, key_id: str) -> KeyRecord | None:
    """Revoke a key (see ``Store.revoke_key``); raises :class:`LastAdminKey` for the last admin key."""
    row = run(conn, _ONE, {"key_id": key_id}).fetchone()
    if row is None:
        return None
    record = _record(row)
    if record.revoked_ns is not None:
        return record
    if "admin" in record.scopes:
        admins = run(conn, _LIVE_ADMINS).fetchone()[0]
        if admins <= 1:
            raise LastAdminKey("this is the last admin key; create another admin key before revoking it")
    now = time.time_ns()
    run(conn, _REVOKE, {"now": now, "key_id": key_id})
    return dataclasses.replace(record, revoked_ns=now)


def find(conn: Connection, secret: str) -> tuple[str, str, tuple[str, ...], int | None] | None:
    """(id, name, scopes, last used) of the live key ``secret``, else ``None``."""
    row = run(conn, _FIND, {"hash": api_keys.hash_key(secret)}).fetchone()
    if row is None or row[3] is not None:
        return None
    return row[0], row[1], tuple(row[2].split(",")), row[4]
