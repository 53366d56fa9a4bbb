"""Repository functions: everything the engine and the CLI ask of the prompt store.

Each function opens its own transaction on a :class:`~workbench.storage.db.Store` and
returns plain, detached values, so callers never hold a session.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TypeVar

from sqlalchemy import func
from sqlmodel import Session, col, select

from workbench.domain import (
    LATEST,
    PromptContent,
    Ref,
    check_label,
    check_name,
    check_text,
    version_id,
)
from workbench.errors import ConflictError, NotFoundError, StoreConflictError
from workbench.storage.db import Store
from workbench.storage.outbox import enqueue, enqueue_once, provisional_ids
from workbench.storage.models import (
    Approval,
    Label,
    LabelEvent,
    LabelRule,
    Prompt,
    PromptVersion,
    utcnow,
)
# Defined beside the sqlite3-only readers of the app's first screen; re-exported here.
from workbench.storage.quick import PromptInfo, VersionInfo

_COMMIT_ATTEMPTS = 8
T = TypeVar("T")


@dataclass(frozen=True)
class LabelMove:
    """One entry of a label's history (or the result of moving it)."""

    prompt: str
    label: str
    from_number: int | None
    to_number: int
    actor: str
    at: datetime
    from_id: str | None = None
    to_id: str = ""


@dataclass(frozen=True)
class CommitResult:
    """What a commit did: ``created`` is False when the content equalled the latest;
    ``described`` is True when the prompt's description or tags changed."""

    version: VersionInfo
    created: bool
    described: bool = False


@dataclass(frozen=True)
class Draft:
    """What a prompt file holds: the prompt's metadata and the content of a new version."""

    name: str
    content: PromptContent
    description: str | None = None
    tags: tuple[str, ...] | None = None


def as_utc(moment: datetime) -> datetime:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def commit(store: Store, draft: Draft, *, message: str, author: str) -> CommitResult:
    """Create the prompt or its next version; nothing when the content is unchanged.

    Numbers are gapless under concurrency: SQLite writers queue at ``BEGIN IMMEDIATE``;
    on PostgreSQL the prompt row is locked, and a clash on creating the same new prompt
    retries the whole transaction.
    """
    check_name(draft.name)
    check_text(message, "the message")
    check_text(author, "the author's name")
    return _retrying(store, lambda session: _commit_once(session, draft, message, author))


def _retrying(store: Store, work: Callable[[Session], T]) -> T:
    """Run ``work`` in a write transaction, again when a concurrent writer got there first.

    Two PostgreSQL clients creating the same row at once (a new prompt, a new label)
    cannot lock a row that does not exist yet: one of them hits the unique key, and a
    retry then finds and locks the row.
    """
    for attempt in range(_COMMIT_ATTEMPTS):
        try:
            with store.write() as session:
                return work(session)
        except StoreConflictError:
            if attempt == _COMMIT_ATTEMPTS - 1:
                raise
    raise AssertionError("unreachable")


def _commit_once(session: Session, draft: Draft, message: str, author: str) -> CommitResult:
    prompt = _prompt_for_update(session, draft.name)
    now = utcnow()
    described = False
    if prompt is None:
        prompt = Prompt(
            name=draft.name,
            description=draft.description or "",
            tags=list(draft.tags or ()),
            created_at=now,
        )
        session.add(prompt)
        session.flush()
    else:
        if draft.description is not None and draft.description != prompt.description:
            prompt.description = draft.description
            described = True
        if draft.tags is not None and list(draft.tags) != list(prompt.tags):
            prompt.tags = list(draft.tags)
            described = True
        if described:  # the registry takes the prompt's details as they are when pushed
            enqueue_once(session, "prompt", prompt.name)
    assert prompt.id is not None
    latest = _latest(session, prompt.id)
    content_hash = draft.content.content_hash()
    if latest is not None and latest.content_hash == content_hash:
        return CommitResult(_info(session, prompt, latest), created=False, described=described)
    parent_id = latest.id if latest is not None else None
    data = draft.content.canonical()
    version = PromptVersion(
        id=version_id(prompt.name, parent_id, content_hash),
        prompt_id=prompt.id,
        number=(latest.number + 1) if latest is not None else 1,
        parent_id=parent_id,
        content_hash=content_hash,
        messages=data["messages"],
        params=data["params"],
        variables=data["variables"],
        message=message,
        author=author,
        created_at=now,
    )
    session.add(version)
    session.flush()
    enqueue(session, "version", version.id)
    return CommitResult(_info(session, prompt, version), created=True)


def _prompt_for_update(session: Session, name: str) -> Prompt | None:
    # FOR UPDATE serialises committers of one prompt on PostgreSQL; SQLite ignores it
    # (the whole write transaction already holds the database's write lock).
    return session.exec(select(Prompt).where(Prompt.name == name).with_for_update()).first()


def _latest(session: Session, prompt_id: int) -> PromptVersion | None:
    return session.exec(
        select(PromptVersion)
        .where(PromptVersion.prompt_id == prompt_id)
        .order_by(col(PromptVersion.number).desc())
        .limit(1)
    ).first()


def _get_prompt(session: Session, name: str) -> Prompt:
    prompt = session.exec(select(Prompt).where(Prompt.name == name)).first()
    if prompt is None:
        raise NotFoundError(f"unknown prompt {name!r}")
    return prompt


def _labels_by_version(session: Session, prompt_id: int) -> dict[str, list[str]]:
    labels: dict[str, list[str]] = {}
    for label in session.exec(
        select(Label).where(Label.prompt_id == prompt_id).order_by(col(Label.name))
    ):
        labels.setdefault(label.version_id, []).append(label.name)
    return labels


def _info(
    session: Session,
    prompt: Prompt,
    version: PromptVersion,
    labels: dict[str, list[str]] | None = None,
    latest_number: int | None = None,
    provisional: set[str] | None = None,
) -> VersionInfo:
    assert prompt.id is not None
    if labels is None:
        labels = _labels_by_version(session, prompt.id)
    if latest_number is None:
        latest = _latest(session, prompt.id)
        latest_number = latest.number if latest else version.number
    if provisional is None:
        provisional = provisional_ids(session, [version.id])
    names = list(labels.get(version.id, []))
    if version.number == latest_number:
        names.insert(0, LATEST)
    return VersionInfo(
        prompt=prompt.name,
        number=version.number,
        id=version.id,
        parent_id=version.parent_id,
        content_hash=version.content_hash,
        content=_content(version),
        message=version.message,
        author=version.author,
        created_at=as_utc(version.created_at),
        labels=tuple(names),
        provisional=version.id in provisional,
    )


def _content(version: PromptVersion) -> PromptContent:
    return PromptContent.model_validate(
        {"messages": version.messages, "params": version.params, "variables": version.variables}
    )


def _resolve(session: Session, ref: Ref) -> tuple[Prompt, PromptVersion]:
    prompt = _get_prompt(session, ref.name)
    assert prompt.id is not None
    query = select(PromptVersion).where(PromptVersion.prompt_id == prompt.id)
    if ref.number is not None:
        version = session.exec(query.where(PromptVersion.number == ref.number)).first()
        if version is None:
            raise NotFoundError(f"{ref.name} has no version {ref.number}")
        return prompt, version
    if ref.label is not None and ref.label != LATEST:
        label = session.get(Label, (prompt.id, ref.label))
        if label is None:
            raise NotFoundError(f"{ref.name} has no label {ref.label!r}")
        version = session.get(PromptVersion, label.version_id)
        assert version is not None
        return prompt, version
    version = _latest(session, prompt.id)
    if version is None:
        raise NotFoundError(f"{ref.name} has no versions")
    return prompt, version


def resolve(store: Store, ref: Ref) -> VersionInfo:
    """The version a reference points to.

    Raises:
        NotFoundError: unknown prompt, version number or label.
    """
    with store.read() as session:
        prompt, version = _resolve(session, ref)
        return _info(session, prompt, version)


def log(store: Store, name: str) -> list[VersionInfo]:
    """Every version of a prompt, newest first, with its labels."""
    with store.read() as session:
        prompt = _get_prompt(session, name)
        assert prompt.id is not None
        labels = _labels_by_version(session, prompt.id)
        versions = session.exec(
            select(PromptVersion)
            .where(PromptVersion.prompt_id == prompt.id)
            .order_by(col(PromptVersion.number).desc())
        ).all()
        latest = versions[0].number if versions else 0
        waiting = provisional_ids(session, [v.id for v in versions])
        return [_info(session, prompt, v, labels, latest, waiting) for v in versions]


def list_prompts(store: Store, search: str | None = None) -> list[PromptInfo]:
    """All prompts by name, each with its newest version number and its labels."""
    with store.read() as session:
        query = select(Prompt).order_by(col(Prompt.name))
        if search:
            # Case-insensitive on SQLite and PostgreSQL alike; % and _ match themselves.
            query = query.where(func.lower(col(Prompt.name)).contains(search.lower(), autoescape=True))
        prompts = session.exec(query).all()
        stats = {
            row[0]: (row[1], row[2])
            for row in session.exec(
                select(
                    PromptVersion.prompt_id,
                    func.max(PromptVersion.number),
                    func.max(PromptVersion.created_at),
                ).group_by(col(PromptVersion.prompt_id))
            )
        }
        numbers = {
            v_id: number
            for v_id, number in session.exec(select(PromptVersion.id, PromptVersion.number))
        }
        labels: dict[int, dict[str, int]] = {}
        for label in session.exec(select(Label).order_by(col(Label.name))):
            labels.setdefault(label.prompt_id, {})[label.name] = numbers[label.version_id]
        result = []
        for prompt in prompts:
            assert prompt.id is not None
            latest, updated = stats.get(prompt.id, (0, prompt.created_at))
            result.append(
                PromptInfo(
                    name=prompt.name,
                    description=prompt.description,
                    tags=tuple(prompt.tags),
                    created_at=as_utc(prompt.created_at),
                    latest=latest,
                    updated_at=as_utc(updated),
                    labels=labels.get(prompt.id, {}),
                )
            )
        return result


def get_prompt(store: Store, name: str) -> PromptInfo:
    """One prompt's summary.

    Raises:
        NotFoundError: no such prompt.
    """
    for info in list_prompts(store, search=name):
        if info.name == name:
            return info
    raise NotFoundError(f"unknown prompt {name!r}")


APPROVED = "approved"
"""The label whose every move is an approval (recorded as one)."""


def set_label(store: Store, ref: Ref, label: str, *, actor: str, comment: str = "") -> LabelMove | None:
    """Point ``label`` at the version ``ref`` names; None when it already does.

    Moving ``approved`` records an approval of the version (with ``comment``). A protected
    label (``workbench registry protect``) only moves to a version someone approved.

    Raises:
        ConflictError: the label is protected and the version has no approval.
    """
    check_label(label)
    check_text(comment, "the comment")
    check_text(actor, "the actor's name")
    return _retrying(store, lambda session: _set_label_once(session, ref, label, actor, comment))


def _set_label_once(session: Session, ref: Ref, label: str, actor: str,
                    comment: str = "") -> LabelMove | None:
    prompt, version = _resolve(session, ref)
    assert prompt.id is not None
    existing = session.get(Label, (prompt.id, label), with_for_update=True)
    if existing is not None and existing.version_id == version.id:
        return None
    now = utcnow()
    if label == APPROVED:
        approval = Approval(prompt_id=prompt.id, version_id=version.id, approver=actor,
                            comment=comment, at=now)
        session.add(approval)
        session.flush()
        enqueue(session, "approval", approval.id)
    else:
        rule = session.get(LabelRule, label)
        if rule is not None and rule.requires == "approval":
            approved = session.exec(
                select(Approval.id).where(Approval.version_id == version.id).limit(1)
            ).first()
            if approved is None:
                raise ConflictError(
                    f"label {label} is protected: it may only point to an approved version, and "
                    f"{prompt.name}@{version.number} has no approval (approve it first: workbench "
                    f"prompts approve {prompt.name}@{version.number} -m COMMENT)"
                )
    from_id = existing.version_id if existing is not None else None
    if existing is None:
        session.add(
            Label(prompt_id=prompt.id, name=label, version_id=version.id, moved_by=actor, moved_at=now)
        )
    else:
        existing.version_id, existing.moved_by, existing.moved_at = version.id, actor, now
    event = LabelEvent(
        prompt_id=prompt.id,
        label=label,
        from_version_id=from_id,
        to_version_id=version.id,
        actor=actor,
        at=now,
    )
    session.add(event)
    session.flush()
    enqueue(session, "label", event.id)
    return _move(session, prompt.name, label, from_id, version.id, actor, now)


def _move(
    session: Session,
    prompt: str,
    label: str,
    from_id: str | None,
    to_id: str,
    actor: str,
    at: datetime,
) -> LabelMove:
    def number(v_id: str | None) -> int | None:
        if v_id is None:
            return None
        version = session.get(PromptVersion, v_id)
        return version.number if version is not None else None

    to_number = number(to_id)
    assert to_number is not None
    return LabelMove(prompt, label, number(from_id), to_number, actor, as_utc(at), from_id, to_id)


def label_history(store: Store, name: str, label: str | None = None) -> list[LabelMove]:
    """Every label move of a prompt, oldest first."""
    with store.read() as session:
        prompt = _get_prompt(session, name)
        query = select(LabelEvent).where(LabelEvent.prompt_id == prompt.id)
        if label is not None:
            query = query.where(LabelEvent.label == label)
        events = session.exec(query.order_by(col(LabelEvent.id))).all()
        return [
            _move(session, name, e.label, e.from_version_id, e.to_version_id, e.actor, e.at)
            for e in events
        ]


def prompt_names(store: Store) -> list[str]:
    """Every prompt's name, sorted."""
    with store.read() as session:
        return list(session.exec(select(Prompt.name).order_by(col(Prompt.name))).all())


