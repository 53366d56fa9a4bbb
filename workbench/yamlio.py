"""YAML in and out: safe loading with limits, stable and diff-friendly dumping.

Loading refuses aliases (``*name``): a few hundred bytes of nested aliases expand to
gigabytes. Timestamps stay strings (prompts and exports hold JSON-compatible data only).
"""

from __future__ import annotations

from typing import Any

import yaml

from workbench.errors import ValidationError


class _Loader(yaml.SafeLoader):
    """SafeLoader without aliases and without implicit timestamps."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None, None, "YAML aliases (*name) are not supported here", event.start_mark
            )
        return super().compose_node(parent, index)


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """Parse YAML text into data and its node tree (for line numbers).

    Raises:
        ValidationError: invalid YAML (with the line), aliases, or nesting too deep.
    """
    try:
        loader = _Loader(text)
        try:
            root = loader.get_single_node()
            data = loader.construct_document(root) if root is not None else None
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{source}:{mark.line + 1}" if mark is not None else source
        problem = getattr(exc, "problem", None) or str(exc)
        raise ValidationError(f"{where}: invalid YAML: {problem}") from None
    except RecursionError:
        raise ValidationError(f"{source}: invalid YAML: nested too deeply") from None
    return data, root


class _Dumper(yaml.SafeDumper):
    """Safe dumper that writes multi-line strings as ``|`` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # PyYAML falls back to quoting by itself when a block would not round-trip.
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def dump(data: Any) -> str:
    """YAML text of plain data: insertion order, unicode kept, wide lines."""
    return yaml.dump(
        data, Dumper=_Dumper, sort_keys=False, allow_unicode=True, width=100, indent=2
    )


def child(node: yaml.Node | None, key: Any) -> yaml.Node | None:
    """The value node under ``key`` (a mapping key or a list index); for a key that is
    there but unexpected, the key node itself. None when absent."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if k.value == key:
                return v
            if k.value == str(key):
                return k
    if isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
        return node.value[key]
    return None


def line_of(root: yaml.Node, loc: tuple[Any, ...]) -> int:
    """The 1-based line of the value at a key path (the nearest existing parent's when
    it is missing), for error messages that point into the file."""
    node, line = root, root.start_mark.line + 1
    for key in loc:
        node = child(node, key)
        if node is None:
            break
        line = node.start_mark.line + 1
    return line
