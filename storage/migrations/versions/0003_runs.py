"""Runs: every model call with its rendered messages, output, status and metrics.

Revision ID: 0003_runs
Revises: 0002_datasets
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_runs"
down_revision = "0002_datasets"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "run",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column(
            "prompt_version_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=True
        ),
        sa.Column("template", sa.JSON, nullable=True),
        sa.Column("model", sa.Text, nullable=False),
        sa.Column("backend", sa.String(64), nullable=False),
        sa.Column("model_info", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("variables", sa.JSON, nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("output", sa.Text, nullable=False),
        sa.Column("error", sa.Text, nullable=True),
        sa.Column("ttft_ms", sa.Float, nullable=True),
        sa.Column("e2e_ms", sa.Float, nullable=True),
        sa.Column("tpot_ms", sa.Float, nullable=True),
        sa.Column("tokens_per_s", sa.Float, nullable=True),
        sa.Column("input_tokens", sa.Integer, nullable=True),
        sa.Column("output_tokens", sa.Integer, nullable=True),
        sa.Column("tokens_estimated", sa.Boolean, nullable=False),
        sa.Column("cost_usd", sa.Float, nullable=True),
        sa.Column("cost_source", sa.Text, nullable=False),
    )
    op.create_index("ix_run_created", "run", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_run_created", "run")
    op.drop_table("run")
