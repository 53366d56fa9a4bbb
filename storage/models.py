"""The store's tables. Every schema change goes through a migration in ``migrations/``.

Versions and label events are append-only: triggers in the database reject any
UPDATE or DELETE of them (see the first migration), on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlmodel import Field, SQLModel

# JSON holds the data exactly as given; the hash is computed from canonical JSON anyway.


def utcnow() -> datetime:
    """The current time, timezone-aware, in UTC."""
    return datetime.now(UTC)


def _json(nullable: bool = False) -> Any:
    return Field(sa_column=Column(JSON, nullable=nullable))


def _when() -> Any:
    return Field(sa_column=Column(DateTime(timezone=True), nullable=False))


class Prompt(SQLModel, table=True):
    """A named prompt; its content lives in its versions."""

    __tablename__ = "prompt"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(128), nullable=False, unique=True))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    tags: list[str] = _json()
    created_at: datetime = _when()


class PromptVersion(SQLModel, table=True):
    """One immutable version of a prompt."""

    __tablename__ = "prompt_version"
    __table_args__ = (UniqueConstraint("prompt_id", "number", name="uq_prompt_version_number"),)

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    prompt_id: int = Field(sa_column=Column(ForeignKey("prompt.id"), nullable=False))
    number: int
    parent_id: str | None = Field(
        default=None, sa_column=Column(ForeignKey("prompt_version.id"), nullable=True)
    )
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    messages: list[dict[str, Any]] = _json()
    params: dict[str, Any] = _json()
    variables: dict[str, Any] = _json()
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str = Field(sa_column=Column(String(256), nullable=False))
    created_at: datetime = _when()


class Label(SQLModel, table=True):
    """A movable pointer from a name (``approved``, ``production``) to a version."""

    __tablename__ = "label"

    prompt_id: int = Field(sa_column=Column(ForeignKey("prompt.id"), primary_key=True))
    name: str = Field(sa_column=Column(String(64), primary_key=True))
    version_id: str = Field(sa_column=Column(ForeignKey("prompt_version.id"), nullable=False))
    moved_by: str = Field(sa_column=Column(String(256), nullable=False))
    moved_at: datetime = _when()


class LabelEvent(SQLModel, table=True):
    """One move of a label, kept forever."""

    __tablename__ = "label_event"
    __table_args__ = (Index("ix_label_event_prompt", "prompt_id", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(sa_column=Column(ForeignKey("prompt.id"), nullable=False))
    label: str = Field(sa_column=Column(String(64), nullable=False))
    from_version_id: str | None = Field(
        default=None, sa_column=Column(ForeignKey("prompt_version.id"), nullable=True)
    )
    to_version_id: str = Field(
        sa_column=Column(ForeignKey("prompt_version.id"), nullable=False)
    )
    actor: str = Field(sa_column=Column(String(256), nullable=False))
    at: datetime = _when()


class Approval(SQLModel, table=True):
    """Someone approved a version: kept forever (the database refuses UPDATE and DELETE)."""

    __tablename__ = "approval"
    __table_args__ = (
        Index("ix_approval_prompt", "prompt_id", "id"),
        Index("ix_approval_version", "version_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    prompt_id: int = Field(sa_column=Column(ForeignKey("prompt.id"), nullable=False))
    version_id: str = Field(sa_column=Column(ForeignKey("prompt_version.id"), nullable=False))
    approver: str = Field(sa_column=Column(String(256), nullable=False))
    comment: str = Field(default="", sa_column=Column(Text, nullable=False))
    at: datetime = _when()


class LabelRule(SQLModel, table=True):
    """A protected label: it may only point to a version someone approved."""

    __tablename__ = "label_rule"

    label: str = Field(sa_column=Column(String(64), primary_key=True))
    requires: str = Field(sa_column=Column(String(32), nullable=False))
    """``approval``: the version needs one."""
    set_by: str = Field(sa_column=Column(String(256), nullable=False))
    set_at: datetime = _when()


class Dataset(SQLModel, table=True):
    """A named collection of test cases."""

    __tablename__ = "dataset"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(sa_column=Column(String(128), nullable=False, unique=True))
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    source: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = _when()
    updated_at: datetime = _when()


class DatasetCase(SQLModel, table=True):
    """One test case: variables, an optional reference answer and metadata."""

    __tablename__ = "dataset_case"
    __table_args__ = (UniqueConstraint("dataset_id", "position", name="uq_dataset_case_position"),)

    id: int | None = Field(default=None, primary_key=True)
    dataset_id: int = Field(
        sa_column=Column(ForeignKey("dataset.id", ondelete="CASCADE"), nullable=False)
    )
    position: int
    vars: dict[str, Any] = _json()
    expected: Any = Field(default=None, sa_column=Column(JSON, nullable=True))
    meta: dict[str, Any] = Field(sa_column=Column("metadata", JSON, nullable=False))


class Experiment(SQLModel, table=True):
    """One ``workbench eval`` of a suite: its cells are runs that point back to it."""

    __tablename__ = "experiment"
    __table_args__ = (Index("ix_experiment_created", "created_at"),)

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    created_at: datetime = _when()
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    status: str = Field(sa_column=Column(String(16), nullable=False))
    """``running``, ``done``, ``cancelled``, or ``interrupted`` (its process died)."""
    source: str = Field(sa_column=Column(Text, nullable=False))
    """The suite file, as given."""
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    fingerprint: str = Field(sa_column=Column(String(64), nullable=False))
    """A hash of what decides the cells: resuming a changed suite is refused."""
    cells: int = Field(sa_column=Column(Integer, nullable=False))
    owner: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))


class Run(SQLModel, table=True):
    """One model call: what was sent, what came back, and how it went.

    Written with status ``running`` when the call starts and completed when it ends;
    unknown figures stay NULL, never 0.
    """

    __tablename__ = "run"
    __table_args__ = (
        Index("ix_run_created", "created_at"),
        Index("ix_run_status", "status"),
        Index("ix_run_experiment", "experiment_id"),
        Index("ix_run_cache_key", "cache_key"),
    )

    id: str = Field(sa_column=Column(String(32), primary_key=True))
    created_at: datetime = _when()
    finished_at: datetime | None = Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=True)
    )
    status: str = Field(sa_column=Column(String(16), nullable=False))
    owner: str | None = Field(default=None, sa_column=Column(String(300), nullable=True))
    """``HOST:PID`` of the process making the call (to find runs a dead process left)."""
    prompt_version_id: str | None = Field(
        default=None, sa_column=Column(ForeignKey("prompt_version.id"), nullable=True)
    )
    template: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    model: str = Field(sa_column=Column(Text, nullable=False))
    backend: str = Field(sa_column=Column(String(64), nullable=False))
    model_info: dict[str, Any] = _json()
    params: dict[str, Any] = _json()
    variables: dict[str, Any] = _json()
    messages: list[dict[str, Any]] = _json()
    output: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    ttft_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    e2e_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    tpot_ms: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    tokens_per_s: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    input_tokens: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    output_tokens: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    tokens_estimated: bool = Field(default=False, sa_column=Column(Boolean, nullable=False))
    cost_usd: float | None = Field(default=None, sa_column=Column(Float, nullable=True))
    cost_source: str = Field(default="unknown", sa_column=Column(Text, nullable=False))
    experiment_id: str | None = Field(
        default=None, sa_column=Column(ForeignKey("experiment.id"), nullable=True)
    )
    cell: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    """The experiment cell: ``VARIANT/MODEL/CASE/REPEAT`` indexes."""
    cache_key: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    """A hash of the model's identity, the messages and the parameters."""
    cached_from: str | None = Field(default=None, sa_column=Column(String(32), nullable=True))
    """For a cache hit: the run whose answer was reused (no model was called)."""
    retrieval: list[dict[str, Any]] | None = Field(
        default=None, sa_column=Column(JSON, nullable=True)
    )
    """What retrieval filled variables with: per variable, the query, the chunks given
    (id, distance, text, injection flags) and the exact context inserted."""


class RubricVersion(SQLModel, table=True):
    """One immutable version of a rubric (the database refuses UPDATE and DELETE)."""

    __tablename__ = "rubric_version"
    __table_args__ = (UniqueConstraint("name", "number", name="uq_rubric_version_number"),)

    id: str = Field(sa_column=Column(String(64), primary_key=True))
    """``sha256("<parent id or rubric:NAME>:<content hash>")``."""
    name: str = Field(sa_column=Column(String(200), nullable=False))
    number: int = Field(sa_column=Column(Integer, nullable=False))
    parent_id: str | None = Field(default=None, sa_column=Column(String(64), nullable=True))
    content: dict[str, Any] = _json()
    content_hash: str = Field(sa_column=Column(String(64), nullable=False))
    message: str = Field(default="", sa_column=Column(Text, nullable=False))
    author: str = Field(default="", sa_column=Column(String(200), nullable=False))
    created_at: datetime = _when()


class Score(SQLModel, table=True):
    """A person's score of one run on one criterion (their latest; changing it replaces it)."""

    __tablename__ = "score"
    __table_args__ = (
        UniqueConstraint("run_id", "rubric_version_id", "criterion", "reviewer",
                         name="uq_score_once"),
        Index("ix_score_run", "run_id"),
    )

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    run_id: str = Field(sa_column=Column(ForeignKey("run.id"), nullable=False))
    rubric_version_id: str = Field(sa_column=Column(ForeignKey("rubric_version.id"), nullable=False))
    criterion: str = Field(sa_column=Column(String(64), nullable=False))
    reviewer: str = Field(sa_column=Column(String(200), nullable=False))
    value: int | None = Field(default=None, sa_column=Column(Integer, nullable=True))
    note: str = Field(default="", sa_column=Column(Text, nullable=False))
    updated_at: datetime = _when()


class Judgement(SQLModel, table=True):
    """A judge model's verdict on one run: scores, or an error with the raw answer."""

    __tablename__ = "judgement"
    __table_args__ = (Index("ix_judgement_run", "run_id"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    run_id: str = Field(sa_column=Column(ForeignKey("run.id"), nullable=False))
    """The judged run."""
    judge_run_id: str | None = Field(default=None, sa_column=Column(ForeignKey("run.id"), nullable=True))
    """The judge's own call (its latency and cost are there)."""
    rubric_version_id: str = Field(sa_column=Column(ForeignKey("rubric_version.id"), nullable=False))
    judge_model: str = Field(sa_column=Column(Text, nullable=False))
    scores: dict[str, Any] | None = Field(default=None, sa_column=Column(JSON, nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False))
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    raw: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = _when()


class Outbox(SQLModel, table=True):
    """A local change waiting to be pushed to the registry (written in the change's own
    transaction; removed once the registry has it)."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_key", "kind", "key"),)

    id: int | None = Field(default=None, sa_column=Column(Integer, primary_key=True))
    kind: str = Field(sa_column=Column(String(16), nullable=False))
    """``version``, ``label`` (a label event), ``approval``, ``rubric`` or ``dataset``."""
    key: str = Field(sa_column=Column(String(200), nullable=False))
    """The version or rubric version id, the event's or approval's id, the dataset's name."""
    state: str = Field(default="waiting", sa_column=Column(String(16), nullable=False))
    """``waiting``; ``conflict`` (the registry refused it; ``detail`` says why); ``refused``
    (a conflict settled by keeping the registry's, or by moving the label again: kept so the
    audit log can say so and a new registry is never sent it)."""
    detail: str = Field(default="", sa_column=Column(Text, nullable=False))
    created_at: datetime = _when()


class SyncState(SQLModel, table=True):
    """What this store knows of its registry: its identity, pull cursors, this store's own
    identity when others use it as their registry."""

    __tablename__ = "sync_state"

    key: str = Field(sa_column=Column(String(200), primary_key=True))
    value: str = Field(sa_column=Column(Text, nullable=False))
