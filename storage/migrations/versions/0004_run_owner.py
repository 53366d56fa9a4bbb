"""Runs know which process made them, so a dead process's runs can be marked interrupted.

Revision ID: 0004_run_owner
Revises: 0003_runs
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_run_owner"
down_revision = "0003_runs"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("owner", sa.String(300), nullable=True))
    op.create_index("ix_run_status", "run", ["status"])


def downgrade() -> None:
    op.drop_index("ix_run_status", "run")
    with op.batch_alter_table("run") as batch:
        batch.drop_column("owner")
