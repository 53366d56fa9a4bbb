"""Read-only look-ups with the standard library's sqlite3, for the app's first screen.

Opening the store imports SQLAlchemy and SQLModel (about half a second); the prompt list
and a prompt's versions do not need them when the store is a SQLite file already at the
current revision. Each answers exactly what its ``repo`` function answers (tested), or
None, and the caller then asks ``repo``.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from workbench.storage.migrations import HEAD_REVISION

if TYPE_CHECKING:
    from workbench.domain import PromptContent


@dataclass(frozen=True)
class PromptInfo:
    """A prompt with a summary of its versions and labels."""

    name: str
    description: str
    tags: tuple[str, ...]
    created_at: datetime
    latest: int
    updated_at: datetime
    labels: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class VersionInfo:
    """One version as callers see it."""

    prompt: str
    number: int
    id: str
    parent_id: str | None
    content_hash: str
    content: PromptContent
    message: str
    author: str
    created_at: datetime
    labels: tuple[str, ...] = ()
    provisional: bool = False
    """Made here and not yet in the registry: its number may still change when pushed."""

    @property
    def ref(self) -> str:
        """``NAME@N``."""
        return f"{self.prompt}@{self.number}"

    @property
    def shown(self) -> str:
        """The number as people see it: ``~4`` while provisional."""
        return f"~{self.number}" if self.provisional else str(self.number)


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


@contextmanager
def _reading(url: str, timeout_s: float) -> Iterator[sqlite3.Connection | None]:
    """A read-only connection to a SQLite store at the current revision, or None."""
    if not url.startswith("sqlite:///") or "?" in url:
        yield None
        return
    path = Path(url.removeprefix("sqlite:///")).expanduser().resolve()
    if not path.is_file():
        yield None
        return
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=timeout_s)
    except sqlite3.Error:
        yield None
        return
    try:
        try:
            row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        except sqlite3.Error:
            row = None
        yield con if row and row[0] == HEAD_REVISION else None
    finally:
        con.close()


def list_prompts_quick(url: str, search: str | None = None,
                       timeout_s: float = 10.0) -> list[PromptInfo] | None:
    """What ``repo.list_prompts`` returns, or None where only the full store can tell
    (or the file stayed locked ``timeout_s`` seconds)."""
    with _reading(url, timeout_s) as con:
        if con is None:
            return None
        try:
            # Case-insensitive, as repo.list_prompts is on every backend.
            where, args = (("WHERE instr(lower(p.name), ?) > 0", (search.lower(),))
                           if search else ("", ()))
            prompts = con.execute(
                "SELECT p.id, p.name, p.description, p.tags, p.created_at,"
                " max(v.number), max(v.created_at) FROM prompt p"
                f" LEFT JOIN prompt_version v ON v.prompt_id = p.id {where}"
                " GROUP BY p.id ORDER BY p.name", args).fetchall()
            labels: dict[int, dict[str, int]] = {}
            for prompt_id, name, number in con.execute(
                    "SELECT l.prompt_id, l.name, v.number FROM label l"
                    " JOIN prompt_version v ON v.id = l.version_id ORDER BY l.name"):
                labels.setdefault(prompt_id, {})[name] = number
        except sqlite3.Error:
            return None
    return [
        PromptInfo(name=name, description=description, tags=tuple(json.loads(tags or "[]")),
                   created_at=_when(created), latest=latest or 0,
                   updated_at=_when(updated or created), labels=labels.get(pid, {}))
        for pid, name, description, tags, created, latest, updated in prompts
    ]


def log_quick(url: str, name: str, timeout_s: float = 10.0) -> list[VersionInfo] | None:
    """What ``repo.log`` returns (every version, newest first, with its labels), or None
    where only the full store can tell (an unknown prompt among those cases)."""
    with _reading(url, timeout_s) as con:
        if con is None:
            return None
        try:
            found = con.execute("SELECT id FROM prompt WHERE name = ?", (name,)).fetchone()
            if found is None:
                return None  # the store's own error says it best
            labels: dict[str, list[str]] = {}
            for label, version in con.execute(
                    "SELECT name, version_id FROM label WHERE prompt_id = ? ORDER BY name",
                    found):
                labels.setdefault(version, []).append(label)
            rows = con.execute(
                "SELECT number, id, parent_id, content_hash, messages, params, variables,"
                " message, author, created_at FROM prompt_version WHERE prompt_id = ?"
                " ORDER BY number DESC", found).fetchall()
            provisional: set[str] = set()
            if con.execute("SELECT 1 FROM sync_state WHERE key = 'registry_id'").fetchone():
                provisional = {key for (key,) in con.execute(
                    "SELECT o.key FROM outbox o JOIN prompt_version v ON v.id = o.key"
                    " WHERE o.kind = 'version' AND v.prompt_id = ?", found)}
        except sqlite3.Error:
            return None
    from workbench.domain import LATEST, PromptContent

    latest = rows[0][0] if rows else 0
    return [
        VersionInfo(
            prompt=name, number=number, id=vid, parent_id=parent, content_hash=content_hash,
            content=PromptContent.model_validate({
                "messages": json.loads(messages), "params": json.loads(params),
                "variables": json.loads(variables)}),
            message=message, author=author, created_at=_when(created),
            labels=((LATEST,) if number == latest else ()) + tuple(labels.get(vid, [])),
            provisional=vid in provisional,
        )
        for (number, vid, parent, content_hash, messages, params, variables, message, author,
             created) in rows
    ]
