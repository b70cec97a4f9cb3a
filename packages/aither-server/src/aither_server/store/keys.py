"""API keys in the database: hashes only (never a secret), scopes, revocation, the last admin key kept.

Each function runs inside the caller's transaction; the write ones inside a write transaction, which holds the
engine's write lock (``store/engine.py``), so two processes cannot both revoke one of the last two admin keys.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

from aither_server.model import api_keys
from aither_server.store.engine import Connection
from aither_server.store.results import KeyRecord, LastAdminKey

__all__ = ["bootstrap", "create", "find", "kept", "list_all", "revoke"]

_COLUMNS = "id, name, prefix, scopes, created_ns, last_used_ns, revoked_ns"


#: An ``api_keys`` row as ``_COLUMNS`` selects it.
_KeyRow = tuple[str, str, str, str, int, int | None, int | None]


def _record(row: _KeyRow) -> KeyRecord:
    return KeyRecord(row[0], row[1], row[2], tuple(row[3].split(",")), row[4], row[5], row[6])


def create(conn: Connection, name: str, scopes: Sequence[str], secret: str) -> KeyRecord:
    """Store a key for ``secret`` (its hash)."""
    record = KeyRecord(
        api_keys.generate_key_id(), name, api_keys.key_prefix(secret), tuple(scopes), time.time_ns(), None, None
    )
    conn.execute(
        "INSERT INTO api_keys (id, name, prefix, hash, scopes, created_ns) VALUES (?, ?, ?, ?, ?, ?)",
        (record.id, name, record.prefix, api_keys.hash_key(secret), ",".join(scopes), record.created_ns),
    )
    return record


def bootstrap(conn: Connection, bootstrap_key: str | None) -> str | None:
    """Make sure an admin key exists (see ``Store.bootstrap``)."""
    if bootstrap_key is not None:
        exists = conn.execute("SELECT 1 FROM api_keys WHERE hash = ?", (api_keys.hash_key(bootstrap_key),)).fetchone()
        if exists is None:
            create(conn, "bootstrap", ("admin",), bootstrap_key)
        return None
    if conn.execute("SELECT count(*) FROM api_keys").fetchone()[0]:
        return None
    secret = api_keys.generate_key()
    create(conn, "admin", ("admin",), secret)
    return secret


def kept(conn: Connection, name: str, ordered: tuple[str, ...]) -> tuple[str, bool]:
    """The kept key ``name`` (see ``Store.kept_key``)."""
    slot = f"kept_key:{name}"
    found = conn.execute("SELECT value FROM meta WHERE key = ?", (slot,)).fetchone()
    if found is not None:
        live = conn.execute(
            "SELECT 1 FROM api_keys WHERE hash = ? AND revoked_ns IS NULL", (api_keys.hash_key(found[0]),)
        ).fetchone()
        if live is not None:
            return str(found[0]), False
    conn.execute(
        "UPDATE api_keys SET revoked_ns = ? WHERE name = ? AND revoked_ns IS NULL AND scopes = ?",
        (time.time_ns(), name, ",".join(ordered)),
    )
    secret = api_keys.generate_key()
    create(conn, name, ordered, secret)
    conn.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        (slot, secret),
    )
    return secret, True


def list_all(conn: Connection) -> list[KeyRecord]:
    return [_record(r) for r in conn.execute(f"SELECT {_COLUMNS} FROM api_keys ORDER BY created_ns, id").fetchall()]


def revoke(conn: Connection, key_id: str) -> KeyRecord | None:
    """Revoke a key (see ``Store.revoke_key``); raises :class:`LastAdminKey` for the last admin key."""
    row = conn.execute(f"SELECT {_COLUMNS} FROM api_keys WHERE id = ?", (key_id,)).fetchone()
    if row is None:
        return None
    record = _record(row)
    if record.revoked_ns is not None:
        return record
    if "admin" in record.scopes:
        admins = conn.execute(
            "SELECT count(*) FROM api_keys WHERE revoked_ns IS NULL AND ',' || scopes || ',' LIKE '%,admin,%'"
        ).fetchone()[0]
        if admins <= 1:
            raise LastAdminKey("this is the last admin key; create another admin key before revoking it")
    now = time.time_ns()
    conn.execute("UPDATE api_keys SET revoked_ns = ? WHERE id = ?", (now, key_id))
    return dataclasses.replace(record, revoked_ns=now)


def find(conn: Connection, secret: str) -> tuple[str, str, tuple[str, ...], int | None] | None:
    """(id, name, scopes, last used) of the live key ``secret``, else ``None``."""
    row = conn.execute(
        "SELECT id, name, scopes, revoked_ns, last_used_ns FROM api_keys WHERE hash = ?", (api_keys.hash_key(secret),)
    ).fetchone()
    if row is None or row[3] is not None:
        return None
    return row[0], row[1], tuple(row[2].split(",")), row[4]
