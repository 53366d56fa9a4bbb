"""Rubrics (immutable versions), people's scores and judges' verdicts.

Revision ID: 0006_rubrics
Revises: 0005_experiments
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006_rubrics"
down_revision = "0005_experiments"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rubric_version",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("parent_id", sa.String(64), nullable=True),
        sa.Column("content", sa.JSON(), nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("author", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("name", "number", name="uq_rubric_version_number"),
    )
    op.create_table(
        "score",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("rubric_version_id", sa.String(64), sa.ForeignKey("rubric_version.id"),
                  nullable=False),
        sa.Column("criterion", sa.String(64), nullable=False),
        sa.Column("reviewer", sa.String(200), nullable=False),
        sa.Column("value", sa.Integer(), nullable=True),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("run_id", "rubric_version_id", "criterion", "reviewer",
                            name="uq_score_once"),
    )
    op.create_index("ix_score_run", "score", ["run_id"])
    op.create_table(
        "judgement",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=False),
        sa.Column("judge_run_id", sa.String(32), sa.ForeignKey("run.id"), nullable=True),
        sa.Column("rubric_version_id", sa.String(64), sa.ForeignKey("rubric_version.id"),
                  nullable=False),
        sa.Column("judge_model", sa.Text(), nullable=False),
        sa.Column("scores", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_judgement_run", "judgement", ["run_id"])
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER rubric_version_append_only BEFORE UPDATE OR DELETE ON rubric_version "
            "FOR EACH ROW EXECUTE FUNCTION workbench_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER rubric_version_no_{action.lower()} BEFORE {action} ON "
                f"rubric_version BEGIN SELECT RAISE(ABORT, 'rows of rubric_version are immutable "
                f"({action} refused)'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER rubric_version_append_only ON rubric_version")
    op.drop_index("ix_judgement_run", "judgement")
    op.drop_table("judgement")
    op.drop_index("ix_score_run", "score")
    op.drop_table("score")
    op.drop_table("rubric_version")
