"""Alembic's entry point: runs the revisions on the connection ``_migrations.migrate`` opened (and holds in
one transaction), never on one of its own."""

from __future__ import annotations

from alembic import context

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=None, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
