"""Repository functions for rubrics (versioned like prompts), scores and judgements."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select

from workbench.errors import NotFoundError, ValidationError
from workbench.rubrics import Rubric
from workbench.storage.db import Store, chunks
from workbench.storage.outbox import enqueue
from workbench.storage.models import Judgement, RubricVersion, Score, utcnow
from workbench.storage.repo import as_utc

@dataclass(frozen=True)
class RubricInfo:
    """A stored rubric version."""

    id: str
    name: str
    number: int
    rubric: Rubric
    message: str
    author: str
    created_at: datetime

    @property
    def ref(self) -> str:
        return f"{self.name}@{self.number}"


def _info(row: RubricVersion) -> RubricInfo:
    return RubricInfo(row.id, row.name, row.number, Rubric.model_validate(row.content),
                      row.message, row.author, as_utc(row.created_at))


def commit_rubric(store: Store, rubric: Rubric, *, message: str, author: str) -> tuple[RubricInfo, bool]:
    """Store a rubric's next version; returns it and whether it is new (the same content
    as the latest version is not stored twice)."""
    digest = rubric.content_hash()
    with store.write() as session:
        latest = session.exec(
            select(RubricVersion).where(col(RubricVersion.name) == rubric.name)
            .order_by(col(RubricVersion.number).desc()).limit(1)
        ).first()
        if latest is not None and latest.content_hash == digest:
            return _info(latest), False
        parent = latest.id if latest else None
        row = RubricVersion(
            id=hashlib.sha256(f"{parent or 'rubric:' + rubric.name}:{digest}".encode()).hexdigest(),
            name=rubric.name,
            number=(latest.number + 1) if latest else 1,
            parent_id=parent,
            content=rubric.content(),
            content_hash=digest,
            message=message,
            author=author,
            created_at=utcnow(),
        )
        session.add(row)
        session.flush()
        enqueue(session, "rubric", row.id)
        return _info(row), True


def resolve_rubric(store: Store, ref: str) -> RubricInfo:
    """``NAME`` (the latest) or ``NAME@N``.

    Raises:
        NotFoundError: no such rubric or version.
    """
    name, _, number = ref.partition("@")
    if number and not number.isdigit():
        raise ValidationError(f"invalid rubric reference {ref!r}: NAME or NAME@N")
    with store.read() as session:
        query = select(RubricVersion).where(col(RubricVersion.name) == name)
        if number:
            query = query.where(col(RubricVersion.number) == int(number))
        row = session.exec(query.order_by(col(RubricVersion.number).desc()).limit(1)).first()
        if row is None:
            raise NotFoundError(f"unknown rubric {ref!r}")
        return _info(row)


def list_rubrics(store: Store) -> list[RubricInfo]:
    """The latest version of every rubric, by name."""
    with store.read() as session:
        newest = (
            select(RubricVersion.name, func.max(RubricVersion.number).label("n"))
            .group_by(RubricVersion.name).subquery()
        )
        rows = session.exec(
            select(RubricVersion).join(
                newest,
                (col(RubricVersion.name) == newest.c.name) & (col(RubricVersion.number) == newest.c.n),
            ).order_by(col(RubricVersion.name))
        ).all()
        return [_info(r) for r in rows]


def set_score(
    store: Store, run_id: str, rubric_version_id: str, criterion: str, reviewer: str,
    value: int | None, note: str = "",
) -> None:
    """A reviewer's score (and note) of a run on a criterion; replaces their earlier one."""
    with store.write() as session:
        row = session.exec(
            select(Score).where(
                col(Score.run_id) == run_id, col(Score.rubric_version_id) == rubric_version_id,
                col(Score.criterion) == criterion, col(Score.reviewer) == reviewer,
            ).with_for_update()
        ).first()
        if row is None:
            row = Score(run_id=run_id, rubric_version_id=rubric_version_id, criterion=criterion,
                        reviewer=reviewer)
        row.value, row.note, row.updated_at = value, note, utcnow()
        session.add(row)


def scores_for(store: Store, run_ids: Iterable[str], rubric_version_id: str) -> list[Score]:
    """Every reviewer's scores of these runs with this rubric version."""
    wanted = sorted(set(run_ids))
    found: list[Score] = []
    with store.read() as session:
        for part in chunks(wanted):
            found += session.exec(
                select(Score).where(
                    col(Score.run_id).in_(part),
                    col(Score.rubric_version_id) == rubric_version_id,
                )
            ).all()
    return found


def record_judgement(store: Store, **values: Any) -> None:
    """Store a judge's verdict (``run_id``, ``judge_run_id``, ``rubric_version_id``,
    ``judge_model``, ``scores`` or ``error`` with ``raw``, ``reason``)."""
    with store.write() as session:
        session.add(Judgement(created_at=utcnow(), **values))


def judgements_for(
    store: Store, run_ids: Sequence[str], *, rubric_version_id: str | None = None,
    judge_model: str | None = None,
) -> dict[str, Judgement]:
    """The latest judgement of each run (by this rubric version and judge model, when
    given)."""
    wanted = sorted(set(run_ids))
    found: dict[str, Judgement] = {}
    with store.read() as session:
        for part in chunks(wanted):
            query = select(Judgement).where(col(Judgement.run_id).in_(part))
            if rubric_version_id is not None:
                query = query.where(col(Judgement.rubric_version_id) == rubric_version_id)
            if judge_model is not None:
                query = query.where(col(Judgement.judge_model) == judge_model)
            for row in session.exec(query.order_by(col(Judgement.created_at), col(Judgement.id))):
                found[row.run_id] = row
    return found
