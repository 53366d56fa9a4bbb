"""Writing results for people and for scripts.

Text that came from users or models goes through :func:`inert` before it reaches a
terminal: control characters (ANSI and OSC escape sequences among them) are shown
as visible escapes instead of being obeyed.
"""

from __future__ import annotations

import json
import re
import sys
from dataclasses import asdict, is_dataclass
from datetime import datetime
from typing import Any

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def inert(text: str) -> str:
    """Text with every control character except newline and tab made visible."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


def to_terminal(text: str) -> str:
    """:func:`inert` when stdout is a terminal; exact text when piped to a program."""
    return inert(text) if sys.stdout.isatty() else text


def when(moment: datetime) -> str:
    """A timestamp for people: UTC to the second."""
    return moment.strftime("%Y-%m-%d %H:%M:%SZ")


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if hasattr(value, "model_dump"):
        return value.model_dump()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def compact_json(value: Any) -> str:
    """A small value (metadata, a filter) on one line, keys sorted; empty for nothing."""
    return json.dumps(value, ensure_ascii=False, sort_keys=True) if value else ""


def as_json(data: Any) -> str:
    """Indented JSON for ``--json`` output (unicode kept, datetimes in ISO 8601)."""
    return json.dumps(data, indent=2, ensure_ascii=False, default=_default)


def table(rows: list[list[str]], headers: list[str]) -> str:
    """A plain aligned table; cells are made inert."""
    cells = [headers, *[[inert(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(lines)
