"""YAML read as promptfoo's js-yaml reads it (YAML 1.2 core schema: ``yes`` stays a
string, ``1.0`` is the number 1), and the JSON (or js-yaml) objects in a model's output."""

from __future__ import annotations

import math
import re
from typing import Any

import yaml

from workbench import yamlio
from workbench.errors import WorkbenchError
from workbench.promptfoo.js import js_string, json_parse

_CORE_NULL = ("", "~", "null", "Null", "NULL")
_CORE_BOOL = {
    "true": True,
    "True": True,
    "TRUE": True,
    "false": False,
    "False": False,
    "FALSE": False,
}
_CORE_INT = re.compile(r"[-+]?(?:0b[01]+|0x[0-9a-fA-F]+|0o[0-7]+|[0-9]+)\Z")
_CORE_FLOAT = re.compile(
    r"(?:[-+]?[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?|\.[0-9]+(?:[eE][-+]?[0-9]+)?"
    r"|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))\Z"
)


def _core_scalar(text: str) -> Any:
    if text in _CORE_NULL:
        return None
    if text in _CORE_BOOL:
        return _CORE_BOOL[text]
    if _CORE_INT.match(text):
        sign = -1 if text[0] == "-" else 1
        digits = text.lstrip("+-")
        base = {"0b": 2, "0x": 16, "0o": 8}.get(digits[:2], 10)
        return sign * int(digits[2:] if base != 10 else digits, base)
    if _CORE_FLOAT.match(text):
        low = text.lower().lstrip("+-")
        negative = text[0] == "-"
        if low in (".nan", ".inf"):
            return math.nan if low == ".nan" else (-math.inf if negative else math.inf)
        number = -float(low) if negative else float(low)
        if math.isinf(number):  # js-yaml: 1e999 is not a number but text
            return text
        # JavaScript has one number type: 1.0 is 1 (and renders as "1").
        return int(number) if number.is_integer() and abs(number) < 2**53 else number
    return text


def core_data(node: yaml.Node) -> Any:
    """Plain data from a node tree, scalars resolved as js-yaml resolves them."""
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = core_data(key_node)
            result[key if isinstance(key, str) else js_string(key)] = core_data(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [core_data(item) for item in node.value]
    if node.style is None:  # plain scalar: the only kind whose type is implied
        return _core_scalar(node.value)
    return node.value


def yaml_core_load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    """YAML text as js-yaml reads it: the data, and the node tree (for line numbers).

    Raises:
        ValidationError: invalid YAML (from :func:`workbench.yamlio.load`).
    """
    _, root = yamlio.load(text, source)
    return (core_data(root) if root is not None else None), root


def _slash_comments_to_hash(text: str) -> str:
    """promptfoo's ``convertSlashCommentsToHash``, ported as is (quirks included)."""
    lines = []
    for line in text.split("\n"):
        state, result, i = "normal", "", 0
        converted = None
        while i < len(line):
            char = line[i]
            # JavaScript's /[a-zA-Z]/.test(undefined) tests the text "undefined": true.
            after = line[i + 1] if i + 1 < len(line) else "undefined"
            before = line[i - 1] if i > 0 else ""
            letter_before = before.isascii() and before.isalpha()
            if state == "normal":
                if char == "'" and not letter_before:
                    state = "single"
                elif char == '"':
                    state = "double"
                elif char == "/" and after == "/":
                    count = 2
                    while i + count < len(line) and line[i + count] == "/":
                        count += 1
                    converted = result + "#" * (count // 2) + line[i + count :]
                    break
                result += char
            elif state == "single":
                result += char
                if (
                    char == "'"
                    and before != "\\"
                    and not (after[0].isascii() and after[0].isalpha())
                ):
                    state = "normal"
            else:
                result += char
                if char == '"' and before != "\\":
                    state = "normal"
            i += 1
        lines.append(converted if converted is not None else result)
    return "\n".join(lines)


def _parse_json_candidate(text: str) -> Any:
    try:
        return json_parse(text)
    except ValueError:
        pass
    try:
        return yaml_core_load(_slash_comments_to_hash(text), "<output>")[0]
    except WorkbenchError:
        return None


def extract_json_objects(text: str) -> list[Any]:
    """promptfoo's ``extractJsonObjects``: each ``{...}`` in the text that parses.

    Braces are counted without regard to strings; a candidate is parsed as JSON, then as
    YAML (promptfoo uses js-yaml, so ``{a: 1}`` counts), and an unclosed one at the end of
    the text is closed with the missing braces.
    """
    found: list[Any] = []
    limit = 100_000
    i = 0
    while i < len(text):
        if text[i] == "{":
            opened, closed, j = 1, 0, i + 1
            end = min(i + limit, len(text))
            while j < end and opened > closed:
                if text[j] == "{":
                    opened += 1
                elif text[j] == "}":
                    closed += 1
                j += 1
                if opened == closed or j == len(text) or j == i + limit:
                    candidate = text[i:j] + "}" * max(opened - closed, 0)
                    parsed = _parse_json_candidate(candidate)
                    if isinstance(parsed, dict | list):
                        found.append(parsed)
                        i = j - 1
                        break
                    if opened == closed:
                        break
        i += 1
    return found
