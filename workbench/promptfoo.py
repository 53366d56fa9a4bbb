"""promptfoo configs (``promptfooconfig.yaml``), loaded as Workbench suites.

``workbench eval promptfooconfig.yaml`` runs the common subset of promptfoo's format with
promptfoo 0.120.0's semantics, checked against recordings of promptfoo itself
(``tests/promptfoo_parity``). Anything outside the subset is refused when the file is
loaded, naming the file and line, before any model is called:

- ``prompts``: inline text (promptfoo's Nunjucks ``{{ var }}`` runs in Workbench's Jinja2
  sandbox), ``{id, label, raw}`` objects, a ``{raw: label}`` mapping, and ``file://``
  ``.txt`` files (prompts separated by a ``---`` line) or ``.json`` chat message lists.
  Text is one ``user`` message. Labels are promptfoo's own (``prompts.txt: Hello``).
- ``providers``: ``echo``, and chat models of OpenAI, Anthropic, Ollama, Azure,
  OpenRouter, Groq, Mistral, DeepSeek, Together, Perplexity, xAI, Fireworks, Cerebras,
  Cohere, Google AI Studio, Vertex, Bedrock, Hugging Face, LocalAI and a LiteLLM proxy,
  with ``config`` ``apiBaseUrl``, ``apiKey``, ``temperature``, ``max_tokens``, ``top_p``,
  ``seed`` and ``stop``.
- ``tests``: inline, or ``file://`` ``.csv`` (``__expected`` columns in promptfoo's
  ``type:value`` shorthand) and ``.yaml`` files; ``vars`` whose value is a list expand into
  one test per item, as in promptfoo; ``defaultTest`` (``vars``, ``assert``, ``threshold``
  and ``options.provider``, the grader).
- assertions (and their ``not-`` forms): ``contains``, ``icontains``, ``contains-any``,
  ``contains-all``, ``icontains-any``, ``icontains-all``, ``equals``, ``starts-with``,
  ``regex`` (JavaScript syntax, translated), ``is-json`` and ``contains-json`` (with an
  optional JSON Schema), ``latency`` and ``cost`` (``threshold``); ``weight``, ``metric``
  and a test's ``threshold`` (the weighted share of assertions that must pass).

The YAML is read as promptfoo's js-yaml reads it (YAML 1.2 core schema: ``yes`` stays a
string, ``1.0`` is the number 1), and values are compared as JavaScript compares them.
"""

from __future__ import annotations

import csv
import functools
import glob
import json
import math
import os
import posixpath
import re
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from workbench import suite as suites
from workbench import templates, yamlio
from workbench.assertions import Observation, Verdict
from workbench.config import Settings
from workbench.domain import Message, Params, check_plain_data
from workbench.errors import ValidationError, WorkbenchError
from workbench.experiment import Variant
from workbench.models import ModelSpec, resolve_model

# ---------------------------------------------------------------------------------------
# Where things are: file:line for every message
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Loc:
    """A place in a file: a YAML node (when there is one) and its line."""

    file: str
    line: int
    node: yaml.Node | None = None

    @classmethod
    def of(cls, file: str, node: yaml.Node | None) -> _Loc:
        return cls(file, node.start_mark.line + 1 if node is not None else 1, node)

    def __getitem__(self, key: str | int) -> _Loc:
        """The place of a key's value or an item; this place when it is not found."""
        node = self.node
        if isinstance(node, yaml.MappingNode):
            for k, v in node.value:
                if k.value == key:
                    return _Loc.of(self.file, v)
        elif isinstance(node, yaml.SequenceNode) and isinstance(key, int) and key < len(node.value):
            return _Loc.of(self.file, node.value[key])
        return _Loc(self.file, self.line)

    def key(self, name: str) -> _Loc:
        """The place of a key itself (to point at an unknown key)."""
        if isinstance(self.node, yaml.MappingNode):
            for k, _ in self.node.value:
                if k.value == name:
                    return _Loc.of(self.file, k)
        return _Loc(self.file, self.line)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


def _refuse(loc: _Loc, message: str) -> ValidationError:
    return ValidationError(f"{loc}: {message}")


# ---------------------------------------------------------------------------------------
# Reading YAML as js-yaml does (YAML 1.2 core schema)
# ---------------------------------------------------------------------------------------

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


def _core(node: yaml.Node) -> Any:
    """Plain data from a node tree, scalars resolved as js-yaml resolves them."""
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            key = _core(key_node)
            result[key if isinstance(key, str) else js_string(key)] = _core(value_node)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [_core(item) for item in node.value]
    if node.style is None:  # plain scalar: the only kind whose type is implied
        return _core_scalar(node.value)
    return node.value


def _yaml_core_load(text: str, source: str) -> tuple[Any, yaml.Node | None]:
    _, root = yamlio.load(text, source)
    return (_core(root) if root is not None else None), root


# ---------------------------------------------------------------------------------------
# JavaScript's view of values
# ---------------------------------------------------------------------------------------

#: JavaScript's whitespace and line terminators (``\s``, ``String.prototype.trim``).
_JS_WHITESPACE = "".join(
    chr(c)
    for c in (
        9,
        10,
        11,
        12,
        13,
        32,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
        0xFEFF,
    )
)
_JS_SPACE_CLASS = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def js_trim(text: str) -> str:
    """``String.prototype.trim``: JavaScript's whitespace (not Python's ``str.strip``)."""
    return text.strip(_JS_WHITESPACE)


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript writes it (``true``, ``1``, ``1e+21``, ``a,b``)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def _js_number(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    text = repr(number)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if -7 < power < 21:  # JavaScript writes these positionally
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_parse(text: str) -> Any:
    """``JSON.parse``: strict JSON (no ``NaN`` or ``Infinity``).

    Raises:
        ValueError: the text is not JSON.
    """
    return json.loads(text, parse_constant=_no_constants)


def js_equal(a: Any, b: Any) -> bool:
    """Node's ``util.isDeepStrictEqual`` for JSON data (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(js_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(js_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


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
        return _yaml_core_load(_slash_comments_to_hash(text), "<output>")[0]
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


# ---------------------------------------------------------------------------------------
# JavaScript regular expressions, translated to Python's re
# ---------------------------------------------------------------------------------------


class RegexTranslationError(ValueError):
    """A JavaScript pattern that Python cannot match the same way (or that is invalid)."""


_JS_DOT = r"[^\n\r\u2028\u2029]"
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_HEX = "0123456789abcdefABCDEF"
_SET_LETTERS = "dDwWsS"


def js_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``new RegExp(pattern)`` (no flags) as an equivalent Python pattern.

    JavaScript's semantics are kept: ``$`` matches only at the very end (not before a
    final newline), ``.`` stops at ``\\r`` and ``\\u2028`` too, ``\\d``/``\\w``/``\\b`` are
    ASCII, ``\\s`` is JavaScript's whitespace, ``(?<name>...)`` is a named group, ``[]``
    matches nothing and ``[^]`` anything, and escapes such as ``\\A`` or ``\\Z`` mean the
    letter itself. Backreferences, inline flags and variable-width look-behinds are
    refused.

    Raises:
        RegexTranslationError: invalid in JavaScript, or not translatable.
    """
    translated = _Translator(pattern).run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return re.compile(translated, re.ASCII)
        except re.error as exc:
            if "look-behind" in str(exc):
                raise RegexTranslationError(
                    "a look-behind must have a fixed width in Python"
                ) from None
            raise RegexTranslationError(f"invalid regular expression: {exc}") from None


class _Translator:
    """One pass over a JavaScript pattern (non-Unicode mode, Annex B syntax)."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.out: list[str] = []

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape(in_class=False))
            elif c == "[":
                self.out.append(self.char_class())
            elif c == "(":
                self.out.append(self.group())
            elif c == ".":
                self.out.append(_JS_DOT)
                self.i += 1
            elif c == "$":
                self.out.append(r"\Z")
                self.i += 1
            elif c == "{" and (m := _QUANTIFIER.match(p, self.i)):
                self.out.append(m.group(0))
                self.i = m.end()
                self.after_quantifier()
            elif c in "{}]":  # not a quantifier: JavaScript reads them as themselves
                self.out.append("\\" + c)
                self.i += 1
            elif c in "*+?":
                self.out.append(c)
                self.i += 1
                self.after_quantifier()
            else:
                if ord(c) > 0xFFFF and p[self.i + 1 : self.i + 2] in ("*", "+", "?", "{"):
                    raise RegexTranslationError(
                        f"a quantifier after {c!r}: JavaScript repeats only half of it"
                    )
                self.out.append(c)
                self.i += 1
        return "".join(self.out)

    def after_quantifier(self) -> None:
        if self.p[self.i : self.i + 1] == "?":
            self.out.append("?")
            self.i += 1
        if self.p[self.i : self.i + 1] == "+":
            raise RegexTranslationError("nothing to repeat (JavaScript has no possessive '+')")

    def group(self) -> str:
        p, i = self.p, self.i
        if not p.startswith("(?", i):
            self.i += 1
            return "("
        for opening in ("(?:", "(?=", "(?!", "(?<=", "(?<!"):
            if p.startswith(opening, i):
                self.i += len(opening)
                return opening
        if p.startswith("(?<", i):
            end = p.find(">", i + 3)
            name = p[i + 3 : end] if end != -1 else ""
            if not name.isidentifier():
                raise RegexTranslationError(f"invalid group name in {p[i : end + 1 or None]!r}")
            self.i = end + 1
            return f"(?P<{name}>"
        raise RegexTranslationError(
            f"{p[i : i + 3]!r} is not JavaScript syntax (no inline flags, atomic groups, "
            "comments or conditionals)"
        )

    def escape(self, *, in_class: bool) -> str:
        """The escape at ``self.i`` (a backslash), as Python pattern text."""
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise RegexTranslationError("the pattern ends with a backslash")
        e, self.i = p[i + 1], i + 2
        if e in "dDwW" or e in "tnvfr" or (e in "bB" and not in_class):
            return "\\" + e
        if e == "s":
            return _JS_SPACE_CLASS if in_class else f"[{_JS_SPACE_CLASS}]"
        if e == "S":
            return f"[^{_JS_SPACE_CLASS}]"
        if e == "b":  # in a class: backspace
            return r"\x08"
        if e == "0" and not p[self.i : self.i + 1].isdigit():
            return r"\x00"
        if e.isdigit():
            raise RegexTranslationError(
                f"'\\{e}': backreferences and octal escapes are not supported"
            )
        if e == "k" and p[self.i : self.i + 1] == "<":
            raise RegexTranslationError("named backreferences (\\k<name>) are not supported")
        if e == "c":
            letter = p[self.i : self.i + 1]
            if letter.isascii() and (
                letter.isalpha() or (in_class and (letter.isdigit() or letter == "_"))
            ):
                self.i += 1
                return f"\\x{ord(letter) % 32:02x}"
            self.i = i + 1  # a backslash as itself; the 'c' is read next
            return r"\\"
        if e == "x" and len(h := p[self.i : self.i + 2]) == 2 and all(ch in _HEX for ch in h):
            self.i += 2
            return "\\x" + h
        if e == "u" and len(h := p[self.i : self.i + 4]) == 4 and all(ch in _HEX for ch in h):
            if 0xD800 <= int(h, 16) <= 0xDFFF:
                raise RegexTranslationError(
                    f"'\\u{h}': surrogate code units have no Python equivalent"
                )
            self.i += 4
            return "\\u" + h
        if ord(e) > 0xFFFF:
            raise RegexTranslationError(f"{e!r} after a backslash: JavaScript escapes half of it")
        return re.escape(e)  # Annex B: any other escaped character is itself

    def char_class(self) -> str:
        p = self.p
        self.i += 1
        negate = p[self.i : self.i + 1] == "^"
        self.i += negate
        items: list[str] = []
        any_nonspace = False  # \S inside a class
        after_set = False  # the previous item was a set such as \d
        while True:
            if self.i >= len(p):
                raise RegexTranslationError("unterminated character class")
            c = p[self.i]
            if c == "]":
                self.i += 1
                break
            if c == "\\":
                letter = p[self.i + 1 : self.i + 2]
                if letter == "S":
                    any_nonspace, after_set = True, True
                    self.i += 2
                    continue
                is_set = letter != "" and letter in _SET_LETTERS
                if is_set and items and items[-1] == "-" and len(items) > 1:
                    items[-1] = r"\-"  # x-\d: JavaScript reads the dash as itself
                items.append(self.escape(in_class=True))
                after_set = is_set
                continue
            if c == "-":
                # A dash beside a set (\d-x) or after a range's dash is literal.
                next_is_set = p[self.i + 1 : self.i + 2] == "\\" and p[self.i + 2 : self.i + 3] in (
                    tuple(_SET_LETTERS)
                )
                literal = after_set or next_is_set or (items[-1:] == ["-"])
                items.append(r"\-" if literal else "-")
            elif c in "[&~|^":
                items.append("\\" + c)
            elif ord(c) > 0xFFFF:
                raise RegexTranslationError(
                    f"{c!r} in a character class: JavaScript sees two halves of it"
                )
            else:
                items.append(c)
            after_set = False
            self.i += 1
        body = "".join(items)
        if any_nonspace:
            if negate:
                return f"(?:(?![{body}])[{_JS_SPACE_CLASS}])" if body else f"[{_JS_SPACE_CLASS}]"
            return f"(?:[^{_JS_SPACE_CLASS}]|[{body}])" if body else f"[^{_JS_SPACE_CLASS}]"
        if not body:
            return r"[\s\S]" if negate else r"[^\s\S]"
        return f"[{'^' if negate else ''}{body}]"


@functools.cache
def _list_splitter() -> re.Pattern[str]:
    # promptfoo's own split of a contains-any string, in JavaScript syntax.
    return js_regex(r'(".*?"|[^,]+)(?=\s*,|\s*$)')


def split_any(value: str) -> list[str]:
    """How ``contains-any`` splits a string: at commas, but not inside ``"quotes"``."""
    return [re.sub(r'^"|"\Z', "", js_trim(m.group(0))) for m in _list_splitter().finditer(value)]


def split_all(value: str) -> list[str]:
    """How ``contains-all`` and the ``icontains-`` forms split a string: at every comma."""
    return [js_trim(part) for part in value.split(",")]


# ---------------------------------------------------------------------------------------
# Assertions
# ---------------------------------------------------------------------------------------

_TEXT_TYPES = ("contains", "icontains", "equals", "starts-with", "regex")
_LIST_TYPES = ("contains-any", "contains-all", "icontains-any", "icontains-all")
_JSON_TYPES = ("is-json", "contains-json")
_FIGURE_TYPES = ("latency", "cost")
_INVERTIBLE = (*_TEXT_TYPES, *_LIST_TYPES, *_JSON_TYPES)
SUPPORTED_TYPES = (*_INVERTIBLE, *(f"not-{t}" for t in _INVERTIBLE), *_FIGURE_TYPES)
"""The assertion types this module runs."""

#: promptfoo 0.120.0's own assertion types (``BaseAssertionTypesSchema``): the CSV
#: shorthand recognises exactly these, and any not in SUPPORTED_TYPES is refused by name.
# fmt: off
PROMPTFOO_TYPES = (
    "answer-relevance", "bleu", "classifier", "contains", "contains-all", "contains-any",
    "contains-html", "contains-json", "contains-sql", "contains-xml", "context-faithfulness",
    "context-recall", "context-relevance", "conversation-relevance", "cost", "equals",
    "factuality", "finish-reason", "g-eval", "gleu", "guardrails", "icontains",
    "icontains-all", "icontains-any", "is-html", "is-json", "is-refusal", "is-sql",
    "is-valid-function-call", "is-valid-openai-function-call", "is-valid-openai-tools-call",
    "is-xml", "javascript", "latency", "levenshtein", "llm-rubric", "pi", "meteor",
    "model-graded-closedqa", "model-graded-factuality", "moderation", "perplexity",
    "perplexity-score", "python", "regex", "rouge-n", "ruby", "similar", "similar:cosine",
    "similar:dot", "similar:euclidean", "starts-with", "trace-error-spans", "trace-span-count",
    "trace-span-duration", "search-rubric", "webhook",
)
# fmt: on
_SPECIAL_TYPES = ("assert-set", "select-best", "human", "max-score")
_ASSERTION_KEYS = ("type", "value", "threshold", "weight", "metric")


@dataclass(frozen=True)
class PromptfooAssertion:
    """One promptfoo assertion, checked with promptfoo 0.120.0's semantics.

    Attributes:
        type: as written (``not-icontains``).
        value: rendered with the test's variables, as promptfoo renders it; lists for the
            ``-any``/``-all`` types, the schema for the JSON types.
        threshold: the limit of ``latency`` (ms) and ``cost`` (USD); ignored by the others,
            as in promptfoo.
        weight: its share of a test's score; a weight of 0 never fails the test.
    """

    type: str
    value: Any = None
    threshold: float | None = None
    weight: float = 1.0
    pattern: re.Pattern[str] | None = field(default=None, repr=False, compare=False)
    validator: Any = field(default=None, repr=False, compare=False)

    def check(self, seen: Observation) -> Verdict:
        """Pass or fail, and why (a weight-0 assertion always passes, as in promptfoo)."""
        verdict = self.evaluate(seen)
        if self.weight == 0 and not verdict.passed:
            return Verdict(True, f"weight 0, not counted ({verdict.reason})")
        return verdict

    def evaluate(self, seen: Observation) -> Verdict:
        """The assertion's own verdict, weight aside."""
        inverse = self.type.startswith("not-")
        base = self.type.removeprefix("not-")
        out = seen.output
        if base in _FIGURE_TYPES:
            return self._figure(base, seen)
        if base == "is-json":
            return self._is_json(out, inverse)
        if base == "contains-json":
            return self._contains_json(out, inverse)
        if base == "equals" and (self.value is None or isinstance(self.value, dict | list)):
            try:
                held = js_equal(self.value, json_parse(out))
            except ValueError:  # promptfoo fails here, not- or not
                return Verdict(
                    False,
                    f"output is not JSON, so it cannot {'not ' * inverse}equal "
                    f"{_short(json.dumps(self.value, ensure_ascii=False))}",
                )
        else:
            held = self._text(base, out)
        passed = held != inverse
        return Verdict(passed, "ok" if passed else self._failure(base, inverse, out))

    def _text(self, base: str, out: str) -> bool:
        value = self.value
        if base == "contains":
            return js_string(value) in out
        if base == "icontains":
            return js_string(value).lower() in out.lower()
        if base == "equals":
            return js_string(value) == out
        if base == "starts-with":
            return out.startswith(value)
        if base == "regex":
            assert self.pattern is not None
            return self.pattern.search(out) is not None
        lower = base.startswith("i")
        hay = out.lower() if lower else out
        needles = [js_string(v).lower() if lower else js_string(v) for v in value]
        if base.endswith("-any"):
            return any(n in hay for n in needles)
        return all(n in hay for n in needles)

    def _failure(self, base: str, inverse: bool, out: str) -> str:
        verb = "not " if inverse else ""
        if base == "equals":
            return f"expected output {_short(out)} to {verb}equal {_short(js_string(self.value))}"
        if base == "starts-with":
            return f"expected output to {verb}start with {_short(self.value)}"
        if base == "regex":
            return f"expected output to {verb}match /{self.value}/"
        if base in _LIST_TYPES:
            which = "one of" if base.endswith("-any") else "all of"
            items = ", ".join(js_string(v) for v in self.value)
            return f"expected output to {verb}contain {which} [{_short(items)}]"
        case = " (any case)" if base == "icontains" else ""
        return f"expected output to {verb}contain {_short(js_string(self.value))}{case}"

    def _is_json(self, out: str, inverse: bool) -> Verdict:
        try:
            parsed = json_parse(out)
        except ValueError:
            return Verdict(inverse, "ok" if inverse else "expected output to be valid JSON")
        if inverse:
            return Verdict(False, "expected output to not be valid JSON")
        return self._conforms(parsed) if self.validator is not None else Verdict(True, "ok")

    def _contains_json(self, out: str, inverse: bool) -> Verdict:
        found = extract_json_objects(out)
        if inverse:
            return Verdict(not found, "ok" if not found else "expected output to not contain JSON")
        if not found:
            return Verdict(False, "expected output to contain valid JSON")
        if self.validator is None:
            return Verdict(True, "ok")
        verdict = Verdict(False, "no JSON found")
        for obj in found:
            verdict = self._conforms(obj)
            if verdict.passed:
                break
        return verdict

    def _conforms(self, data: Any) -> Verdict:
        import jsonschema

        error = jsonschema.exceptions.best_match(self.validator.iter_errors(data))
        if error is None:
            return Verdict(True, "ok")
        path = "/".join(str(p) for p in error.absolute_path) or "(root)"
        return Verdict(False, f"JSON does not conform to the schema at {path}: {error.message}")

    def _figure(self, base: str, seen: Observation) -> Verdict:
        figure, unit = (seen.latency_ms, "ms") if base == "latency" else (seen.cost_usd, "USD")
        limit = self.threshold
        assert limit is not None
        if figure is None:
            return Verdict(False, f"{base} unknown for this run; threshold {limit:g} {unit}")
        passed = figure <= limit
        return Verdict(
            passed,
            "ok"
            if passed
            else f"{base} {figure:g} {unit} is greater than the threshold {limit:g} {unit}",
        )

    def describe(self) -> dict[str, Any]:
        """Plain data (for the suite's fingerprint)."""
        return {
            "type": self.type,
            "value": self.value,
            "threshold": self.threshold,
            "weight": self.weight,
        }


@dataclass(frozen=True)
class ScoreThreshold:
    """A test's ``threshold``: the weighted share of its assertions that pass must reach it
    (promptfoo's aggregate score), instead of every assertion passing."""

    threshold: float
    assertions: tuple[PromptfooAssertion, ...]
    type: str = "threshold"

    def check(self, seen: Observation) -> Verdict:
        """Pass when the aggregate score reaches the threshold."""
        verdicts = [a.evaluate(seen) for a in self.assertions]
        total = sum(a.weight for a in self.assertions)
        scored = sum(a.weight for a, v in zip(self.assertions, verdicts, strict=True) if v.passed)
        score = scored / total if total > 0 else 0.0
        passed = score >= self.threshold
        reason = f"score {score:.2f} {'>=' if passed else '<'} threshold {self.threshold:g}"
        failed = [
            f"{a.type}: {v.reason}"
            for a, v in zip(self.assertions, verdicts, strict=True)
            if not v.passed
        ]
        return Verdict(passed, reason + (f" ({'; '.join(failed)})" if failed else ""))

    def describe(self) -> dict[str, Any]:
        """Plain data (for the suite's fingerprint)."""
        return {
            "type": self.type,
            "threshold": self.threshold,
            "assertions": [a.describe() for a in self.assertions],
        }


def _short(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def parse_assertion(raw: Any, variables: dict[str, Any], loc: _Loc) -> PromptfooAssertion:
    """One assertion of a test, its value rendered with the test's variables.

    Raises:
        ValidationError: an unsupported type or key, or a value promptfoo would reject
            (naming the file and line).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise _refuse(loc, "an assertion is a mapping with a 'type'")
    kind = raw["type"]
    _check_type(kind, loc)
    unknown = [k for k in raw if k not in _ASSERTION_KEYS]
    if unknown:
        raise _refuse(
            loc.key(unknown[0]),
            f"{kind}: assertion key {unknown[0]!r} is not "
            f"supported (supported: {', '.join(_ASSERTION_KEYS)})",
        )
    for key in ("threshold", "weight"):
        if key in raw and not _is_number(raw[key]):
            raise _refuse(loc[key], f"{kind}: {key} must be a number")
    if "metric" in raw and not isinstance(raw["metric"], str):
        raise _refuse(loc["metric"], f"{kind}: metric must be a string")
    base = kind.removeprefix("not-")
    threshold = raw.get("threshold")
    weight = raw.get("weight", 1)
    if base in _FIGURE_TYPES:
        if threshold is None:
            unit = "milliseconds" if base == "latency" else "US dollars"
            raise _refuse(loc, f"{kind} needs a threshold (in {unit})")
        return PromptfooAssertion(kind, None, float(threshold), float(weight))
    if "value" not in raw and base not in _JSON_TYPES:
        raise _refuse(loc, f"{kind} needs a value")
    value_loc = loc["value"] if "value" in raw else loc
    value = _render_value(raw.get("value"), variables, value_loc)
    pattern = validator = None
    if base in _TEXT_TYPES:
        value, pattern = _text_value(kind, base, value, value_loc)
    elif base in _LIST_TYPES:
        value = _list_value(kind, base, value, value_loc)
    else:
        value, validator = _schema_value(kind, value, value_loc)
    return PromptfooAssertion(
        kind,
        value,
        None if threshold is None else float(threshold),
        float(weight),
        pattern,
        validator,
    )


def _check_type(kind: str, loc: _Loc) -> None:
    if kind in SUPPORTED_TYPES:
        return
    base = kind.removeprefix("not-")
    if base in _FIGURE_TYPES:
        raise _refuse(
            loc,
            f"assertion type {kind!r} is not supported (promptfoo ignores the "
            f"'not-' of {base}; write {base})",
        )
    if base in PROMPTFOO_TYPES or kind in _SPECIAL_TYPES or kind.startswith("promptfoo:"):
        raise _refuse(
            loc,
            f"assertion type {kind!r} is not supported by Workbench "
            f"(supported: {', '.join(SUPPORTED_TYPES)})",
        )
    raise _refuse(loc, f"unknown assertion type {kind!r} (supported: {', '.join(SUPPORTED_TYPES)})")


def _render_value(value: Any, variables: dict[str, Any], loc: _Loc) -> Any:
    """Render a string value, or each string in a list, as promptfoo does (Nunjucks there)."""
    if isinstance(value, str):
        return _render_text(value, variables, loc)
    if isinstance(value, list):
        return [_render_text(v, variables, loc) if isinstance(v, str) else v for v in value]
    return value


def _render_text(text: str, variables: dict[str, Any], loc: _Loc) -> str:
    if text.startswith("file://") or text.startswith("package:"):
        raise _refuse(loc, f"assertion values from files are not supported ({_short(text)})")
    if not any(tag in text for tag in ("{{", "{%", "{#")):
        return text
    try:
        return templates.render(text, variables, where="assertion value")
    except templates.TemplateError as exc:
        raise _refuse(loc, str(exc)) from None


def _text_value(kind: str, base: str, value: Any, loc: _Loc) -> tuple[Any, re.Pattern[str] | None]:
    if base == "equals":
        return value, None
    if base in ("starts-with", "regex"):
        if not isinstance(value, str) or not value:
            raise _refuse(loc, f"{kind} needs a non-empty string value")
    elif (not isinstance(value, str) and not _is_number(value)) or not value:
        # promptfoo: invariant(value) -- so "" and 0 are errors there too.
        raise _refuse(loc, f"{kind} needs a non-empty string or number value (not {value!r})")
    if base != "regex":
        return value, None
    try:
        return value, js_regex(value)
    except RegexTranslationError as exc:
        raise _refuse(loc, f"{kind} /{value}/: {exc}") from None


def _list_value(kind: str, base: str, value: Any, loc: _Loc) -> list[Any]:
    if isinstance(value, str) and value:
        return split_any(value) if base == "contains-any" else split_all(value)
    if isinstance(value, list):
        return value
    raise _refuse(loc, f"{kind} needs a list or a comma-separated string value")


def _schema_value(kind: str, value: Any, loc: _Loc) -> tuple[Any, Any]:
    if value is None or value == "" or value is False or value == 0:
        return None, None  # promptfoo: no schema when the value is falsy
    if kind.startswith("not-"):
        raise _refuse(
            loc,
            f"{kind} with a schema is not supported (promptfoo 0.120.0 does not "
            "invert the schema check)",
        )
    schema = value
    if isinstance(value, str):
        try:
            schema = _yaml_core_load(value, f"{loc} ({kind} schema)")[0]
        except WorkbenchError as exc:
            raise _refuse(loc, f"{kind}: the schema is not valid YAML/JSON ({exc})") from None
    if not isinstance(schema, dict | bool):
        raise _refuse(loc, f"{kind}: the value must be a JSON Schema (a mapping)")
    import jsonschema

    # promptfoo validates with Ajv: draft-07, formats checked.
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise _refuse(loc, f"{kind}: invalid JSON Schema: {exc.message}") from None
    validator = jsonschema.Draft7Validator(
        schema, format_checker=jsonschema.Draft7Validator.FORMAT_CHECKER
    )
    return schema, validator


@functools.cache
def _shorthand() -> re.Pattern[str]:
    types = "|".join(re.escape(t) for t in PROMPTFOO_TYPES)
    return re.compile(rf"(not-)?({types})(?:\(([0-9]+(?:\.[0-9]+)?)\))?(?::(.*))?\Z", re.DOTALL)


def assertion_from_string(expected: str) -> dict[str, Any]:
    """promptfoo's ``assertionFromString``: a CSV ``__expected`` cell as an assertion.

    ``contains:foo``, ``not-icontains:bar``, ``contains-any:a,b``, ``regex:^\\d+$``,
    ``is-json``, ``latency(500)``; anything else means ``equals``. ``javascript:``,
    ``fn:``, ``eval:``, ``python:``, ``grade:`` and ``llm-rubric:`` name their types (which
    Workbench then refuses).
    """
    for prefix, kind in (
        ("javascript:", "javascript"),
        ("fn:", "javascript"),
        ("eval:", "javascript"),
        ("grade:", "llm-rubric"),
        ("llm-rubric:", "llm-rubric"),
        ("python:", "python"),
    ):
        if expected.startswith(prefix):
            return {"type": kind, "value": js_trim(expected[len(prefix) :])}
    if expected.startswith("file://"):
        script = expected[7:].split(":")[0]
        if re.search(r"\.[cm]?[jt]sx?\Z", script):
            return {"type": "javascript", "value": expected}
        if script.endswith(".py"):
            return {"type": "python", "value": expected}
    match = _shorthand().match(expected)
    if match is None:
        return {"type": "equals", "value": expected}
    negate, kind, threshold, value = match.groups()
    full = f"not-{kind}" if negate else kind
    if kind in _LIST_TYPES:
        return {"type": full, "value": split_all(value) if value else value}
    if kind in _JSON_TYPES:
        return {"type": full, "value": value}
    result: dict[str, Any] = {"type": full, "value": js_trim(value) if value is not None else None}
    if kind in (
        "answer-relevance",
        "classifier",
        "context-faithfulness",
        "context-recall",
        "context-relevance",
        "cost",
        "latency",
        "levenshtein",
        "perplexity-score",
        "perplexity",
        "rouge-n",
        "similar",
        "starts-with",
    ):
        # Without "(N)", promptfoo gives these a threshold of 0.75 (0.8 for similar), so
        # "latency:500" means 0.75 ms: write "latency(500)".
        result["threshold"] = (
            float(threshold) if threshold else (0.8 if kind == "similar" else 0.75)
        )
    return result


# ---------------------------------------------------------------------------------------
# Prompts
# ---------------------------------------------------------------------------------------

_PROMPT_KEYS = ("id", "label", "raw")
# fmt: off
_FILE_EXTENSIONS = (".cjs", ".cts", ".j2", ".js", ".json", ".jsonl", ".md", ".mjs", ".mts",
                    ".py", ".ts", ".txt", ".yml", ".yaml")
# fmt: on
_GLOB_MAGIC = re.compile(r"[*?[]|\{[^}]*(,|\.\.)[^}]*\}|[+@!]\(")


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


def _load_prompts(raw: Any, loc: _Loc, base: Path) -> list[Variant]:
    """Every prompt of ``prompts``, in promptfoo's order, as variants labelled as promptfoo
    labels them."""
    entries: list[tuple[str, str | None, _Loc]] = []
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
                raise _refuse(loc[text], "in a prompts mapping, each value is the label (text)")
            entries.append((text, label, loc.key(text)))
    else:
        raise _refuse(loc, "prompts: a prompt, a list of prompts, or a mapping of prompt to label")
    variants: list[Variant] = []
    seen: set[str] = set()
    for text, label, where in entries:
        for variant in _expand_prompt(text, label, where, base):
            if variant.label in seen:
                raise _refuse(
                    where,
                    f"two prompts have the label {_short(variant.label)}; give one of them a label",
                )
            seen.add(variant.label)
            variants.append(variant)
    return variants


def _prompt_entry(item: Any, loc: _Loc) -> tuple[str, str | None, _Loc]:
    if isinstance(item, str):
        return item, None, loc
    if not isinstance(item, dict):
        raise _refuse(loc, "a prompt is text or a mapping with id, label and raw")
    unknown = [k for k in item if k not in _PROMPT_KEYS]
    if unknown:
        raise _refuse(
            loc.key(unknown[0]),
            f"prompt key {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_PROMPT_KEYS)}; model settings go in "
            "providers[].config)",
        )
    for key in _PROMPT_KEYS:
        if key in item and not isinstance(item[key], str):
            raise _refuse(loc[key], f"prompt {key} must be text")
    if "id" not in item and not ("raw" in item and "label" in item):
        raise _refuse(loc, "a prompt mapping needs an id, or raw (the prompt) and a label")
    text = item.get("raw") or item.get("id")
    if not text:
        raise _refuse(loc, "a prompt mapping needs raw (the prompt) or an id")
    return text, item.get("label"), loc


def _expand_prompt(text: str, label: str | None, loc: _Loc, base: Path) -> list[Variant]:
    if text.startswith(("exec:", "portkey://", "langfuse://", "helicone://")):
        raise _refuse(
            loc,
            f"prompt {_short(text)}: only inline text and file:// .txt and "
            ".json prompts are supported",
        )
    if not _maybe_file_path(text):
        return [_variant(text, label if label is not None else text, loc)]
    relative = text.removeprefix("file://")
    if _GLOB_MAGIC.search(relative):
        if text.startswith("file://") or glob.glob(str(base / relative)):
            raise _refuse(
                loc, f"prompt {_short(text)}: file patterns are not supported; name each file"
            )
        # promptfoo globs, finds nothing, and uses the text itself.
        return [_variant(text, label if label is not None else text, loc)]
    path = base / relative
    if not path.is_file():
        if text.startswith("file://"):
            raise _refuse(loc, f"prompt file {relative} not found (looked for {path})")
        raise _refuse(
            loc,
            f"promptfoo reads the prompt {_short(text)} as a file path and there "
            f"is no such file; for inline text, avoid '/', '\\', '*' and a '.' "
            "near the end, or use a multi-line prompt",
        )
    shown = posixpath.normpath(relative.replace("\\", "/"))
    try:
        content = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(loc, f"cannot read prompt file {relative}: {exc}") from None
    if path.suffix == ".txt":
        return [
            _variant(part, f"{label}: {shown}: {part}" if label else f"{shown}: {part}", loc)
            for part in _split_prompts(content)
        ]
    if path.suffix == ".json":
        try:
            data = json_parse(content)
        except ValueError as exc:
            raise _refuse(loc, f"prompt file {relative} is not valid JSON: {exc}") from None
        compact = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return [_chat_variant(data, label or f"{shown}: {compact}", loc, relative)]
    raise _refuse(loc, f"prompt file {relative}: only .txt and .json prompt files are supported")


def _split_prompts(content: str) -> Iterator[str]:
    """promptfoo's ``.txt`` prompts: split at lines that are ``---``, trimmed, empty ones
    dropped."""
    buffer: list[str] = []
    for line in [*re.split(r"\r?\n", content), "---"]:
        if line.strip(_JS_WHITESPACE) == "---":
            part = js_trim("\n".join(buffer))
            if part:
                yield part
            buffer = []
        else:
            buffer.append(line)


def _variant(text: str, label: str, loc: _Loc) -> Variant:
    """A prompt's text as a variant: one user message, or the chat a JSON text holds."""
    try:
        data = json_parse(text)
    except ValueError:
        data = text
    if isinstance(data, list | dict):
        return _chat_variant(data, label, loc, "the prompt")
    if js_trim(text).startswith("- role:"):
        raise _refuse(
            loc, "YAML chat prompts are not supported; write the messages as JSON in a .json file"
        )
    return _chat_variant([{"role": "user", "content": text}], label, loc, "the prompt")


def _chat_variant(data: Any, label: str, loc: _Loc, what: str) -> Variant:
    """Chat messages (``[{"role": ..., "content": ...}]``), checked and compiled."""
    if not isinstance(data, list) or not data:
        raise _refuse(loc, f"{what} is JSON but not a list of chat messages")
    messages = []
    for index, item in enumerate(data):
        if not isinstance(item, dict) or set(item) != {"role", "content"}:
            raise _refuse(loc, f"{what}: message {index + 1} must have exactly role and content")
        try:
            message = Message.model_validate(item)
        except PydanticValidationError as exc:
            problem = exc.errors()[0]
            raise _refuse(
                loc,
                f"{what}: message {index + 1}: "
                f"{'.'.join(map(str, problem['loc']))}: {problem['msg']}",
            ) from None
        if message.content.startswith("file://"):
            raise _refuse(loc, f"{what}: message {index + 1}: file:// contents are not supported")
        try:
            templates.compile_template(
                message.content, where=templates.message_label(index, message.role)
            )
        except templates.TemplateError as exc:
            raise _refuse(loc, f"prompt {_short(label)}: {exc}") from None
        messages.append(message)
    return Variant(label=label, messages=tuple(messages))


# ---------------------------------------------------------------------------------------
# Providers
# ---------------------------------------------------------------------------------------

#: promptfoo provider -> litellm provider prefix.
_LITELLM_PREFIX = {
    "openai": "openai",
    "anthropic": "anthropic",
    "ollama": "ollama",
    "azure": "azure",
    "openrouter": "openrouter",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "togetherai": "together_ai",
    "perplexity": "perplexity",
    "xai": "xai",
    "fireworks": "fireworks_ai",
    "cerebras": "cerebras",
    "cohere": "cohere_chat",
    "google": "gemini",
    "vertex": "vertex_ai",
    "bedrock": "bedrock",
    "huggingface": "huggingface",
    "hf": "huggingface",
    # OpenAI-compatible servers: a LocalAI server and a LiteLLM proxy.
    "localai": "openai",
    "litellm": "openai",
}
#: The second part of an id that names the chat API (``openai:chat:MODEL``).
_CHAT_KIND = {
    "openai": "chat",
    "anthropic": "messages",
    "ollama": "chat",
    "azure": "chat",
    "togetherai": "chat",
    "mistral": "chat",
    "cohere": "chat",
    "vertex": "chat",
    "localai": "chat",
    "litellm": "chat",
    "bedrock": "converse",
    "huggingface": "text-generation",
    "hf": "text-generation",
}
#: Second parts that name other APIs (embeddings, images, agents...).
# fmt: off
_OTHER_KINDS = frozenset((
    "completion", "embedding", "embeddings", "moderation", "realtime", "responses",
    "transcription", "assistant", "image", "agents", "chatkit", "codex", "codex-sdk", "live",
    "audio", "claude-agent-sdk", "claude-code", "kb", "knowledge-base", "nova-sonic",
    "feature-extraction", "sentence-similarity", "text-classification", "token-classification",
    "foundry-agent",
))
# fmt: on
#: Where promptfoo sends these when no apiBaseUrl is given (Ollama: $OLLAMA_BASE_URL first).
_DEFAULT_BASE = {
    "localai": "http://localhost:8080/v1",
    "litellm": "http://0.0.0.0:4000",
    "ollama": "http://localhost:11434",
}
#: Families whose ids must name the chat API.
_KIND_REQUIRED = frozenset({"azure", "huggingface", "hf"})
_PROVIDER_KEYS = ("id", "label", "config")
_CONFIG_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop")
_CONFIG_KEYS = ("apiBaseUrl", "apiKey", *_CONFIG_PARAMS)
# fmt: off
SUPPORTED_PROVIDERS = (
    "echo", "openai:chat:MODEL", "openai:MODEL", "anthropic:messages:MODEL", "anthropic:MODEL",
    "ollama:chat:MODEL", "ollama:MODEL", "azure:chat:DEPLOYMENT", "openrouter:MODEL",
    "groq:MODEL", "mistral:MODEL", "deepseek:MODEL", "togetherai:MODEL", "perplexity:MODEL",
    "xai:MODEL", "fireworks:MODEL", "cerebras:MODEL", "cohere:MODEL", "google:MODEL",
    "vertex:MODEL", "bedrock:MODEL", "bedrock:converse:MODEL",
    "huggingface:text-generation:MODEL", "localai:MODEL", "litellm:MODEL",
)
# fmt: on
"""The provider ids this module maps (``MODEL`` is any model name)."""


def litellm_id(provider_id: str) -> str | None:
    """The litellm model id of a promptfoo provider id, or None when there is none.

    ``openai:chat:gpt-4o-mini`` -> ``openai/gpt-4o-mini``, ``anthropic:messages:M`` ->
    ``anthropic/M``, ``ollama:chat:llama3`` -> ``ollama_chat/llama3``, ``ollama:llama3`` ->
    ``ollama/llama3``; LocalAI and LiteLLM-proxy ids become ``openai/MODEL`` (a server).
    """
    family, _, rest = provider_id.partition(":")
    prefix = _LITELLM_PREFIX.get(family)
    if prefix is None or not rest:
        return None
    kind, _, model = rest.partition(":")
    if family == "ollama" and kind in ("chat", "completion"):
        prefix = "ollama_chat" if kind == "chat" else "ollama"
    elif kind == _CHAT_KIND.get(family) and model:
        prefix = "bedrock/converse" if family == "bedrock" else prefix
    elif kind in _OTHER_KINDS or family in _KIND_REQUIRED:
        return None
    else:
        model = rest
    return f"{prefix}/{model}" if model else None


def _provider_spec(raw: Any, loc: _Loc, settings: Settings) -> ModelSpec:
    """A ``providers`` entry (an id, or ``{id, label, config}``) as a model."""
    if isinstance(raw, str):
        raw = {"id": raw}
    elif isinstance(raw, dict) and len(raw) == 1 and "id" not in raw:
        # promptfoo's {"openai:chat:gpt-4o": {config: ...}} form.
        ((key, options),) = raw.items()
        if not isinstance(options, dict):
            raise _refuse(loc, "a provider is an id or a mapping with id, label and config")
        raw, loc = {"id": key, **options}, loc[key]
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise _refuse(loc, "a provider is an id or a mapping with id, label and config")
    unknown = [k for k in raw if k not in _PROVIDER_KEYS]
    if unknown:
        raise _refuse(
            loc.key(unknown[0]),
            f"provider key {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_PROVIDER_KEYS)})",
        )
    provider_id, label = raw["id"], raw.get("label")
    if label is not None and not isinstance(label, str):
        raise _refuse(loc["label"], "a provider's label is text")
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise _refuse(loc["config"], "a provider's config is a mapping")
    name = label or provider_id
    if provider_id == "echo":
        if config:
            raise _refuse(loc["config"], "the echo provider takes no config")
        return ModelSpec(name=name, backend="echo", options={})
    ref = litellm_id(provider_id)
    if ref is None:
        raise _refuse(
            loc["id"],
            f"provider {provider_id!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_PROVIDERS)})",
        )
    return _model_spec(provider_id, ref, name, config, loc["config"], settings)


def _model_spec(
    provider_id: str, ref: str, name: str, config: dict[str, Any], loc: _Loc, settings: Settings
) -> ModelSpec:
    unknown = [k for k in config if k not in _CONFIG_KEYS]
    if unknown:
        raise _refuse(
            loc.key(unknown[0]),
            f"provider config {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_CONFIG_KEYS)})",
        )
    family = provider_id.partition(":")[0]
    default = os.environ.get("OLLAMA_BASE_URL") if family == "ollama" else None
    base = config.get("apiBaseUrl", default or _DEFAULT_BASE.get(family))
    if base is not None and not isinstance(base, str):
        raise _refuse(loc["apiBaseUrl"], "apiBaseUrl is a URL")
    key = config.get("apiKey")
    if key is not None and (not isinstance(key, str) or "{{" in key):
        # Never echo the value: it may be a real key.
        raise _refuse(
            loc["apiKey"],
            "apiKey must be plain text (templates such as "
            "{{ env.X }} are not supported: leave apiKey out and give Workbench the "
            "key through its keyring or the environment)",
        )
    try:
        params = Params.model_validate(
            {k: config[k] for k in _CONFIG_PARAMS if k in config}
        ).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        problem = exc.errors()[0]
        where = str(problem["loc"][0]) if problem["loc"] else ""
        raise _refuse(
            loc[where] if where else loc, f"provider {name}: {where}: {problem['msg']}"
        ) from None
    try:
        spec = resolve_model(settings, ref, api_base=base)
    except WorkbenchError as exc:
        raise _refuse(loc, f"provider {name}: {exc}") from None
    options = dict(spec.options)
    if key:
        options["api_key"] = SecretStr(key)  # shows as '**********' in any repr
    return replace(spec, name=name, options=options, params={**spec.params, **params})


# ---------------------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------------------

_TEST_KEYS = ("description", "vars", "assert", "threshold", "options", "metadata")
_DEFAULT_TEST_KEYS = ("vars", "assert", "threshold", "options", "metadata")
_CSV_REFUSED = ("__prefix", "__suffix", "__providerOutput")
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)
_FLOAT_PREFIX = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


@dataclass
class _Test:
    """A promptfoo test as written, before defaultTest and var expansion."""

    loc: _Loc
    description: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    asserts: list[tuple[Any, _Loc]] = field(default_factory=list)
    threshold: float | None = None
    expand: bool | None = None
    provider: Any = None


def _parse_test(raw: Any, loc: _Loc, *, default: bool = False) -> _Test:
    """An inline test (or ``defaultTest``)."""
    what = "defaultTest" if default else "a test"
    if not isinstance(raw, dict):
        raise _refuse(
            loc,
            f"{what} is a mapping (vars, assert, ...)"
            + ("; defaultTest files are not supported" if default else ""),
        )
    allowed = _DEFAULT_TEST_KEYS if default else _TEST_KEYS
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise _refuse(
            loc.key(unknown[0]),
            f"{what}: key {unknown[0]!r} is not supported (supported: {', '.join(allowed)})",
        )
    if not default and not any(
        k in raw for k in ("vars", "assert", "options", "metadata", "threshold")
    ):
        raise _refuse(loc, "a test needs vars, assert, options, metadata or threshold")
    test = _Test(loc)
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise _refuse(loc["description"], "a test's description is text")
    test.description = description
    variables = raw.get("vars")
    if isinstance(variables, str | list):
        raise _refuse(
            loc["vars"], "vars from files are not supported; write the variables in the test"
        )
    if variables is not None and not isinstance(variables, dict):
        raise _refuse(loc["vars"], "vars is a mapping of names to values")
    test.vars = dict(variables or {})
    asserts = raw.get("assert")
    if asserts is not None and not isinstance(asserts, list):
        raise _refuse(loc["assert"], "assert is a list of assertions")
    test.asserts = [(a, loc["assert"][i]) for i, a in enumerate(asserts or [])]
    threshold = raw.get("threshold")
    if threshold is not None and not _is_number(threshold):
        raise _refuse(loc["threshold"], "threshold is a number")
    test.threshold = threshold
    _parse_options(raw.get("options"), loc["options"], test, default)
    return test


def _parse_options(options: Any, loc: _Loc, test: _Test, default: bool) -> None:
    if options is None:
        return
    allowed = ("disableVarExpansion", "provider") if default else ("disableVarExpansion",)
    if not isinstance(options, dict):
        raise _refuse(loc, "options is a mapping")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        hint = (
            " (the grader goes in defaultTest.options.provider)" if unknown[0] == "provider" else ""
        )
        raise _refuse(
            loc.key(unknown[0]),
            f"test option {unknown[0]!r} is not supported (supported: {', '.join(allowed)}){hint}",
        )
    if "disableVarExpansion" in options:
        test.expand = not options["disableVarExpansion"]
    test.provider = options.get("provider")


def _load_tests(raw: Any, loc: _Loc, base: Path) -> list[_Test]:
    """``tests``: inline tests and test files, in order."""
    tests: list[_Test] = []
    if isinstance(raw, str):
        tests = _file_tests(raw, loc, base)
    elif isinstance(raw, list):
        for index, item in enumerate(raw):
            where = loc[index]
            if isinstance(item, str):
                tests.extend(_file_tests(item, where, base))
            elif isinstance(item, dict) and "path" in item:
                raise _refuse(where, "test generators ({path: ...}) are not supported")
            else:
                tests.append(_parse_test(item, where))
    elif raw is not None:
        raise _refuse(loc, "tests is a list of tests, or a file:// path to a .csv or .yaml file")
    if not tests:
        raise _refuse(
            loc,
            "no tests: promptfoo 0.120.0 runs nothing without tests (add one, even `- vars: {}`)",
        )
    return tests


def _file_tests(text: str, loc: _Loc, base: Path) -> list[_Test]:
    relative = text.removeprefix("file://")
    if _GLOB_MAGIC.search(relative) or relative.startswith(("https://", "huggingface://")):
        raise _refuse(
            loc, f"tests from {_short(text)}: only single .csv and .yaml files are supported"
        )
    path = base / relative
    shown = str(path)
    if path.suffix not in (".csv", ".yaml", ".yml"):
        raise _refuse(loc, f"tests file {relative}: only .csv and .yaml test files are supported")
    if not path.is_file():
        raise _refuse(loc, f"tests file {relative} not found (looked for {path})")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise _refuse(loc, f"cannot read tests file {relative}: {exc}") from None
    if path.suffix == ".csv":
        return _csv_tests(content, shown)
    data, root = _yaml_core_load(content, shown)
    file_loc = _Loc.of(shown, root)
    items = data if isinstance(data, list) else [data]
    return [
        _parse_test(item, file_loc[i] if isinstance(data, list) else file_loc)
        for i, item in enumerate(items)
    ]


def _csv_rows(content: str, shown: str) -> Iterator[tuple[int, list[str]]]:
    """Each row with the line it starts on (the header first)."""
    # Long documents in a cell are normal for prompts; the default limit is 128 KiB.
    csv.field_size_limit(max(csv.field_size_limit(), 64 * 1024 * 1024))
    reader = csv.reader(content.splitlines(keepends=True))
    while True:
        start = reader.line_num + 1
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise ValidationError(f"{shown}:{start}: invalid CSV: {exc}") from None
        if row:  # blank lines
            yield start, row


def _csv_tests(content: str, shown: str) -> list[_Test]:
    """promptfoo's ``testCaseFromCsvRow`` for each row of a CSV file."""
    rows = _csv_rows(content, shown)
    header = next(rows, None)
    if header is None:
        return []
    columns = [js_trim(c) for c in header[1]]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValidationError(f"{shown}:{header[0]}: duplicate columns {', '.join(duplicates)}")
    tests = []
    for number, (line, row) in enumerate(rows, start=1):
        loc = _Loc(shown, line)
        if len(row) != len(columns):
            raise _refuse(loc, f"{len(row)} fields; the header has {len(columns)} columns")
        test = _Test(loc)
        for column, value in zip(columns, row, strict=True):
            if column.startswith("__expected"):
                if js_trim(value):
                    test.asserts.append((assertion_from_string(js_trim(value)), loc))
            elif column in _CSV_REFUSED or column.startswith("__config:"):
                raise _refuse(loc, f"the CSV column {column} is not supported")
            elif column == "__description":
                test.description = value
            elif column == "__threshold":
                test.threshold = _js_parse_float(value)
            elif column == "__metric" or column.startswith("__metadata"):
                continue  # names and labels only: they do not change pass or fail
            else:
                test.vars[column] = value
        test.description = test.description or f"Row #{number}"
        tests.append(test)
    return tests


def _js_parse_float(text: str) -> float:
    match = _FLOAT_PREFIX.match(text.lstrip(_JS_WHITESPACE))
    return float(match.group(0).replace("Infinity", "inf")) if match else math.nan


def _combinations(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's ``generateVarCombinations``: a list of texts gives one test per item."""
    combos: list[dict[str, Any]] = [{}]
    for key, value in variables.items():
        expands = isinstance(value, list) and bool(value) and isinstance(value[0], str)
        values = value if expands else [value]
        combos = [{**combo, key: item} for combo in combos for item in values]
    return combos


def _case_vars(combo: dict[str, Any], loc: _Loc) -> dict[str, Any]:
    """A test's variables as promptfoo renders with them: one final newline dropped."""
    result = {}
    for name, value in combo.items():
        if isinstance(value, str):
            if value.startswith(("file://", "package:")):
                raise _refuse(loc, f"variable {name}: values from files are not supported")
            if _TEMPLATE_TAG.search(value):
                raise _refuse(
                    loc,
                    f"variable {name}: promptfoo renders templates inside "
                    "variables, and Workbench does not; take the {{ }} out of "
                    f"{_short(value)}",
                )
            value = value.removesuffix("\n")
        result[name] = value
    try:
        check_plain_data(result, "variables of the test")
    except ValueError as exc:
        raise _refuse(loc, str(exc)) from None
    return result


def _cases(tests: list[_Test], default: _Test | None) -> list[suites.TestCase]:
    """Every test after defaultTest is merged in and vars are expanded, in promptfoo's order
    (its ``testIdx``)."""
    base = default or _Test(_Loc("", 0))
    cases = []
    for test in tests:
        variables = {**base.vars, **test.vars}
        asserts = [*base.asserts, *test.asserts]
        threshold = test.threshold if test.threshold is not None else base.threshold
        expand = test.expand if test.expand is not None else base.expand
        vars_loc = test.loc["vars"]
        combos = _combinations(variables) if expand is not False else [variables]
        for combo in combos:
            case_vars = _case_vars(combo, vars_loc)
            checks: list[Any] = [parse_assertion(a, case_vars, where) for a, where in asserts]
            # promptfoo: `if (threshold)`, so 0 and NaN mean "every assertion must pass".
            if threshold and not math.isnan(threshold) and checks:
                checks = [ScoreThreshold(float(threshold), tuple(checks))]
            cases.append(
                suites.TestCase(vars=case_vars, checks=tuple(checks), description=test.description)
            )
    return cases


# ---------------------------------------------------------------------------------------
# The config
# ---------------------------------------------------------------------------------------

_TOP_LEVEL = (
    "description",
    "prompts",
    "providers",
    "targets",
    "tests",
    "defaultTest",
    "evaluateOptions",
)
#: promptfoo keys that change nothing Workbench runs or grades: accepted and ignored.
IGNORED_KEYS = ("outputPath", "sharing", "tags", "metadata", "writeLatestResults")
_EVALUATE_OPTIONS = ("maxConcurrency", "repeat", "cache", "delay", "showProgressBar")


def load(path: Path, data: dict[str, Any], root: yaml.Node, settings: Settings) -> suites.Suite:
    """A promptfoo config as a suite, everything resolved and checked.

    ``data`` and ``root`` come from :func:`workbench.yamlio.load`; the data is read again
    from ``root`` with promptfoo's YAML rules (see the module docstring).

    Raises:
        ValidationError: anything outside the supported subset, a missing file, an invalid
            value, with the file and line.
    """
    source = str(path)
    loc = _Loc.of(source, root)
    config = _core(root) if root is not None else data
    if not isinstance(config, dict):
        raise _refuse(loc, "a promptfoo config is a mapping with prompts, providers and tests")
    for key in config:
        if key not in _TOP_LEVEL and key not in IGNORED_KEYS:
            raise _refuse(
                loc.key(key),
                f"promptfoo key {key!r} is not supported (supported: "
                f"{', '.join(_TOP_LEVEL)}; ignored: {', '.join(IGNORED_KEYS)})",
            )
    description = config.get("description") or ""
    if not isinstance(description, str):
        raise _refuse(loc["description"], "description is text")
    if "prompts" not in config:
        raise _refuse(loc, "prompts is required")
    variants = _load_prompts(config["prompts"], loc["prompts"], path.parent)
    models = _load_providers(config, loc, settings)
    default = None
    grader = None
    if config.get("defaultTest") is not None:
        default = _parse_test(config["defaultTest"], loc["defaultTest"], default=True)
        if default.provider is not None:
            grader = _provider_spec(
                default.provider, loc["defaultTest"]["options"]["provider"], settings
            )
    cases = _cases(_load_tests(config.get("tests"), loc["tests"], path.parent), default)
    repeats, concurrency = _evaluate_options(config.get("evaluateOptions"), loc["evaluateOptions"])
    return suites.Suite(
        source=source,
        description=description,
        variants=tuple(variants),
        models=tuple(models),
        cases=tuple(cases),
        repeats=repeats,
        concurrency=concurrency,
        grader=grader,
        dialect="promptfoo",
        fingerprint=suites.fingerprint(
            [
                [
                    {"label": v.label, "messages": [m.model_dump() for m in v.messages]}
                    for v in variants
                ],
                [_plain_model(m) for m in models],
                [
                    {"vars": c.vars, "checks": [_plain_check(check) for check in c.checks]}
                    for c in cases
                ],
                repeats,
            ]
        ),
    )


def _load_providers(config: dict[str, Any], loc: _Loc, settings: Settings) -> list[ModelSpec]:
    if "providers" in config and "targets" in config:
        raise _refuse(loc.key("targets"), "give providers or targets, not both")
    key = "targets" if "targets" in config else "providers"
    raw = config.get(key)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise _refuse(
            loc[key] if key in config else loc,
            "providers is required: a list of provider ids or {id, label, config} mappings",
        )
    models: list[ModelSpec] = []
    for index, item in enumerate(raw):
        spec = _provider_spec(item, loc[key][index], settings)
        if any(m.name == spec.name for m in models):
            raise _refuse(
                loc[key][index], f"two providers are named {spec.name!r}; give one of them a label"
            )
        models.append(spec)
    return models


def _plain_check(check: suites.Check) -> Any:
    return check.describe() if isinstance(check, PromptfooAssertion | ScoreThreshold) else None


def _plain_model(spec: ModelSpec) -> dict[str, Any]:
    """A model as plain data without its secrets (for the fingerprint)."""
    options = {k: v for k, v in spec.options.items() if k != "api_key"}
    return {"name": spec.name, "backend": spec.backend, "options": options, "params": spec.params}


def _evaluate_options(raw: Any, loc: _Loc) -> tuple[int, int | None]:
    if raw is None:
        return 1, None
    if not isinstance(raw, dict):
        raise _refuse(loc, "evaluateOptions is a mapping")
    for key, value in raw.items():
        if key not in _EVALUATE_OPTIONS:
            raise _refuse(
                loc.key(key),
                f"evaluateOptions.{key} is not supported (supported: "
                f"{', '.join(_EVALUATE_OPTIONS)})",
            )
        if key in ("maxConcurrency", "repeat") and (
            not isinstance(value, int) or isinstance(value, bool) or value < 1
        ):
            raise _refuse(loc[key], f"evaluateOptions.{key} is a whole number, at least 1")
    return raw.get("repeat", 1), raw.get("maxConcurrency")
