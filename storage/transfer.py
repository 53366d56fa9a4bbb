"""Whole prompt histories in and out of a store: what ``prompts export`` writes and
``prompts import`` reads (:mod:`workbench.exchange` turns them into files), with every
version's original identity, the labels, their history and the approvals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session, col, select

from workbench.domain import PromptContent
from workbench.errors import ConflictError
from workbench.storage.db import Store
from workbench.storage.models import (
    Approval,
    Label,
    LabelEvent,
    LabelRule,
    Prompt,
    PromptVersion,
)
from workbench.storage.outbox import enqueue
from workbench.storage.repo import (
    APPROVED,
    LabelMove,
    _content,
    _get_prompt,
    _prompt_for_update,
    as_utc,
    label_history,
)


@dataclass(frozen=True)
class ImportedVersion:
    """A version as read from an export file, with its original identity."""

    id: str
    number: int
    parent_id: str | None
    content: PromptContent
    message: str
    author: str
    created_at: datetime


@dataclass(frozen=True)
class ImportedApproval:
    """An approval as read from an export file."""

    version_id: str
    approver: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class ImportedPrompt:
    """A whole prompt as read from an export file."""

    name: str
    description: str
    tags: tuple[str, ...]
    created_at: datetime
    versions: Sequence[ImportedVersion]
    labels: dict[str, str]
    label_history: Sequence[LabelMove]
    approvals: Sequence[ImportedApproval] = ()


def import_prompts(
    store: Store, prompts: Sequence[ImportedPrompt]
) -> list[tuple[str, int, int]]:
    """Add prompts with their histories exactly as exported, all or nothing.

    Returns (name, versions added, label moves added) per prompt. Versions already
    present (same id) are skipped; a version whose number is taken by a different
    version is a conflict: the histories have diverged.
    """
    with store.write() as session:
        return [(p.name, *_import_one(session, p)) for p in prompts]


def _import_one(session: Session, data: ImportedPrompt) -> tuple[int, int]:
    prompt = _prompt_for_update(session, data.name)
    if prompt is None:
        prompt = Prompt(
            name=data.name,
            description=data.description,
            tags=list(data.tags),
            created_at=as_utc(data.created_at),
        )
        session.add(prompt)
        session.flush()
    assert prompt.id is not None
    existing = {
        v.number: v.id
        for v in session.exec(
            select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
        )
    }
    added = 0
    for version in sorted(data.versions, key=lambda v: v.number):
        if existing.get(version.number) == version.id:
            continue
        if version.number in existing:
            raise ConflictError(
                f"{data.name}@{version.number} differs from the imported version "
                f"{version.id[:12]}: the histories have diverged"
            )
        content = version.content.canonical()
        session.add(
            PromptVersion(
                id=version.id,
                prompt_id=prompt.id,
                number=version.number,
                parent_id=version.parent_id,
                content_hash=version.content.content_hash(),
                messages=content["messages"],
                params=content["params"],
                variables=content["variables"],
                message=version.message,
                author=version.author,
                created_at=version.created_at,
            )
        )
        session.flush()
        enqueue(session, "version", version.id)
        added += 1
    _import_approvals(session, prompt.id, data)  # first: they decide where guarded labels go
    events = _import_label_history(session, prompt.id, data)
    return added, events


def _import_approvals(session: Session, prompt_id: int, data: ImportedPrompt) -> None:
    known = {
        (a.version_id, a.approver, as_utc(a.at))
        for a in session.exec(select(Approval).where(Approval.prompt_id == prompt_id))
    }
    for approval in data.approvals:
        if (approval.version_id, approval.approver, as_utc(approval.at)) not in known:
            row = Approval(prompt_id=prompt_id, version_id=approval.version_id,
                           approver=approval.approver, comment=approval.comment,
                           at=as_utc(approval.at))
            session.add(row)
            session.flush()
            enqueue(session, "approval", row.id)


def _import_label_history(session: Session, prompt_id: int, data: ImportedPrompt) -> int:
    """Add the moves this store lacks; each label then points where its newest move says.

    An older export never moves a label back: a label moved here after the export keeps
    its place, because its newest move is the local one.
    """
    known = {
        (e.label, e.to_version_id, as_utc(e.at))
        for e in session.exec(select(LabelEvent).where(LabelEvent.prompt_id == prompt_id))
    }
    added = 0
    for move in data.label_history:
        if (move.label, move.to_id, as_utc(move.at)) in known:
            continue
        event = LabelEvent(
            prompt_id=prompt_id,
            label=move.label,
            from_version_id=move.from_id,
            to_version_id=move.to_id,
            actor=move.actor,
            at=as_utc(move.at),
        )
        session.add(event)
        session.flush()
        enqueue(session, "label", event.id)
        added += 1
    newest: dict[str, LabelEvent] = {}
    for event in session.exec(
        select(LabelEvent)
        .where(LabelEvent.prompt_id == prompt_id)
        .order_by(col(LabelEvent.at), col(LabelEvent.id))
    ):
        newest[event.label] = event
    guarded = {APPROVED} | set(session.exec(select(LabelRule.label)).all())
    for name, event in newest.items():
        if name in guarded and session.exec(
            select(Approval.id).where(Approval.version_id == event.to_version_id).limit(1)
        ).first() is None:
            # `approved` and protected labels point only to versions approved in this
            # store: an import (which carries no approvals) never moves them elsewhere.
            continue
        label = session.get(Label, (prompt_id, name))
        if label is None:
            session.add(
                Label(
                    prompt_id=prompt_id,
                    name=name,
                    version_id=event.to_version_id,
                    moved_by=event.actor,
                    moved_at=as_utc(event.at),
                )
            )
        elif label.version_id != event.to_version_id:
            label.version_id, label.moved_by = event.to_version_id, event.actor
            label.moved_at = as_utc(event.at)
    session.flush()
    return added


def export_prompt(store: Store, name: str) -> ImportedPrompt:
    """A prompt with all its versions, labels and label history."""
    with store.read() as session:
        prompt = _get_prompt(session, name)
        assert prompt.id is not None
        versions = session.exec(
            select(PromptVersion)
            .where(PromptVersion.prompt_id == prompt.id)
            .order_by(col(PromptVersion.number))
        ).all()
        labels = {
            label.name: label.version_id
            for label in session.exec(
                select(Label).where(Label.prompt_id == prompt.id).order_by(col(Label.name))
            )
        }
        approvals = [
            ImportedApproval(a.version_id, a.approver, a.comment, as_utc(a.at))
            for a in session.exec(
                select(Approval).where(Approval.prompt_id == prompt.id).order_by(col(Approval.id))
            )
        ]
    return ImportedPrompt(
        name=prompt.name,
        description=prompt.description,
        tags=tuple(prompt.tags),
        created_at=as_utc(prompt.created_at),
        versions=[
            ImportedVersion(
                id=v.id,
                number=v.number,
                parent_id=v.parent_id,
                content=_content(v),
                message=v.message,
                author=v.author,
                created_at=as_utc(v.created_at),
            )
            for v in versions
        ],
        labels=labels,
        label_history=label_history(store, name),
        approvals=approvals,
    )
