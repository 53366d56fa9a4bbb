"""Approvals (append-only, like versions and label moves) and protected labels.

Revision ID: 0008_approvals
Revises: 0007_run_retrieval
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008_approvals"
down_revision = "0007_run_retrieval"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "approval",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("prompt_id", sa.Integer(), sa.ForeignKey("prompt.id"), nullable=False),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=False),
        sa.Column("approver", sa.String(256), nullable=False),
        sa.Column("comment", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_approval_prompt", "approval", ["prompt_id", "id"])
    op.create_index("ix_approval_version", "approval", ["version_id"])
    op.create_table(
        "label_rule",
        sa.Column("label", sa.String(64), primary_key=True),
        sa.Column("requires", sa.String(32), nullable=False),
        sa.Column("set_by", sa.String(256), nullable=False),
        sa.Column("set_at", sa.DateTime(timezone=True), nullable=False),
    )
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            "CREATE TRIGGER approval_append_only BEFORE UPDATE OR DELETE ON approval "
            "FOR EACH ROW EXECUTE FUNCTION workbench_append_only()"
        )
    else:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER approval_no_{action.lower()} BEFORE {action} ON approval "
                f"BEGIN SELECT RAISE(ABORT, 'rows of approval are immutable ({action} refused)'); END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute("DROP TRIGGER approval_append_only ON approval")
    op.drop_table("label_rule")
    op.drop_index("ix_approval_version", "approval")
    op.drop_index("ix_approval_prompt", "approval")
    op.drop_table("approval")
