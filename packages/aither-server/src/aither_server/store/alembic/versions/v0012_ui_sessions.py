"""The dashboard's sign-in sessions (``ui/sessions.py``): a session id's hash, its key's id, its CSRF token.

The table is that of ``ui/sessions.py`` (SQLAlchemy Core), created from its metadata so the two never differ.
"""

from __future__ import annotations

from alembic import op

from aither_server.store.session_tables import metadata

revision = "0012"
down_revision: str | None = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    metadata.create_all(op.get_bind())


def downgrade() -> None:
    metadata.drop_all(op.get_bind())
