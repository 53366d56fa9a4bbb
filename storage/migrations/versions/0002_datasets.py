"""Datasets of test cases.

Revision ID: 0002_datasets
Revises: 0001_prompts
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_datasets"
down_revision = "0001_prompts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "dataset",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "dataset_case",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "dataset_id",
            sa.Integer,
            sa.ForeignKey("dataset.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("vars", sa.JSON, nullable=False),
        sa.Column("expected", sa.JSON, nullable=True),
        sa.Column("metadata", sa.JSON, nullable=False),
        sa.UniqueConstraint("dataset_id", "position", name="uq_dataset_case_position"),
    )


def downgrade() -> None:
    op.drop_table("dataset_case")
    op.drop_table("dataset")
