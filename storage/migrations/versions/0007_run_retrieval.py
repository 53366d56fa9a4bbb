"""Runs record what retrieval gave them: per bound variable, the query, the chunk ids,
distances and texts, injection flags and the exact context inserted.

Revision ID: 0007_run_retrieval
Revises: 0006_rubrics
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007_run_retrieval"
down_revision = "0006_rubrics"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("retrieval", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_column("retrieval")
