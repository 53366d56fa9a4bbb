"""Repository functions for datasets of test cases."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func
from sqlmodel import col, select

from workbench.domain import check_name
from workbench.errors import ConflictError, NotFoundError
from workbench.storage.db import Store
from workbench.storage.outbox import enqueue_once
from workbench.storage.models import Dataset, DatasetCase, utcnow
from workbench.storage.repo import as_utc


@dataclass(frozen=True)
class Case:
    """One test case."""

    vars: dict[str, Any]
    expected: Any = None
    metadata: dict[str, Any] | None = None


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's summary, and its cases when asked for."""

    name: str
    description: str
    source: str
    created_at: datetime
    updated_at: datetime
    size: int
    cases: tuple[Case, ...] = ()


def save_dataset(
    store: Store,
    name: str,
    cases: Sequence[Case],
    *,
    source: str = "",
    description: str = "",
    replace: bool = False,
) -> DatasetInfo:
    """Store a dataset; with ``replace`` its cases replace those of an existing one.

    Raises:
        ConflictError: the dataset exists and ``replace`` is False.
    """
    check_name(name)
    now = utcnow()
    with store.write() as session:
        dataset = session.exec(select(Dataset).where(Dataset.name == name)).first()
        if dataset is not None and not replace:
            raise ConflictError(f"dataset {name!r} exists; use --replace to replace its cases")
        if dataset is None:
            dataset = Dataset(name=name, created_at=now, updated_at=now)
            session.add(dataset)
        dataset.description, dataset.source, dataset.updated_at = description, source, now
        session.flush()
        assert dataset.id is not None
        session.execute(delete(DatasetCase).where(col(DatasetCase.dataset_id) == dataset.id))
        for position, case in enumerate(cases):
            session.add(
                DatasetCase(
                    dataset_id=dataset.id,
                    position=position,
                    vars=case.vars,
                    expected=case.expected,
                    meta=case.metadata or {},
                )
            )
        session.flush()
        enqueue_once(session, "dataset", name)
        return _info(dataset, len(cases), tuple(cases))


def _info(dataset: Dataset, size: int, cases: tuple[Case, ...] = ()) -> DatasetInfo:
    return DatasetInfo(
        name=dataset.name,
        description=dataset.description,
        source=dataset.source,
        created_at=as_utc(dataset.created_at),
        updated_at=as_utc(dataset.updated_at),
        size=size,
        cases=cases,
    )


def list_datasets(store: Store) -> list[DatasetInfo]:
    """All datasets by name with their sizes."""
    with store.read() as session:
        sizes = dict(
            session.exec(
                select(DatasetCase.dataset_id, func.count()).group_by(
                    col(DatasetCase.dataset_id)
                )
            ).all()
        )
        return [
            _info(d, sizes.get(d.id, 0))
            for d in session.exec(select(Dataset).order_by(col(Dataset.name)))
        ]


def get_dataset(store: Store, name: str) -> DatasetInfo:
    """A dataset with its cases in order.

    Raises:
        NotFoundError: no such dataset.
    """
    with store.read() as session:
        dataset = session.exec(select(Dataset).where(Dataset.name == name)).first()
        if dataset is None:
            raise NotFoundError(f"unknown dataset {name!r}")
        rows = session.exec(
            select(DatasetCase)
            .where(DatasetCase.dataset_id == dataset.id)
            .order_by(col(DatasetCase.position))
        ).all()
        cases = tuple(Case(r.vars, r.expected, r.meta) for r in rows)
        return _info(dataset, len(cases), cases)
