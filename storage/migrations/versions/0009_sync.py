"""Sync with the team's registry: the outbox of local changes waiting to be pushed, the
sync state (the registry's identity, pull cursors), and provisional numbers.

A version's (or rubric version's) number may change only while it waits in the outbox:
that is what "provisional" means. Once the registry has it, the number is final, and the
database refuses to change it, as it refuses any other change to a version.

Revision ID: 0009_sync
Revises: 0008_approvals
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009_sync"
down_revision = "0008_approvals"
branch_labels = None
depends_on = None

# table -> (outbox kind, every column but number)
RENUMBERABLE = {
    "prompt_version": ("version", "id, prompt_id, parent_id, content_hash, messages, params, "
                                  "variables, message, author, created_at"),
    "rubric_version": ("rubric", "id, name, parent_id, content, content_hash, message, author, "
                                 "created_at"),
}


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_outbox_key", "outbox", ["kind", "key"])
    op.create_table(
        "sync_state",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("value", sa.Text(), nullable=False),
    )
    # What exists already has never been pushed: it all waits, parents before children,
    # approvals before the label moves they allow.
    for kind, key, when, table, order in (
        ("version", "id", "created_at", "prompt_version", "prompt_id, number"),
        ("rubric", "id", "created_at", "rubric_version", "name, number"),
        ("dataset", "name", "updated_at", "dataset", "name"),
        ("approval", "CAST(id AS VARCHAR(64))", "at", "approval", "id"),
        ("label", "CAST(id AS VARCHAR(64))", "at", "label_event", "id"),
    ):
        op.execute(
            f"INSERT INTO outbox (kind, key, state, detail, created_at) "
            f"SELECT '{kind}', {key}, 'waiting', '', {when} FROM {table} ORDER BY {order}"
        )
    _renumber_triggers()


def _renumber_triggers() -> None:
    if op.get_context().dialect.name == "postgresql":
        op.execute(
            """
            CREATE FUNCTION workbench_renumber_only() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (to_jsonb(NEW) - 'number') IS DISTINCT FROM (to_jsonb(OLD) - 'number') THEN
                    RAISE EXCEPTION 'rows of % are immutable (UPDATE refused)', TG_TABLE_NAME
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                IF NOT EXISTS (SELECT 1 FROM outbox WHERE kind = TG_ARGV[0] AND key = OLD.id) THEN
                    RAISE EXCEPTION 'rows of %: the number of % is final (UPDATE refused)',
                        TG_TABLE_NAME, OLD.id USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                RETURN NEW;
            END;
            $$
            """
        )
        for table, (kind, _columns) in RENUMBERABLE.items():
            op.execute(f"DROP TRIGGER {table}_append_only ON {table}")
            op.execute(f"CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION workbench_append_only()")
            op.execute(f"CREATE TRIGGER {table}_renumber_only BEFORE UPDATE ON {table} "
                       f"FOR EACH ROW EXECUTE FUNCTION workbench_renumber_only('{kind}')")
        return
    for table, (kind, columns) in RENUMBERABLE.items():
        op.execute(f"DROP TRIGGER {table}_no_update")
        op.execute(
            f"CREATE TRIGGER {table}_no_update BEFORE UPDATE OF {columns} ON {table} "
            f"BEGIN SELECT RAISE(ABORT, 'rows of {table} are immutable (UPDATE refused)'); END"
        )
        op.execute(
            f"CREATE TRIGGER {table}_final_number BEFORE UPDATE OF number ON {table} "
            f"WHEN NOT EXISTS (SELECT 1 FROM outbox WHERE kind = '{kind}' AND key = OLD.id) "
            f"BEGIN SELECT RAISE(ABORT, 'rows of {table}: a number the registry gave is final "
            "(UPDATE refused)'); END"
        )


def downgrade() -> None:
    if op.get_context().dialect.name == "postgresql":
        for table in RENUMBERABLE:
            op.execute(f"DROP TRIGGER {table}_renumber_only ON {table}")
            op.execute(f"DROP TRIGGER {table}_no_delete ON {table}")
            op.execute(f"CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table} "
                       "FOR EACH ROW EXECUTE FUNCTION workbench_append_only()")
        op.execute("DROP FUNCTION workbench_renumber_only()")
    else:
        for table in RENUMBERABLE:
            op.execute(f"DROP TRIGGER {table}_final_number")
            op.execute(f"DROP TRIGGER {table}_no_update")
            op.execute(
                f"CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} BEGIN SELECT "
                f"RAISE(ABORT, 'rows of {table} are immutable (UPDATE refused)'); END"
            )
    op.drop_table("sync_state")
    op.drop_index("ix_outbox_key", "outbox")
    op.drop_table("outbox")
