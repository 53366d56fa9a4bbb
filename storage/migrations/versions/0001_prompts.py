"""Prompts, immutable versions, labels and the label history.

Revision ID: 0001_prompts
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001_prompts"
down_revision = None
branch_labels = None
depends_on = None

APPEND_ONLY = ("prompt_version", "label_event")


def _when(name: str) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False)


def upgrade() -> None:
    op.create_table(
        "prompt",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("description", sa.Text, nullable=False),
        sa.Column("tags", sa.JSON, nullable=False),
        _when("created_at"),
    )
    op.create_table(
        "prompt_version",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompt.id"), nullable=False),
        sa.Column("number", sa.Integer, nullable=False),
        sa.Column("parent_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=True),
        sa.Column("content_hash", sa.String(64), nullable=False),
        sa.Column("messages", sa.JSON, nullable=False),
        sa.Column("params", sa.JSON, nullable=False),
        sa.Column("variables", sa.JSON, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("author", sa.String(256), nullable=False),
        _when("created_at"),
        sa.UniqueConstraint("prompt_id", "number", name="uq_prompt_version_number"),
    )
    op.create_table(
        "label",
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompt.id"), primary_key=True),
        sa.Column("name", sa.String(64), primary_key=True),
        sa.Column("version_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=False),
        sa.Column("moved_by", sa.String(256), nullable=False),
        _when("moved_at"),
    )
    op.create_table(
        "label_event",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("prompt_id", sa.Integer, sa.ForeignKey("prompt.id"), nullable=False),
        sa.Column("label", sa.String(64), nullable=False),
        sa.Column(
            "from_version_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=True
        ),
        sa.Column(
            "to_version_id", sa.String(64), sa.ForeignKey("prompt_version.id"), nullable=False
        ),
        sa.Column("actor", sa.String(256), nullable=False),
        _when("at"),
    )
    op.create_index("ix_label_event_prompt", "label_event", ["prompt_id", "id"])
    _append_only_triggers()


def _append_only_triggers() -> None:
    """The database itself refuses to change or remove a version or a label event."""
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION workbench_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                RAISE EXCEPTION 'rows of % are immutable (% refused)', TG_TABLE_NAME, TG_OP
                    USING ERRCODE = 'integrity_constraint_violation';
            END;
            $$
            """
        )
        for table in APPEND_ONLY:
            op.execute(
                f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION workbench_append_only()"
            )
        return
    for table in APPEND_ONLY:
        for action in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER {table}_no_{action.lower()} BEFORE {action} ON {table} "
                f"BEGIN SELECT RAISE(ABORT, 'rows of {table} are immutable ({action} refused)'); "
                "END"
            )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in APPEND_ONLY:
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
        op.execute("DROP FUNCTION workbench_append_only()")
    op.drop_table("label_event")
    op.drop_table("label")
    op.drop_table("prompt_version")
    op.drop_table("prompt")
