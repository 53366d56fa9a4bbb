"""Prompt files: the YAML a user writes, turned into a :class:`Draft` or a clear error.

Errors name the file and its line (``prompt.yaml:12: message 2 (user), line 3: ...``),
so editors and terminals can jump to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from workbench import templates, yamlio
from workbench.yamlio import child, line_of
from workbench.domain import Message, Params, PromptContent, check_name
from workbench.errors import ValidationError

_TOP_LEVEL = ("name", "description", "tags", "messages", "params", "variables")


class PromptFile(BaseModel):
    """The schema of a prompt file."""

    model_config = ConfigDict(extra="forbid")

    name: str
    messages: list[Message] = Field(min_length=1)
    description: str | None = None
    tags: list[str] | None = None
    params: Params = Field(default_factory=Params)
    variables: dict[str, Any] | None = None


@dataclass(frozen=True)
class Loaded:
    """A parsed prompt file and what is worth a warning."""

    name: str
    content: PromptContent
    description: str | None
    tags: tuple[str, ...] | None
    warnings: tuple[str, ...]


def load_prompt_file(path: Path) -> Loaded:
    """Read and check a prompt file.

    Raises:
        ValidationError: unreadable file, invalid YAML, schema or template, with the line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    return parse_prompt_file(text, str(path))


def parse_prompt_file(text: str, filename: str = "<prompt>") -> Loaded:
    """Parse the text of a prompt file (see :func:`load_prompt_file`)."""
    data, root = yamlio.load(text, filename)
    if not isinstance(data, dict) or root is None:
        raise ValidationError(
            f"{filename}: a prompt file is a mapping with at least 'name' and 'messages'"
        )
    try:
        parsed = PromptFile.model_validate(data)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            field = ".".join(str(p) for p in loc) or "file"
            hint = ""
            if err["type"] == "extra_forbidden" and len(loc) == 1:
                hint = f" (allowed keys: {', '.join(_TOP_LEVEL)})"
            problems.append(f"{filename}:{line_of(root, loc)}: {field}: {err['msg']}{hint}")
        raise ValidationError("\n".join(problems)) from None
    check_name(parsed.name)
    used: set[str] = set()
    for index, message in enumerate(parsed.messages):
        where = templates.message_label(index, message.role)
        try:
            used |= set(templates.compile_template(message.content, where=where).variables)
        except templates.TemplateError as exc:
            line = _template_file_line(root, index, exc.line)
            raise ValidationError(f"{filename}:{line}: {exc}") from None
    declared = dict(parsed.variables or {})
    warnings = tuple(
        f"variable {name!r} is declared but no message uses it"
        for name in sorted(set(declared) - used)
    )
    # Variables a template uses but the file does not declare become required ones.
    variables = declared | {name: None for name in sorted(used - set(declared))}
    try:
        content = PromptContent(
            messages=tuple(parsed.messages), params=parsed.params, variables=variables
        )
    except PydanticValidationError as exc:
        err = exc.errors()[0]
        raise ValidationError(f"{filename}: {err['msg']}") from None
    return Loaded(
        name=parsed.name,
        content=content,
        description=parsed.description,
        tags=tuple(parsed.tags) if parsed.tags is not None else None,
        warnings=warnings,
    )


def _template_file_line(root: yaml.Node, index: int, template_line: int | None) -> int:
    node = child(child(child(root, "messages"), index), "content")
    if node is None:
        return root.start_mark.line + 1
    start = node.start_mark.line + 1
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        start += 1  # a block scalar's text starts on the line after its indicator
    return start + (template_line or 1) - 1


def dump_prompt_file(loaded_name: str, content: PromptContent, **extra: Any) -> str:
    """The prompt file that commits ``content`` (used by ``prompts show --yaml``)."""
    data: dict[str, Any] = {"name": loaded_name}
    data.update({k: v for k, v in extra.items() if v})
    canonical = content.canonical()
    data["messages"] = canonical["messages"]
    if canonical["params"]:
        data["params"] = canonical["params"]
    if canonical["variables"]:
        data["variables"] = canonical["variables"]
    return yamlio.dump(data)


def diff_versions(old: Any, new: Any) -> str:
    """Unified diff of two versions (``VersionInfo``) as prompt files: messages, params
    and variables."""
    import difflib

    return "".join(
        difflib.unified_diff(
            dump_prompt_file(old.prompt, old.content).splitlines(keepends=True),
            dump_prompt_file(new.prompt, new.content).splitlines(keepends=True),
            fromfile=old.ref,
            tofile=new.ref,
        )
    )
