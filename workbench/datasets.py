"""Reading test cases from CSV and JSONL files.

CSV follows promptfoo's conventions: every column is a variable, except
``__expected`` (the reference answer; ``__expected1``, ``__expected2``... make a
list), ``__metadata:KEY`` (metadata) and ``__description`` (kept as metadata).
JSONL lines are ``{"vars": {...}, "expected": ..., "metadata": {...}}``.
"""

from __future__ import annotations

import csv
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from workbench.domain import check_plain_data
from workbench.errors import ValidationError
from workbench.storage.datasets import Case

_EXPECTED_N = re.compile(r"^__expected(\d+)$")


def read_cases(path: Path) -> list[Case]:
    """Read a ``.csv`` or ``.jsonl`` file of test cases.

    Raises:
        ValidationError: unknown extension, unreadable file, or a bad row (with its line).
    """
    return [case for _, case in read_cases_at(path)]


def read_cases_at(path: Path) -> list[tuple[int, Case]]:
    """:func:`read_cases`, each case with the line it starts on (1-based, as an editor
    counts: in CSV the header counts, and a quoted field spanning lines counts each).

    Raises:
        ValidationError: as :func:`read_cases`.
    """
    suffix = path.suffix.lower()
    if suffix not in (".csv", ".jsonl"):
        raise ValidationError(f"{path}: dataset files are .csv or .jsonl, not {suffix or '?'}")
    try:
        text = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    if "\x00" in text:
        raise ValidationError(f"{path}: contains a NUL byte, which cannot be stored")
    cases = _read_csv(text, str(path)) if suffix == ".csv" else _read_jsonl(text, str(path))
    if not cases:
        raise ValidationError(f"{path}: no test cases")
    for line, case in cases:
        try:
            check_plain_data([case.vars, case.expected, case.metadata], "a value")
        except ValueError as exc:
            raise ValidationError(f"{path}:{line}: {exc}") from None
    return cases


def csv_rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """Each CSV record with the line it starts on (the header first; blank lines skipped;
    a quoted field may span lines).

    Raises:
        ValidationError: not CSV, with the file and line.
    """
    # Long documents in a cell are normal for prompts; the default limit is 128 KiB.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    # Split on "\n" only (the file was read with universal newlines): str.splitlines would
    # also split at U+2028 and friends, which are text inside a field.
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    reader = csv.reader(line + "\n" for line in lines)
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationError(f"{source}:{start}: invalid CSV: {exc}") from None
        if row:  # blank lines
            yield start, row


def _read_csv(text: str, source: str) -> list[tuple[int, Case]]:
    records = csv_rows(text, source)
    columns = next(records, (1, []))[1]
    if not columns:
        raise ValidationError(f"{source}: no header row")
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValidationError(f"{source}:1: duplicate columns {', '.join(duplicates)}")
    rows = []
    for start, record in records:
        if len(record) > len(columns):
            raise ValidationError(f"{source}:{start}: more fields than columns")
        rows.append((start, dict(zip(columns, record + [""] * (len(columns) - len(record)),
                                     strict=True))))
    cases = []
    for start, row in rows:
        variables: dict[str, Any] = {}
        metadata: dict[str, Any] = {}
        expected: list[tuple[int, str]] = []
        for column, value in row.items():
            if column == "__expected":
                expected.append((0, value))
            elif match := _EXPECTED_N.match(column):
                expected.append((int(match.group(1)), value))
            elif column.startswith("__metadata:"):
                metadata[column.removeprefix("__metadata:")] = value
            elif column.startswith("__"):
                metadata[column.removeprefix("__")] = value
            else:
                variables[column] = value
        values = [v for _, v in sorted(expected) if v != ""]
        cases.append((
            start,
            Case(
                vars=variables,
                expected=(values[0] if len(values) == 1 else values) if values else None,
                metadata=metadata,
            ),
        ))
    return cases


def _read_jsonl(text: str, source: str) -> list[tuple[int, Case]]:
    cases = []
    # "\n" only: JSON text may hold U+2028, which str.splitlines would split at.
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ValidationError(f"{source}:{number}: invalid JSON: {exc.msg}") from None
        except RecursionError:
            raise ValidationError(f"{source}:{number}: nested too deeply") from None
        if not isinstance(data, dict) or not isinstance(data.get("vars", {}), dict):
            raise ValidationError(
                f'{source}:{number}: each line is {{"vars": {{...}}, "expected": ..., '
                '"metadata": {...}}'
            )
        unknown = set(data) - {"vars", "expected", "metadata"}
        if unknown:
            raise ValidationError(f"{source}:{number}: unknown keys {', '.join(sorted(unknown))}")
        metadata = data.get("metadata") or {}
        if not isinstance(metadata, dict):
            raise ValidationError(f"{source}:{number}: metadata must be an object")
        cases.append(
            (number, Case(vars=data.get("vars") or {}, expected=data.get("expected"),
                          metadata=metadata))
        )
    return cases
