"""Checks on a model's output: the assertions a suite attaches to its test cases.

Each assertion gives a :class:`Verdict` with a reason a person can read. Checks that
need a figure the run does not have (latency of a failed call, cost of an unpriced
model) fail with that reason: an unknown is never a silent pass.

Semantics (Workbench's own suite format; promptfoo configs map onto these):

=================  ==============================================================
``contains``       the output contains the value (case-sensitive)
``icontains``      the same, ignoring case (Unicode case folding)
``equals``         the output is exactly the value
``starts-with``    the output starts with the value
``regex``          Python regular expression, searched anywhere in the output
``is-json``        the output parses as JSON
``json-schema``    the output parses as JSON and validates against the schema value
``max-length``     the output has at most this many characters
``latency``        the call's end-to-end time is at most this many milliseconds
``cost``           the call cost at most this many US dollars
=================  ==============================================================

``not-`` before ``contains``, ``icontains``, ``equals``, ``starts-with``, ``regex`` and
``is-json`` inverts the check.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from workbench.errors import ValidationError

_TEXT = ("contains", "icontains", "equals", "starts-with", "regex")
_INVERTIBLE = (*_TEXT, "is-json")
_NUMBER = ("max-length", "latency", "cost")
TYPES = (*_INVERTIBLE, *(f"not-{t}" for t in _INVERTIBLE), "json-schema", *_NUMBER)


@dataclass(frozen=True)
class Assertion:
    """One check, validated: a known type and a value of the right kind."""

    type: str
    value: Any = None

    def check(self, seen: Observation) -> Verdict:
        """Apply this assertion (see :func:`check`)."""
        return check(self, seen)


@dataclass(frozen=True)
class Observation:
    """What a check looks at: the output and the run's figures (None when unknown)."""

    output: str
    latency_ms: float | None = None
    cost_usd: float | None = None
    graded: Any = None
    """Verdicts of model-graded checks made for this output: ``{id(check): (passed, reason)}``."""


@dataclass(frozen=True)
class Verdict:
    """Pass or fail, and why."""

    passed: bool
    reason: str


def parse(data: Any, where: str = "assertion") -> Assertion:
    """An assertion from suite data (``{"type": ..., "value": ...}``).

    Raises:
        ValidationError: unknown type, a missing or mistyped value, a regular expression
            that does not compile, or a schema that is not a valid JSON Schema.
    """
    if not isinstance(data, dict) or "type" not in data:
        raise ValidationError(f"{where}: an assertion is a mapping with a 'type'")
    unknown = set(data) - {"type", "value"}
    if unknown:
        raise ValidationError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
    kind, value = data["type"], data.get("value")
    if kind not in TYPES:
        raise ValidationError(
            f"{where}: unknown assertion type {kind!r} (supported: {', '.join(TYPES)})"
        )
    base = kind.removeprefix("not-")
    if base in _TEXT and not isinstance(value, str):
        raise ValidationError(f"{where}: {kind} needs a text value")
    if base == "regex":
        try:
            re.compile(value)
        except re.error as exc:
            raise ValidationError(f"{where}: invalid regular expression {value!r}: {exc}") from None
    if kind in _NUMBER and (isinstance(value, bool) or not isinstance(value, int | float)):
        raise ValidationError(f"{where}: {kind} needs a number")
    if kind == "json-schema":
        _check_schema(value, where)
    return Assertion(kind, value)


def _check_schema(schema: Any, where: str) -> None:
    import jsonschema

    if not isinstance(schema, dict | bool):
        raise ValidationError(f"{where}: json-schema needs a schema (a mapping)")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise ValidationError(f"{where}: invalid JSON Schema: {exc.message}") from None


def _snippet(text: str, limit: int = 60) -> str:
    return repr(text if len(text) <= limit else text[:limit] + "...")


def check(assertion: Assertion, seen: Observation) -> Verdict:
    """Apply one assertion."""
    kind, value, out = assertion.type, assertion.value, seen.output
    negate = kind.startswith("not-")
    base = kind.removeprefix("not-")
    if base in _INVERTIBLE:
        held, says = _text_check(base, value, out)
        passed = held != negate
        verb = "not " if negate else ""
        return Verdict(passed, "ok" if passed else f"expected output {verb}to {says}")
    if kind == "json-schema":
        return _schema_check(value, out)
    if kind == "max-length":
        passed = len(out) <= value
        return Verdict(passed, "ok" if passed else f"output has {len(out)} characters; max {value}")
    figure, unit = (seen.latency_ms, "ms") if kind == "latency" else (seen.cost_usd, "USD")
    if figure is None:
        return Verdict(False, f"{kind} unknown for this run; limit {value} {unit}")
    passed = figure <= value
    return Verdict(passed, "ok" if passed else f"{kind} {figure:g} {unit} over the limit {value} {unit}")


def _text_check(base: str, value: Any, out: str) -> tuple[bool, str]:
    if base == "contains":
        return value in out, f"contain {_snippet(value)}"
    if base == "icontains":
        return value.casefold() in out.casefold(), f"contain {_snippet(value)} (any case)"
    if base == "equals":
        return out == value, f"equal {_snippet(value)}, got {_snippet(out)}"
    if base == "starts-with":
        return out.startswith(value), f"start with {_snippet(value)}"
    if base == "regex":
        return re.search(value, out) is not None, f"match /{value}/"
    try:
        json.loads(out)
        return True, "be JSON"
    except ValueError:
        return False, "be JSON"


def _schema_check(schema: Any, out: str) -> Verdict:
    import jsonschema

    try:
        data = json.loads(out)
    except ValueError as exc:
        return Verdict(False, f"output is not JSON ({exc.msg})")
    validator = jsonschema.validators.validator_for(schema)(schema)
    error = jsonschema.exceptions.best_match(validator.iter_errors(data))
    if error is None:
        return Verdict(True, "ok")
    path = "/".join(str(p) for p in error.absolute_path) or "(root)"
    return Verdict(False, f"JSON does not match the schema at {path}: {error.message}")


def check_all(assertions: Iterable[Assertion], seen: Observation) -> Verdict:
    """A case passes when every assertion passes; the reason is the first failure's."""
    for assertion in assertions:
        verdict = check(assertion, seen)
        if not verdict.passed:
            return Verdict(False, f"{assertion.type}: {verdict.reason}")
    return Verdict(True, "ok")
