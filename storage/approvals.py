"""Approvals, protected labels and the audit log.

Approving a version records who approved it, when and why (append-only: the database
refuses to change or delete an approval) and moves the ``approved`` label to it; moving
``approved`` any other way is an approval too (see ``repo.set_label``). A protected label
may only point to a version that has an approval. The audit log is every approval and
every label move, oldest first, read from the two append-only tables.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select

from workbench.domain import Ref, check_label, check_text
from workbench.errors import NotFoundError, ValidationError
from workbench.storage.db import Store
from workbench.storage.outbox import REFUSED, enqueue
from workbench.storage.models import (
    Approval,
    LabelEvent,
    LabelRule,
    Outbox,
    Prompt,
    PromptVersion,
    utcnow,
)
from workbench.storage.repo import APPROVED, _resolve, _retrying, _set_label_once, as_utc

RULES = {"approval": "may only point to a version someone approved"}


@dataclass(frozen=True)
class ApprovalInfo:
    prompt: str
    number: int
    version_id: str
    approver: str
    comment: str
    at: datetime


@dataclass(frozen=True)
class AuditEntry:
    """One line of the audit log: an approval, or a label move (``from`` None: created)."""

    kind: str
    """``approval``, ``label``, or ``refused``: a label move made here that the registry
    refused (a conflict settled otherwise); it never took effect there."""
    prompt: str
    label: str
    from_number: int | None
    to_number: int
    who: str
    at: datetime
    comment: str = ""


def approve(store: Store, ref: Ref, *, actor: str, comment: str) -> ApprovalInfo:
    """Record an approval of the version ``ref`` names and point ``approved`` at it (one
    transaction). Approving a version already approved records another approval."""
    if not comment.strip():
        raise ValidationError("an approval needs a comment (-m): say why")
    check_text(comment, "the comment")
    check_text(actor, "the approver's name")

    def work(session) -> ApprovalInfo:  # type: ignore[no-untyped-def]
        prompt, version = _resolve(session, ref)
        assert prompt.id is not None
        moved = _set_label_once(session, ref, APPROVED, actor, comment)
        if moved is None:  # already there: the label stays, the approval is recorded
            row = Approval(prompt_id=prompt.id, version_id=version.id, approver=actor,
                           comment=comment, at=utcnow())
            session.add(row)
            session.flush()
            enqueue(session, "approval", row.id)
        latest = session.exec(
            select(Approval).where(Approval.version_id == version.id)
            .order_by(col(Approval.id).desc()).limit(1)
        ).one()
        return ApprovalInfo(prompt.name, version.number, version.id, latest.approver,
                            latest.comment, as_utc(latest.at))

    return _retrying(store, work)


def protect(store: Store, label: str, *, actor: str, requires: str = "approval") -> None:
    """Make ``label`` protected: from now on it only moves to approved versions."""
    check_label(label)
    if label == APPROVED:
        raise ValidationError("approved is moved by approving; protect another label")
    if requires not in RULES:
        raise ValidationError(f"unknown rule {requires!r} (known: {', '.join(RULES)})")

    def work(session) -> None:  # type: ignore[no-untyped-def]
        rule = session.get(LabelRule, label, with_for_update=True)
        if rule is None:
            session.add(LabelRule(label=label, requires=requires, set_by=actor, set_at=utcnow()))
        else:
            rule.requires, rule.set_by, rule.set_at = requires, actor, utcnow()

    _retrying(store, work)


def unprotect(store: Store, label: str) -> bool:
    """Lift the protection of ``label``; False when it had none."""
    def work(session) -> bool:  # type: ignore[no-untyped-def]
        rule = session.get(LabelRule, label)
        if rule is None:
            return False
        session.delete(rule)
        return True

    return _retrying(store, work)


def protected(store: Store) -> dict[str, str]:
    """Protected labels and what each requires."""
    with store.read() as session:
        return {r.label: r.requires for r in session.exec(select(LabelRule).order_by(col(LabelRule.label)))}


def audit(store: Store, name: str | None = None) -> list[AuditEntry]:
    """Every approval and label move (of one prompt, or all), oldest first."""
    with store.read() as session:
        prompts = {p.id: p.name for p in session.exec(select(Prompt))}
        if name is not None and name not in prompts.values():
            raise NotFoundError(f"unknown prompt {name!r}")
        numbers = {v_id: n for v_id, n in session.exec(select(PromptVersion.id, PromptVersion.number))}
        wanted = [pid for pid, pname in prompts.items() if name is None or pname == name]
        entries = [
            AuditEntry("approval", prompts[a.prompt_id], APPROVED, None, numbers[a.version_id],
                       a.approver, as_utc(a.at), a.comment)
            for a in session.exec(select(Approval).where(col(Approval.prompt_id).in_(wanted)))
        ]
        refused = {int(key) for key in session.exec(select(Outbox.key).where(
            Outbox.kind == "label", Outbox.state == REFUSED))}
        entries += [
            AuditEntry("refused" if e.id in refused else "label", prompts[e.prompt_id], e.label,
                       numbers.get(e.from_version_id) if e.from_version_id else None,
                       numbers[e.to_version_id], e.actor, as_utc(e.at))
            for e in session.exec(select(LabelEvent).where(col(LabelEvent.prompt_id).in_(wanted)))
        ]
    # Approvals first at the same moment: an approval is what moved the label.
    return sorted(entries, key=lambda e: (e.at, e.kind != "approval"))


def approvals_of(store: Store, version_id: str) -> list[ApprovalInfo]:
    """The approvals of one version, oldest first."""
    with store.read() as session:
        version = session.get(PromptVersion, version_id)
        if version is None:
            raise NotFoundError(f"no version {version_id}")
        prompt = session.get(Prompt, version.prompt_id)
        assert prompt is not None
        return [
            ApprovalInfo(prompt.name, version.number, version.id, a.approver, a.comment, as_utc(a.at))
            for a in session.exec(select(Approval).where(Approval.version_id == version_id)
                                  .order_by(col(Approval.id)))
        ]
