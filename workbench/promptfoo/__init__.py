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

The package's modules, each depending only on those above it:

- :mod:`~workbench.promptfoo.source`: places in files (``file:line``) for messages.
- :mod:`~workbench.promptfoo.js`: JavaScript's view of values.
- :mod:`~workbench.promptfoo.yamlcore`: YAML as js-yaml reads it; JSON in an output.
- :mod:`~workbench.promptfoo.jsregex`: JavaScript regular expressions in Python's re.
- :mod:`~workbench.promptfoo.checks`: the assertions as checks on an output.
- :mod:`~workbench.promptfoo.asserts`: assertions as written, and the CSV shorthand.
- :mod:`~workbench.promptfoo.prompts`, :mod:`~workbench.promptfoo.providers`,
  :mod:`~workbench.promptfoo.cases`: each part of the config.
- this module: :func:`load`, the config as a whole.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from workbench import suite as suites
from workbench.config import Settings
from workbench.models import ModelSpec
from workbench.promptfoo.asserts import PROMPTFOO_TYPES, assertion_from_string, parse_assertion
from workbench.promptfoo.cases import build_cases, load_tests, parse_test
from workbench.promptfoo.checks import SUPPORTED_TYPES, PromptfooAssertion, ScoreThreshold
from workbench.promptfoo.js import js_equal, js_string, js_trim, json_parse
from workbench.promptfoo.jsregex import RegexTranslationError, js_regex, split_all, split_any
from workbench.promptfoo.prompts import load_prompts
from workbench.promptfoo.providers import (
    SUPPORTED_PROVIDERS,
    litellm_id,
    load_providers,
    provider_spec,
)
from workbench.promptfoo.source import Loc, refuse
from workbench.promptfoo.yamlcore import core_data, extract_json_objects

__all__ = [
    "IGNORED_KEYS",
    "PROMPTFOO_TYPES",
    "SUPPORTED_PROVIDERS",
    "SUPPORTED_TYPES",
    "PromptfooAssertion",
    "RegexTranslationError",
    "ScoreThreshold",
    "assertion_from_string",
    "extract_json_objects",
    "js_equal",
    "js_regex",
    "js_string",
    "js_trim",
    "json_parse",
    "litellm_id",
    "load",
    "parse_assertion",
    "split_all",
    "split_any",
]


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
    loc = Loc.of(source, root)
    config = core_data(root) if root is not None else data
    if not isinstance(config, dict):
        raise refuse(loc, "a promptfoo config is a mapping with prompts, providers and tests")
    for key in config:
        if key not in _TOP_LEVEL and key not in IGNORED_KEYS:
            raise refuse(
                loc.key(key),
                f"promptfoo key {key!r} is not supported (supported: "
                f"{', '.join(_TOP_LEVEL)}; ignored: {', '.join(IGNORED_KEYS)})",
            )
    description = config.get("description") or ""
    if not isinstance(description, str):
        raise refuse(loc["description"], "description is text")
    if "prompts" not in config:
        raise refuse(loc, "prompts is required")
    variants = load_prompts(config["prompts"], loc["prompts"], path.parent)
    models = load_providers(config, loc, settings)
    default = None
    grader = None
    if config.get("defaultTest") is not None:
        default = parse_test(config["defaultTest"], loc["defaultTest"], default=True)
        if default.provider is not None:
            grader = provider_spec(
                default.provider, loc["defaultTest"]["options"]["provider"], settings
            )
    cases = build_cases(load_tests(config.get("tests"), loc["tests"], path.parent), default)
    if grader is None:
        from workbench.rubrics import graded_checks

        if any(graded_checks(case.checks) for case in cases):
            raise refuse(
                loc["defaultTest"] if "defaultTest" in config else loc,
                "llm-rubric needs a grader: name one in defaultTest.options.provider "
                "(e.g. workbench:smollm2)",
            )
    options = _evaluate_options(config.get("evaluateOptions"), loc["evaluateOptions"])
    return suites.Suite(
        source=source,
        description=description,
        variants=tuple(variants),
        models=tuple(models),
        cases=tuple(cases),
        repeats=options.repeats,
        concurrency=options.concurrency,
        use_cache=options.cache,
        delay_ms=options.delay_ms,
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
                options.repeats,
            ]
        ),
    )


def _plain_check(check: suites.Check) -> Any:
    describe = getattr(check, "describe", None)
    return describe() if callable(describe) else None


def _plain_model(spec: ModelSpec) -> dict[str, Any]:
    """A model as plain data without its secrets (for the fingerprint)."""
    options = {k: v for k, v in spec.options.items() if k != "api_key"}
    return {"name": spec.name, "backend": spec.backend, "options": options, "params": spec.params}


@dataclass(frozen=True)
class _Options:
    repeats: int = 1
    concurrency: int | None = None
    cache: bool = True
    delay_ms: float = 0


def _evaluate_options(raw: Any, loc: Loc) -> _Options:
    """``evaluateOptions``: ``repeat`` and ``maxConcurrency`` as the suite's ``repeats`` and
    ``concurrency``; ``cache: false`` as ``--no-cache``; ``delay`` (ms after each call,
    which in promptfoo also means one call at a time); ``showProgressBar`` is cosmetic."""
    if raw is None:
        return _Options()
    if not isinstance(raw, dict):
        raise refuse(loc, "evaluateOptions is a mapping")
    for key, value in raw.items():
        if key not in _EVALUATE_OPTIONS:
            raise refuse(
                loc.key(key),
                f"evaluateOptions.{key} is not supported (supported: "
                f"{', '.join(_EVALUATE_OPTIONS)})",
            )
        whole = isinstance(value, int) and not isinstance(value, bool)
        if key in ("maxConcurrency", "repeat") and not (whole and value >= 1):
            raise refuse(loc[key], f"evaluateOptions.{key} is a whole number, at least 1")
        if key in ("cache", "showProgressBar") and not isinstance(value, bool):
            raise refuse(loc[key], f"evaluateOptions.{key} is true or false")
        if key == "delay" and (
            not isinstance(value, int | float) or isinstance(value, bool) or value < 0
        ):
            raise refuse(loc[key], "evaluateOptions.delay is a number of milliseconds, at least 0")
    return _Options(
        repeats=raw.get("repeat", 1),
        concurrency=raw.get("maxConcurrency"),
        cache=raw.get("cache", True),
        delay_ms=raw.get("delay", 0),
    )
