"""``prompts``: inline text, ``{id, label, raw}`` mappings and ``file://`` ``.txt``/``.json``
files, as variants labelled as promptfoo labels them."""

from __future__ import annotations

import glob
import json
import posixpath
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from workbench import templates
from workbench.domain import Message
from workbench.experiment import Variant
from workbench.promptfoo.js import JS_WHITESPACE, js_trim, json_parse
from workbench.promptfoo.source import GLOB_MAGIC, Loc, refuse, short

_PROMPT_KEYS = ("id", "label", "raw")
# fmt: off
_FILE_EXTENSIONS = (".cjs", ".cts", ".j2", ".js", ".json", ".jsonl", ".md", ".mjs", ".mts",
                    ".py", ".ts", ".txt", ".yml", ".yaml")
# fmt: on


def _maybe_file_path(text: str) -> bool:
    """promptfoo's ``maybeFilePath``: whether it reads a prompt string as a file path."""
    if any(s in text for s in ("\n", "portkey://", "langfuse://", "helicone://")):
        return False
    tokens = text.split(":")
    last = tokens[-1]
    second = tokens[-2] if len(tokens) > 1 else ""
    return (
        text.startswith("file://")
        or any(last.endswith(ext) or second.endswith(ext) for ext in _FILE_EXTENSIONS)
        or text[-3:-2] == "."
        or text[-4:-3] == "."
        or any(c in text for c in "*/\\")
    )


def load_prompts(raw: Any, loc: Loc, base: Path) -> list[Variant]:
    """Every prompt of ``prompts``, in promptfoo's order, as variants labelled as promptfoo
    labels them."""
    entries: list[tuple[str, str | None, Loc]] = []
    if isinstance(raw, str) and raw:
        entries.append((raw, None, loc))
    elif isinstance(raw, list) and raw:
        seen_texts: set[str] = set()
        for index, item in enumerate(raw):
            if isinstance(item, str):
                # promptfoo keeps prompts given as text in a set: a repeat runs once.
                key = str((base / item[7:]).resolve()) if item.startswith("file://") else item
                if key in seen_texts:
                    continue
                seen_texts.add(key)
            entries.append(_prompt_entry(item, loc[index]))
    elif isinstance(raw, dict) and raw:
        for text, label in raw.items():
            if not isinstance(label, str):
                raise refuse(loc[text], "in a prompts mapping, each value is the label (text)")
            entries.append((text, label, loc.key(text)))
    else:
        raise refuse(loc, "prompts: a prompt, a list of prompts, or a mapping of prompt to label")
    variants: list[Variant] = []
    seen: set[str] = set()
    for text, label, where in entries:
        for variant in _expand_prompt(text, label, where, base):
            if variant.label in seen:
                raise refuse(
                    where,
                    f"two prompts have the label {short(variant.label)}; give one of them a label",
                )
            seen.add(variant.label)
            variants.append(variant)
    return variants


def _prompt_entry(item: Any, loc: Loc) -> tuple[str, str | None, Loc]:
    if isinstance(item, str):
        return item, None, loc
    if not isinstance(item, dict):
        raise refuse(loc, "a prompt is text or a mapping with id, label and raw")
    unknown = [k for k in item if k not in _PROMPT_KEYS]
    if unknown:
        raise refuse(
            loc.key(unknown[0]),
            f"prompt key {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_PROMPT_KEYS)}; model settings go in "
            "providers[].config)",
        )
    for key in _PROMPT_KEYS:
        if key in item and not isinstance(item[key], str):
            raise refuse(loc[key], f"prompt {key} must be text")
    if "id" not in item and not ("raw" in item and "label" in item):
        raise refuse(loc, "a prompt mapping needs an id, or raw (the prompt) and a label")
    text = item.get("raw") or item.get("id")
    if not text:
        raise refuse(loc, "a prompt mapping needs raw (the prompt) or an id")
    return text, item.get("label"), loc


def _expand_prompt(text: str, label: str | None, loc: Loc, base: Path) -> list[Variant]:
    if text.startswith(("exec:", "portkey://", "langfuse://", "helicone://")):
        raise refuse(
            loc,
            f"prompt {short(text)}: only inline text and file:// .txt and "
            ".json prompts are supported",
        )
    if not _maybe_file_path(text):
        return [_variant(text, label if label is not None else text, loc)]
    relative = text.removeprefix("file://")
    if GLOB_MAGIC.search(relative):
        if text.startswith("file://") or glob.glob(str(base / relative)):
            raise refuse(
                loc, f"prompt {short(text)}: file patterns are not supported; name each file"
            )
        # promptfoo globs, finds nothing, and uses the text itself.
        return [_variant(text, label if label is not None else text, loc)]
    path = base / relative
    if not path.is_file():
        if text.startswith("file://"):
            raise refuse(loc, f"prompt file {relative} not found (looked for {path})")
        raise refuse(
            loc,
            f"promptfoo reads the prompt {short(text)} as a file path and there "
            f"is no such file; for inline text, avoid '/', '\\', '*' and a '.' "
            "near the end, or use a multi-line prompt",
        )
    shown = posixpath.normpath(relative.replace("\\", "/"))
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(loc, f"cannot read prompt file {relative}: {exc}") from None
    if path.suffix == ".txt":
        return [
            _variant(part, f"{label}: {shown}: {part}" if label else f"{shown}: {part}", loc)
            for part in _split_prompts(content)
        ]
    if path.suffix == ".json":
        try:
            data = json_parse(content)
        except ValueError as exc:
            raise refuse(loc, f"prompt file {relative} is not valid JSON: {exc}") from None
        compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return [_chat_variant(data, label or f"{shown}: {compact}", loc, relative)]
    raise refuse(loc, f"prompt file {relative}: only .txt and .json prompt files are supported")


def _split_prompts(content: str) -> Iterator[str]:
    """promptfoo's ``.txt`` prompts: split at lines that are ``---``, trimmed, empty ones
    dropped."""
    buffer: list[str] = []
    for line in [*re.split(r"\r?\n", content), "---"]:
        if line.strip(JS_WHITESPACE) == "---":
            part = js_trim("\n".join(buffer))
            if part:
                yield part
            buffer = []
        else:
            buffer.append(line)


def _variant(text: str, label: str, loc: Loc) -> Variant:
    """A prompt's text as a variant: one user message, or the chat a JSON text holds."""
    try:
        data = json_parse(text)
    except ValueError:
        data = text
    if isinstance(data, list | dict):
        return _chat_variant(data, label, loc, "the prompt")
    if js_trim(text).startswith("- role:"):
        raise refuse(
            loc, "YAML chat prompts are not supported; write the messages as JSON in a .json file"
        )
    return _chat_variant([{"role": "user", "content": text}], label, loc, "the prompt")


def _chat_variant(data: Any, label: str, loc: Loc, what: str) -> Variant:
    """Chat messages (``[{"role": ..., "content": ...}]``), checked and compiled."""
    if not isinstance(data, list) or not data:
        raise refuse(loc, f"{what} is JSON but not a list of chat messages")
    messages = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"role", "content"}:
            raise refuse(loc, f"{what}: message {index + 1} must have exactly role and content")
        try:
            message = Message.model_validate(item)
        except PydanticValidationError as exc:
            problem = exc.errors()[0]
            raise refuse(
                loc,
                f"{what}: message {index + 1}: "
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}",
            ) from None
        if message.content.startswith("file://"):
            raise refuse(loc, f"{what}: message {index + 1}: file:// contents are not supported")
        try:
            templates.compile_template(
                message.content, where=templates.message_label(index, message.role)
            )
        except templates.TemplateError as exc:
            raise refuse(loc, f"prompt {short(label)}: {exc}") from None
        messages.append(message)
    return Variant(label=label, messages=tuple(messages))
