"""Export and import of whole prompts (all versions, labels and label history) as YAML.

One file per prompt, stable and diff-friendly. Import checks every version's hash and
id, so a file edited by hand cannot smuggle in content under another version's id.
"""

from __future__ import annotations

import os
import tempfile
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError as PydanticValidationError

from workbench.domain import PromptContent, version_id
from workbench.errors import ValidationError
from workbench.storage import repo
from workbench.storage.db import Store
from workbench.yamlio import dump

FORMAT = "workbench.prompt/v1"


def prompt_to_data(prompt: repo.ImportedPrompt) -> dict[str, Any]:
    """The export form of a prompt: plain data in a fixed key order."""
    numbers = {v.id: v.number for v in prompt.versions}
    return {
        "format": FORMAT,
        "name": prompt.name,
        "description": prompt.description,
        "tags": list(prompt.tags),
        "created_at": prompt.created_at.isoformat(),
        "labels": {name: numbers[v_id] for name, v_id in sorted(prompt.labels.items())},
        "versions": [
            {
                "number": v.number,
                "id": v.id,
                "parent": v.parent_id,
                "content_hash": v.content.content_hash(),
                "message": v.message,
                "author": v.author,
                "created_at": v.created_at.isoformat(),
                **v.content.canonical(),
            }
            for v in prompt.versions
        ],
        "label_history": [
            {
                "label": m.label,
                "from": m.from_number,
                "to": m.to_number,
                "by": m.actor,
                "at": m.at.isoformat(),
            }
            for m in prompt.label_history
        ],
    }


def export_all(store: Store, folder: Path, names: list[str] | None = None) -> list[Path]:
    """Write one ``NAME.yaml`` per prompt into ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for name in names if names is not None else repo.prompt_names(store):
        path = folder / f"{name}.yaml"
        _write_atomically(path, dump(prompt_to_data(repo.export_prompt(store, name))))
        written.append(path)
    return written


def _write_atomically(path: Path, text: str) -> None:
    # A failed export never leaves a half-written file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def data_to_prompt(data: Any, source: str) -> repo.ImportedPrompt:
    """Check an export file's data and turn it into what :func:`repo.import_prompt` takes.

    Raises:
        ValidationError: wrong format, a missing field, or a hash or id that does not match.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValidationError(f"{source}: not a workbench prompt export (format {FORMAT})")
    try:
        versions = []
        by_number: dict[int, str] = {}
        for raw in data["versions"]:
            content = PromptContent.model_validate(
                {k: raw[k] for k in ("messages", "params", "variables")}
            )
            digest = content.content_hash()
            if digest != raw["content_hash"]:
                raise ValidationError(
                    f"{source}: version {raw['number']}: content does not match its hash"
                )
            if version_id(data["name"], raw["parent"], digest) != raw["id"]:
                raise ValidationError(f"{source}: version {raw['number']}: id does not match")
            by_number[int(raw["number"])] = raw["id"]
            versions.append(
                repo.ImportedVersion(
                    id=raw["id"],
                    number=int(raw["number"]),
                    parent_id=raw["parent"],
                    content=content,
                    message=str(raw["message"]),
                    author=str(raw["author"]),
                    created_at=datetime.fromisoformat(raw["created_at"]),
                )
            )
        history = [
            repo.LabelMove(
                prompt=data["name"],
                label=m["label"],
                from_number=m["from"],
                to_number=m["to"],
                actor=m["by"],
                at=datetime.fromisoformat(m["at"]),
                from_id=by_number[m["from"]] if m["from"] is not None else None,
                to_id=by_number[m["to"]],
            )
            for m in data.get("label_history") or []
        ]
        return repo.ImportedPrompt(
            name=data["name"],
            description=data.get("description") or "",
            tags=tuple(data.get("tags") or ()),
            created_at=datetime.fromisoformat(data["created_at"]),
            versions=versions,
            labels={name: by_number[n] for name, n in (data.get("labels") or {}).items()},
            label_history=history,
        )
    except (KeyError, TypeError, ValueError, PydanticValidationError) as exc:
        if isinstance(exc, ValidationError):
            raise
        raise ValidationError(f"{source}: malformed export ({type(exc).__name__}: {exc})") from None


def read_folder(folder: Path) -> list[repo.ImportedPrompt]:
    """Parse every ``*.yaml`` export in ``folder`` (all are checked before any is stored)."""
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder")
    prompts = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise ValidationError(f"{path}: cannot read: {exc}") from None
        prompts.append(data_to_prompt(data, str(path)))
    return prompts


def import_folder(store: Store, folder: Path) -> list[tuple[str, int, int]]:
    """Import every export in ``folder``; returns (name, versions added, moves added)."""
    return repo.import_prompts(store, read_folder(folder))
