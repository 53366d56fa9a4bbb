"""Domain types of a prompt version and their canonical, hashable form.

A version's content is its messages, its model parameters and its declared
variables. ``content_hash`` is the SHA-256 of the canonical JSON of that content
(sorted keys, compact separators, UTF-8); a version's ``id`` hashes its parent's id
(or, for a first version, its prompt's name) with its content hash, so the same
history gives the same ids on every machine.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from workbench.errors import ValidationError

Role = Literal["system", "user", "assistant"]

NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
LABEL_PATTERN = re.compile(r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$")
VARIABLE_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LATEST = "latest"


def _no_nul(value: str, what: str) -> str:
    # PostgreSQL text cannot hold NUL, and a NUL in a prompt is never intended.
    if "\x00" in value:
        raise ValueError(f"{what} contains a NUL byte (\\x00), which cannot be stored")
    return value


def check_text(value: str, what: str) -> str:
    """A free text that is stored and pushed (a commit message, a comment, a name): no NUL
    byte, which a PostgreSQL registry would refuse long after the fact.

    Raises:
        ValidationError: it has one.
    """
    try:
        return _no_nul(value, what)
    except ValueError as exc:
        raise ValidationError(str(exc)) from None


class Message(BaseModel):
    """One chat message: a role and a Jinja2 template."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    role: Role
    content: str

    @field_validator("content")
    @classmethod
    def _content_has_no_nul(cls, value: str) -> str:
        return _no_nul(value, "message content")


class Params(BaseModel):
    """Model parameters stored with a version. Unset fields are left out of the hash."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str | None = None
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0)
    top_p: float | None = Field(default=None, gt=0, le=1)
    seed: int | None = None
    stop: list[str] | None = None
    response_format: dict[str, Any] | None = None

    @field_validator("stop", mode="before")
    @classmethod
    def _stop_as_list(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @field_validator("response_format", mode="before")
    @classmethod
    def _response_format_as_dict(cls, value: Any) -> Any:
        # `response_format: json_object` is shorthand for OpenAI's {"type": "json_object"}.
        return {"type": value} if isinstance(value, str) else value

    @field_validator("response_format", "stop")
    @classmethod
    def _plain(cls, value: Any) -> Any:
        check_plain_data(value, "a parameter")
        return value

    @field_validator("temperature", "top_p")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("must be a finite number")
        return value


class PromptContent(BaseModel):
    """What a version holds and what its hash covers."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    messages: tuple[Message, ...] = Field(min_length=1)
    params: Params = Field(default_factory=Params)
    variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _variable_names(cls, value: dict[str, Any]) -> dict[str, Any]:
        for name in value:
            if not VARIABLE_PATTERN.match(name):
                raise ValueError(f"variable name {name!r} is not an identifier")
        check_plain_data(value, "a variable default")
        return value

    def canonical(self) -> dict[str, Any]:
        """The content as plain data, unset parameters dropped."""
        return {
            "messages": [m.model_dump() for m in self.messages],
            "params": self.params.model_dump(exclude_none=True),
            "variables": dict(self.variables),
        }

    def canonical_json(self) -> str:
        """Sorted keys, compact separators, non-ASCII kept: the bytes that are hashed."""
        return canonical_json(self.canonical())

    def content_hash(self) -> str:
        """SHA-256 hex digest of :meth:`canonical_json` encoded as UTF-8."""
        return hashlib.sha256(self.canonical_json().encode("utf-8")).hexdigest()


def check_plain_data(value: Any, what: str, _depth: int = 0) -> None:
    """Refuse anything JSON cannot carry exactly, and NUL bytes (PostgreSQL rejects them).

    Allowed: strings, booleans, integers, finite floats, null, lists, and mappings with
    string keys, nested at most 64 deep.

    Raises:
        ValueError: naming the problem (pydantic turns it into a validation error).
    """
    if _depth > 64:
        raise ValueError(f"{what} is nested more than 64 levels deep")
    if isinstance(value, str):
        _no_nul(value, what)
    elif value is None or isinstance(value, bool | int):
        return
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{what} holds {value}, which JSON cannot represent")
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{what} has a non-string key {key!r}; quote it")
            _no_nul(key, what)
            check_plain_data(item, what, _depth + 1)
    elif isinstance(value, list | tuple):
        for item in value:
            check_plain_data(item, what, _depth + 1)
    else:
        raise ValueError(f"{what} holds a {type(value).__name__}; use strings, numbers, lists, maps")


def canonical_json(data: Any) -> str:
    """JSON with sorted keys and compact separators, the form every hash is taken of."""
    return json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def version_id(prompt: str, parent_id: str | None, content_hash: str) -> str:
    """The stable id of a version: SHA-256 of ``"<parent>:<content hash>"``.

    ``<parent>`` is the parent version's id; a first version has none, so it stands on
    its prompt instead (``prompt:NAME``), and two prompts that start with the same text
    still get different ids.
    """
    parent = parent_id if parent_id is not None else f"prompt:{prompt}"
    return hashlib.sha256(f"{parent}:{content_hash}".encode()).hexdigest()


def check_name(name: str) -> str:
    """Validate a prompt or dataset name."""
    if not NAME_PATTERN.match(name):
        raise ValidationError(
            f"invalid name {name!r}: use letters, digits, '_', '.', '-' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return name


def check_label(label: str) -> str:
    """Validate a label name; ``latest`` is reserved for the newest version."""
    if label == LATEST:
        raise ValidationError("'latest' always means the newest version and cannot be moved")
    if not LABEL_PATTERN.match(label):
        raise ValidationError(
            f"invalid label {label!r}: start with a letter; then letters, digits, '_', '.', '-'"
        )
    return label


class Ref(BaseModel):
    """A reference to one version: ``NAME``, ``NAME@N``, ``NAME:LABEL``."""

    model_config = ConfigDict(frozen=True)

    name: str
    number: int | None = None
    label: str | None = None

    def __str__(self) -> str:
        if self.number is not None:
            return f"{self.name}@{self.number}"
        if self.label is not None:
            return f"{self.name}:{self.label}"
        return self.name


def parse_ref(text: str) -> Ref:
    """Parse ``NAME``, ``NAME@N``, ``NAME@latest`` or ``NAME:LABEL``.

    Raises:
        ValidationError: the reference is malformed.
    """
    name, number, label = text, None, None
    if "@" in text:
        name, _, tail = text.partition("@")
        if tail == LATEST:
            label = LATEST
        elif re.fullmatch(r"[1-9][0-9]{0,8}", tail):
            number = int(tail)
        else:
            raise ValidationError(f"invalid reference {text!r}: after '@' put a version number")
    elif ":" in text:
        name, _, label = text.partition(":")
        if not label:
            raise ValidationError(f"invalid reference {text!r}: after ':' put a label")
    check_name(name)
    return Ref(name=name, number=number, label=label)
