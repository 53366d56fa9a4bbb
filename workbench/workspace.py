"""The editor's working set: prompt variants being edited, saved as a draft file after
every change, so a crash or ``kill -9`` loses nothing.

Headless (no textual): the app edits a :class:`Workspace`, calls :meth:`Workspace.save`
(atomic: a temp file, fsync, rename), and :func:`load_workspace` restores it at the next
start. A draft file that cannot be read is kept aside, never overwritten silently.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from workbench.domain import Message, Params, PromptContent

FORMAT = 1


@dataclass
class VariantDraft:
    """One variant: its messages, parameters, model and the values to try it with.

    Attributes:
        name: the stored prompt it commits to.
        messages: ``{"role", "content"}`` dicts (the content is a Jinja2 template).
        params: model parameters (temperature, max_tokens, ...).
        model: the model reference it runs on (``smollm2``, a config name, a model id).
        values: variable values for a single-input run.
        base_version_id: the stored version it started from (None: a new prompt).
        base_hash: that version's content hash (to tell whether it changed).
    """

    name: str
    messages: list[dict[str, str]] = field(default_factory=lambda: [{"role": "user", "content": ""}])
    params: dict[str, Any] = field(default_factory=dict)
    model: str = "smollm2"
    values: dict[str, str] = field(default_factory=dict)
    base_version_id: str | None = None
    base_hash: str | None = None
    variables: dict[str, Any] = field(default_factory=dict)
    """Declared variables and their defaults (kept from the version it was opened from)."""
    retrieval: dict[str, Any] = field(default_factory=dict)
    """Variables filled by retrieval when it runs, as in a suite's ``retrieval:`` (variable
    -> index, collection, k, where, query, embed). A run setting, not version content."""

    def content(self) -> PromptContent:
        """The draft as version content (raises pydantic's ValidationError when invalid).

        As in prompt files, a variable the messages use but nobody declared is declared
        as required.
        """
        from workbench import templates

        used: set[str] = set()
        for message in self.messages:
            try:
                used |= set(templates.compile_template(message["content"]).variables)
            except templates.TemplateError:
                pass
        declared = dict(self.variables) | {n: None for n in sorted(used - set(self.variables))}
        return PromptContent(
            messages=tuple(Message(**m) for m in self.messages),
            params=Params(**{**self.params, "model": self.model or None}),
            variables=declared,
        )

    def content_hash(self) -> str | None:
        """The draft's content hash, or None while it is not valid content."""
        try:
            return self.content().content_hash()
        except Exception:
            return None

    @property
    def unsaved(self) -> bool:
        """Whether the draft differs from the version it started from (or is new)."""
        return self.base_hash is None or self.content_hash() != self.base_hash


@dataclass
class Workspace:
    """The variants on screen, and the dataset chosen for a grid run."""

    variants: list[VariantDraft] = field(default_factory=list)
    dataset: str | None = None
    path: Path | None = field(default=None, compare=False, repr=False)

    def to_data(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "variants": [asdict(v) for v in self.variants],
            "dataset": self.dataset,
        }

    def save(self) -> None:
        """Write the draft file atomically (a crash mid-write keeps the previous one)."""
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        data = json.dumps(self.to_data(), ensure_ascii=False, indent=1)
        fd, tmp = tempfile.mkstemp(prefix=".workspace-", dir=self.path.parent)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(data)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def duplicate(self, index: int) -> VariantDraft:
        """A copy of a variant, added after the others, named ``NAME-b`` (``-c``...)."""
        source = self.variants[index]
        taken = {v.name for v in self.variants}
        suffix = "b"
        while f"{source.name}-{suffix}" in taken:
            suffix = chr(ord(suffix) + 1)
        copy = VariantDraft(
            name=f"{source.name}-{suffix}",
            messages=[dict(m) for m in source.messages],
            params=dict(source.params),
            model=source.model,
            values=dict(source.values),
            retrieval=json.loads(json.dumps(source.retrieval)),
        )
        self.variants.append(copy)
        return copy


def workspace_path() -> Path:
    """Where the draft file lives (the data folder)."""
    from workbench.config import data_dir

    return data_dir() / "workspace.json"


def load_workspace(path: Path | None = None) -> tuple[Workspace, str | None]:
    """The saved workspace and a note for the user (None when there is nothing to say).

    A missing file gives an empty workspace. A file that cannot be read is renamed to
    ``workspace.json.broken`` (kept for the user) and an empty workspace is returned,
    with a note saying so.
    """
    path = path or workspace_path()
    if not path.exists():
        return Workspace(path=path), None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise ValueError("not a workspace file of this version")
        variants = [VariantDraft(**v) for v in data.get("variants", [])]
        restored = Workspace(variants=variants, dataset=data.get("dataset"), path=path)
    except (OSError, ValueError, TypeError) as exc:
        broken = path.with_name(path.name + ".broken")
        try:
            os.replace(path, broken)
        except OSError:
            pass
        return Workspace(path=path), f"the saved drafts could not be read ({exc}); kept as {broken}"
    note = None
    if any(v.unsaved for v in restored.variants):
        note = "restored unsaved drafts from the last session"
    return restored, note
