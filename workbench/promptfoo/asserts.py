"""Assertions as written: a test's ``assert`` entries checked and rendered into checks,
and the CSV ``__expected`` shorthand (promptfoo's ``assertionFromString``)."""

from __future__ import annotations

import functools
import re
from typing import Any

from workbench import templates
from workbench.errors import WorkbenchError
from workbench.promptfoo.checks import (
    FIGURE_TYPES,
    JSON_TYPES,
    LIST_TYPES,
    SUPPORTED_TYPES,
    TEXT_TYPES,
    PromptfooAssertion,
)
from workbench.promptfoo.js import is_number, js_trim
from workbench.promptfoo.jsregex import RegexTranslationError, js_regex, split_all, split_any
from workbench.promptfoo.source import Loc, refuse, short
from workbench.promptfoo.yamlcore import yaml_core_load

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


def parse_assertion(raw: Any, variables: dict[str, Any], loc: Loc) -> PromptfooAssertion:
    """One assertion of a test, its value rendered with the test's variables.

    Raises:
        ValidationError: an unsupported type or key, or a value promptfoo would reject
            (naming the file and line).
    """
    if not isinstance(raw, dict) or not isinstance(raw.get("type"), str):
        raise refuse(loc, "an assertion is a mapping with a 'type'")
    kind = raw["type"]
    _check_type(kind, loc)
    unknown = [k for k in raw if k not in _ASSERTION_KEYS]
    if unknown:
        raise refuse(
            loc.key(unknown[0]),
            f"{kind}: assertion key {unknown[0]!r} is not "
            f"supported (supported: {', '.join(_ASSERTION_KEYS)})",
        )
    for key in ("threshold", "weight"):
        if key in raw and not is_number(raw[key]):
            raise refuse(loc[key], f"{kind}: {key} must be a number")
    if "metric" in raw and not isinstance(raw["metric"], str):
        raise refuse(loc["metric"], f"{kind}: metric must be a string")
    base = kind.removeprefix("not-")
    threshold = raw.get("threshold")
    weight = raw.get("weight", 1)
    if kind == "llm-rubric":
        from workbench.rubrics import GradedCheck

        text = _render_value(raw.get("value"), variables, loc["value"] if "value" in raw else loc)
        if not isinstance(text, str) or not text.strip():
            raise refuse(loc, "llm-rubric needs a value: what a good answer does")
        return GradedCheck(text, float(weight))  # type: ignore[return-value]
    if base in FIGURE_TYPES:
        if threshold is None:
            unit = "milliseconds" if base == "latency" else "US dollars"
            raise refuse(loc, f"{kind} needs a threshold (in {unit})")
        return PromptfooAssertion(kind, None, float(threshold), float(weight))
    if "value" not in raw and base not in JSON_TYPES:
        raise refuse(loc, f"{kind} needs a value")
    value_loc = loc["value"] if "value" in raw else loc
    value = _render_value(raw.get("value"), variables, value_loc)
    pattern = validator = None
    if base in TEXT_TYPES:
        value, pattern = _text_value(kind, base, value, value_loc)
    elif base in LIST_TYPES:
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


def _check_type(kind: str, loc: Loc) -> None:
    if kind in SUPPORTED_TYPES:
        return
    base = kind.removeprefix("not-")
    if base in FIGURE_TYPES:
        raise refuse(
            loc,
            f"assertion type {kind!r} is not supported (promptfoo ignores the "
            f"'not-' of {base}; write {base})",
        )
    if base in PROMPTFOO_TYPES or kind in _SPECIAL_TYPES or kind.startswith("promptfoo:"):
        raise refuse(
            loc,
            f"assertion type {kind!r} is not supported by Workbench "
            f"(supported: {', '.join(SUPPORTED_TYPES)})",
        )
    raise refuse(loc, f"unknown assertion type {kind!r} (supported: {', '.join(SUPPORTED_TYPES)})")


def _render_value(value: Any, variables: dict[str, Any], loc: Loc) -> Any:
    """Render a string value, or each string in a list, as promptfoo does (Nunjucks there)."""
    if isinstance(value, str):
        return _render_text(value, variables, loc)
    if isinstance(value, list):
        return [_render_text(v, variables, loc) if isinstance(v, str) else v for v in value]
    return value


def _render_text(text: str, variables: dict[str, Any], loc: Loc) -> str:
    if text.startswith("file://") or text.startswith("package:"):
        raise refuse(loc, f"assertion values from files are not supported ({short(text)})")
    if not any(tag in text for tag in ("{{", "{%", "{#")):
        return text
    try:
        return templates.render(text, variables, where="assertion value")
    except templates.TemplateError as exc:
        raise refuse(loc, str(exc)) from None


def _text_value(kind: str, base: str, value: Any, loc: Loc) -> tuple[Any, re.Pattern[str] | None]:
    if base == "equals":
        return value, None
    if base in ("starts-with", "regex"):
        if not isinstance(value, str) or not value:
            raise refuse(loc, f"{kind} needs a non-empty string value")
    elif (not isinstance(value, str) and not is_number(value)) or not value:
        # promptfoo: invariant(value) -- so "" and 0 are errors there too.
        raise refuse(loc, f"{kind} needs a non-empty string or number value (not {value!r})")
    if base != "regex":
        return value, None
    try:
        return value, js_regex(value)
    except RegexTranslationError as exc:
        raise refuse(loc, f"{kind} /{value}/: {exc}") from None


def _list_value(kind: str, base: str, value: Any, loc: Loc) -> list[Any]:
    if isinstance(value, str) and value:
        return split_any(value) if base == "contains-any" else split_all(value)
    if isinstance(value, list):
        return value
    raise refuse(loc, f"{kind} needs a list or a comma-separated string value")


def _schema_value(kind: str, value: Any, loc: Loc) -> tuple[Any, Any]:
    if value is None or value == "" or value is False or value == 0:
        return None, None  # promptfoo: no schema when the value is falsy
    if kind.startswith("not-"):
        raise refuse(
            loc,
            f"{kind} with a schema is not supported (promptfoo 0.120.0 does not "
            "invert the schema check)",
        )
    schema = value
    if isinstance(value, str):
        try:
            schema = yaml_core_load(value, f"{loc} ({kind} schema)")[0]
        except WorkbenchError as exc:
            raise refuse(loc, f"{kind}: the schema is not valid YAML/JSON ({exc})") from None
    if not isinstance(schema, dict | bool):
        raise refuse(loc, f"{kind}: the value must be a JSON Schema (a mapping)")
    import jsonschema

    # promptfoo validates with Ajv: draft-07, formats checked.
    try:
        jsonschema.Draft7Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        raise refuse(loc, f"{kind}: invalid JSON Schema: {exc.message}") from None
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
    if kind in LIST_TYPES:
        return {"type": full, "value": split_all(value) if value else value}
    if kind in JSON_TYPES:
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
