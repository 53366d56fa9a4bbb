"""Where things are in a promptfoo config's files: every message names a file and line."""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from workbench.errors import ValidationError


@dataclass(frozen=True)
class Loc:
    """A place in a file: a YAML node (when there is one) and its line."""

    file: str
    line: int
    node: yaml.Node | None = None

    @classmethod
    def of(cls, file: str, node: yaml.Node | None) -> Loc:
        return cls(file, node.start_mark.line + 1 if node is not None else 1, node)

    def __getitem__(self, key: str | int) -> Loc:
        """The place of a key's value or an item; this place when it is not found."""
        node = self.node
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    return Loc.of(self.file, v)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            return Loc.of(self.file, node.value[key])
        return Loc(self.file, self.line)

    def key(self, name: str) -> Loc:
        """The place of a key itself (to point at an unknown key)."""
        if isinstance(self.node, yaml.MappingNode):
            for k, _ in self.node.value:
                if k.value == name:
                    return Loc.of(self.file, k)
        return Loc(self.file, self.line)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def refuse(loc: Loc, message: str) -> ValidationError:
    """The error to raise for a problem at ``loc`` (``file:line: message``)."""
    return ValidationError(f"{loc}: {message}")


def short(text: str, limit: int = 60) -> str:
    """``text`` quoted for a message, cut after ``limit`` characters."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


#: What promptfoo's glob reads as a file pattern (prompts and tests files).
GLOB_MAGIC = re.compile(r"[*?[]|\{[^}]*(,|\.\.)[^}]*\}|[+@!]\(")
