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

from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from workbench import yamlio
from workbench.domain import PromptContent, check_label, check_name, version_id
from workbench.errors import NotFoundError, ValidationError, WorkbenchError
from workbench.storage import repo, transfer
from workbench.storage.db import Store
from workbench.storage.repo import as_utc

FORMAT = "workbench.prompt/v1"


def prompt_to_data(prompt: transfer.ImportedPrompt) -> dict[str, Any]:
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
        # Only when there are any: exports of prompts never approved keep their old bytes.
        **({"approvals": [
            {"version": numbers[a.version_id], "by": a.approver, "comment": a.comment,
             "at": a.at.isoformat()}
            for a in prompt.approvals
        ]} if prompt.approvals else {}),
    }


def export_all(store: Store, folder: Path, names: list[str] | None = None) -> list[Path]:
    """Write one ``NAME.yaml`` per prompt into ``folder``; returns the files written.

    Everything is read from the store before the first file is written, so an unknown
    name writes nothing; each file is replaced atomically.

    Raises:
        NotFoundError: an unknown prompt name.
        WorkbenchError: the folder cannot be created or written.
    """
    chosen = names if names is not None else repo.prompt_names(store)
    texts = {name: yamlio.dump(prompt_to_data(transfer.export_prompt(store, name))) for name in chosen}
    return _write_files(folder, texts, "yaml")


def _write_files(folder: Path, texts: dict[str, str], suffix: str) -> list[Path]:
    """``NAME.SUFFIX`` for each text, each replaced atomically; the files written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in texts.items():
            path = folder / f"{name}.{suffix}"
            _write_atomically(path, text)
            written.append(path)
    except OSError as exc:
        raise WorkbenchError(f"cannot write the export to {folder}: {exc.strerror or exc}") from None
    return written


def _write_atomically(path: Path, text: str) -> None:
    # A failed export never leaves a half-written file behind.
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; exports are ordinary files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _ExportedVersion(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    id: str
    parent: str | None
    content_hash: str
    message: str
    author: str = Field(min_length=1, max_length=256)
    created_at: datetime
    messages: list[dict[str, Any]]
    params: dict[str, Any]
    variables: dict[str, Any]


class _ExportedMove(BaseModel):
    model_config = ConfigDict(extra="forbid")

    label: str
    from_: int | None = Field(alias="from")
    to: int
    by: str = Field(min_length=1, max_length=256)
    at: datetime


class _ExportedApproval(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int
    by: str = Field(min_length=1, max_length=256)
    comment: str = ""
    at: datetime


class _ExportFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    format: str
    name: str
    description: str = ""
    tags: list[str] = Field(default_factory=list)
    created_at: datetime
    labels: dict[str, int] = Field(default_factory=dict)
    versions: list[_ExportedVersion] = Field(min_length=1)
    label_history: list[_ExportedMove] = Field(default_factory=list)
    approvals: list[_ExportedApproval] = Field(default_factory=list)


def data_to_prompt(data: Any, source: str) -> transfer.ImportedPrompt:
    """Check an export file's data and turn it into what :func:`transfer.import_prompts` takes.

    Versions must form one chain numbered 1..N, each the child of the one before, with
    hashes and ids that match their content: what a store can have produced.

    Raises:
        ValidationError: wrong format, a missing or mistyped field, a broken chain, or a
            hash or id that does not match.
    """
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ValidationError(f"{source}: not a workbench prompt export (format {FORMAT})")
    try:
        parsed = _ExportFile.model_validate(data)
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ValidationError(f"{source}: {field}: {err['msg']}") from None
    try:
        check_name(parsed.name)
        for label in parsed.labels:
            check_label(label)
        for move in parsed.label_history:
            check_label(move.label)
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc}") from None
    versions = [_check_version(parsed, raw, index, source) for index, raw in enumerate(parsed.versions)]
    by_number = {v.number: v.id for v in versions}

    def known(number: int, what: str) -> str:
        if number not in by_number:
            raise ValidationError(f"{source}: {what} names version {number}, which is not in the file")
        return by_number[number]

    history = [
        repo.LabelMove(
            prompt=parsed.name,
            label=m.label,
            from_number=m.from_,
            to_number=m.to,
            actor=m.by,
            at=as_utc(m.at),
            from_id=known(m.from_, f"a move of {m.label}") if m.from_ is not None else None,
            to_id=known(m.to, f"a move of {m.label}"),
        )
        for m in parsed.label_history
    ]
    last_move = {m.label: m.to for m in sorted(parsed.label_history, key=lambda m: as_utc(m.at))}
    for name, number in parsed.labels.items():
        if last_move.get(name) != number:
            raise ValidationError(
                f"{source}: label {name} points to version {number}, but its last move in "
                "label_history does not"
            )
    return transfer.ImportedPrompt(
        name=parsed.name,
        description=parsed.description,
        tags=tuple(parsed.tags),
        created_at=as_utc(parsed.created_at),
        versions=versions,
        labels={name: known(n, f"label {name}") for name, n in parsed.labels.items()},
        label_history=history,
        approvals=[transfer.ImportedApproval(known(a.version, "an approval"), a.by, a.comment, as_utc(a.at))
                   for a in parsed.approvals],
    )


def _check_version(
    parsed: _ExportFile, raw: _ExportedVersion, index: int, source: str
) -> transfer.ImportedVersion:
    where = f"{source}: version {raw.number}"
    if raw.number != index + 1:
        raise ValidationError(f"{where}: versions must be numbered 1, 2, 3... in order")
    expected_parent = parsed.versions[index - 1].id if index else None
    if raw.parent != expected_parent:
        raise ValidationError(f"{where}: its parent must be version {index or 'none'}")
    try:
        content = PromptContent.model_validate(
            {"messages": raw.messages, "params": raw.params, "variables": raw.variables}
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"{where}: {exc.errors()[0]['msg']}") from None
    digest = content.content_hash()
    if digest != raw.content_hash:
        raise ValidationError(f"{where}: content does not match its hash")
    if version_id(parsed.name, raw.parent, digest) != raw.id:
        raise ValidationError(f"{where}: id does not match")
    return transfer.ImportedVersion(
        id=raw.id,
        number=raw.number,
        parent_id=raw.parent,
        content=content,
        message=raw.message,
        author=raw.author,
        created_at=as_utc(raw.created_at),
    )


def read_folder(folder: Path) -> list[transfer.ImportedPrompt]:
    """Parse every ``*.yaml`` export in ``folder`` (all are checked before any is stored)."""
    if not folder.is_dir():
        raise ValidationError(f"{folder} is not a folder")
    prompts = []
    for path in sorted(folder.glob("*.yaml")):
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ValidationError(f"{path}: cannot read: {exc}") from None
        data, _ = yamlio.load(text, str(path))
        prompts.append(data_to_prompt(data, str(path)))
    return prompts


def import_folder(store: Store, folder: Path) -> list[tuple[str, int, int]]:
    """Import every export in ``folder``; returns (name, versions added, moves added)."""
    return transfer.import_prompts(store, read_folder(folder))


APPROVED_FORMAT = "workbench-approved/1"


def approved_to_data(version: repo.VersionInfo, approval: Any) -> dict[str, Any]:
    """What an application needs of an approved version, in a stable order."""
    return {
        "format": APPROVED_FORMAT,
        "name": version.prompt,
        "version": version.number,
        "version_id": version.id,
        "content_hash": version.content_hash,
        "labels": [label for label in version.labels if label != "latest"],
        "approved": {"by": approval.approver, "at": approval.at.isoformat(),
                     "comment": approval.comment},
        **version.content.canonical(),
    }


def export_approved(store: Store, folder: Path, fmt: str = "yaml") -> list[Path]:
    """Write ``NAME.yaml`` (or ``.json``) for every prompt with an ``approved`` version:
    that version's messages, parameters and variables, its number, id and labels, and its
    latest approval. Stable, diff-friendly output: the same store writes the same bytes.

    Raises:
        WorkbenchError: the folder cannot be created or written.
    """
    import json

    from workbench.domain import Ref
    from workbench.storage.approvals import approvals_of

    if fmt not in ("yaml", "json"):
        raise WorkbenchError(f"unknown format {fmt!r}: yaml or json")
    texts = {}
    for name in repo.prompt_names(store):
        try:
            version = repo.resolve(store, Ref(name=name, label=repo.APPROVED))
        except NotFoundError:
            continue
        approvals = approvals_of(store, version.id)
        if not approvals:  # approved before approvals were recorded: say so, do not invent one
            continue
        data = approved_to_data(version, approvals[-1])
        texts[name] = (yamlio.dump(data) if fmt == "yaml"
                       else json.dumps(data, ensure_ascii=False, indent=2) + "\n")
    return _write_files(folder, texts, fmt)
