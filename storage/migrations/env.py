"""Alembic environment: runs on the connection handed over by ``workbench.storage.db``."""

from __future__ import annotations

from alembic import context
from sqlmodel import SQLModel

from workbench.storage import models  # noqa: F401  (registers the tables)

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=SQLModel.metadata,
    transactional_ddl=True,
    render_as_batch=connection.dialect.name == "sqlite",
)
with context.begin_transaction():
    context.run_migrations()
