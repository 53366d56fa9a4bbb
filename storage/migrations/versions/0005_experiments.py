"""Experiments, and runs that know their experiment cell and cache key.

Revision ID: 0005_experiments
Revises: 0004_run_owner
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_experiments"
down_revision = "0004_run_owner"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "experiment",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("cells", sa.Integer(), nullable=False),
        sa.Column("owner", sa.String(300), nullable=True),
    )
    op.create_index("ix_experiment_created", "experiment", ["created_at"])
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("experiment_id", sa.String(32), nullable=True))
        batch.add_column(sa.Column("cell", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cache_key", sa.String(64), nullable=True))
        batch.add_column(sa.Column("cached_from", sa.String(32), nullable=True))
        batch.create_foreign_key("fk_run_experiment", "experiment", ["experiment_id"], ["id"])
    op.create_index("ix_run_experiment", "run", ["experiment_id"])
    op.create_index("ix_run_cache_key", "run", ["cache_key"])


def downgrade() -> None:
    op.drop_index("ix_run_cache_key", "run")
    op.drop_index("ix_run_experiment", "run")
    with op.batch_alter_table("run") as batch:
        batch.drop_constraint("fk_run_experiment", type_="foreignkey")
        for name in ("cached_from", "cache_key", "cell", "experiment_id"):
            batch.drop_column(name)
    op.drop_table("experiment")
