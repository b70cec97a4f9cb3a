"""The dashboard's sign-in sessions, stored in the database so every server process knows them.

The browser holds a random session id in an HttpOnly, SameSite=Strict cookie; the table holds only its SHA-256
(a stolen database copy gives no usable cookie) and the API key it stands for, by id: never the key. A session
is alive while it has not expired and its key is neither revoked nor deleted, checked on every request, so
revoking a key signs out its sessions at once, in every process. Each session has its CSRF token, which every
form posts back (``v0012_ui_sessions``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import secrets
import time

from sqlalchemy import Engine, delete, insert, select

from aither_server.model.api_keys import Principal
from aither_server.store.database import Store
from aither_server.store.session_tables import metadata, ui_sessions

__all__ = ["COOKIE", "SESSION_TTL_S", "Session", "SessionStore", "metadata", "same_token", "ui_sessions"]

#: The cookie's name.
COOKIE = "aither_session"
#: How long a session lives after sign-in.
SESSION_TTL_S = 12 * 3600


@dataclasses.dataclass(frozen=True)
class Session:
    principal: Principal
    csrf: str

    @property
    def admin(self) -> bool:
        return "admin" in self.principal.scopes


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


class SessionStore:
    def __init__(self, engine: Engine, store: Store) -> None:
        self.engine = engine
        self.store = store

    def create(self, principal: Principal, now_ns: int | None = None) -> str:
        """A new session for the principal of a checked key; returns the session id for the cookie."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        session_id = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            # Expired sessions go as new ones come: the table stays the size of the live ones.
            conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_ns < now_ns))
            conn.execute(
                insert(ui_sessions).values(
                    id_hash=_hash(session_id),
                    key_id=principal.key_id,
                    csrf=secrets.token_urlsafe(24),
                    created_ns=now_ns,
                    expires_ns=now_ns + SESSION_TTL_S * 1_000_000_000,
                )
            )
        return session_id

    def get(self, session_id: str | None, now_ns: int | None = None) -> Session | None:
        """The live session of a cookie, or None (no cookie, unknown, expired, or its key revoked)."""
        if not session_id or len(session_id) > 200:
            return None
        now_ns = time.time_ns() if now_ns is None else now_ns
        with self.engine.connect() as conn:
            row = conn.execute(select(ui_sessions).where(ui_sessions.c.id_hash == _hash(session_id))).first()
        if row is None or row.expires_ns <= now_ns:
            return None
        key = next((k for k in self.store.list_keys() if k.id == row.key_id), None)
        if key is None or key.revoked_ns is not None:
            return None
        return Session(Principal(key_id=key.id, name=key.name, scopes=tuple(key.scopes)), row.csrf)

    def delete(self, session_id: str | None) -> None:
        if session_id:
            with self.engine.begin() as conn:
                conn.execute(delete(ui_sessions).where(ui_sessions.c.id_hash == _hash(session_id)))


def same_token(sent: str | None, expected: str) -> bool:
    """Constant-time comparison of a posted CSRF token with the session's."""
    return sent is not None and hmac.compare_digest(sent.encode(), expected.encode())
