"""Read-only look-ups with the standard library's sqlite3, for the app's first screen.

Opening the store imports SQLAlchemy and SQLModel (about half a second); the prompt list
does not need them when the store is a SQLite file already at the current revision.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from workbench.storage.migrations import HEAD_REVISION


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


def _when(value: str) -> datetime:
    moment = datetime.fromisoformat(value)
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def list_prompts_quick(url: str, search: str | None = None) -> list[PromptInfo] | None:
    """What ``repo.list_prompts`` returns, or None where only the full store can tell."""
    if not url.startswith("sqlite:///") or "?" in url:
        return None
    path = Path(url.removeprefix("sqlite:///")).expanduser().resolve()
    if not path.is_file():
        return None
    try:
        con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return None
    try:
        row = con.execute("SELECT version_num FROM alembic_version").fetchone()
        if not row or row[0] != HEAD_REVISION:
            return None
        # Case-insensitive, as repo.list_prompts is on every backend.
        where, args = ("WHERE instr(lower(p.name), ?) > 0", (search.lower(),)) if search else ("", ())
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
    finally:
        con.close()
    return [
        PromptInfo(name=name, description=description, tags=tuple(json.loads(tags or "[]")),
                   created_at=_when(created), latest=latest or 0,
                   updated_at=_when(updated or created), labels=labels.get(pid, {}))
        for pid, name, description, tags, created, latest, updated in prompts
    ]
