"""promptfoo assertions as checks: what each supported type means for an output, and a
test's score ``threshold``."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from workbench.assertions import Observation, Verdict
from workbench.promptfoo.js import js_equal, js_string, json_parse
from workbench.promptfoo.source import short
from workbench.promptfoo.yamlcore import extract_json_objects

TEXT_TYPES = ("contains", "icontains", "equals", "starts-with", "regex")
LIST_TYPES = ("contains-any", "contains-all", "icontains-any", "icontains-all")
JSON_TYPES = ("is-json", "contains-json")
FIGURE_TYPES = ("latency", "cost")
_INVERTIBLE = (*TEXT_TYPES, *LIST_TYPES, *JSON_TYPES)
SUPPORTED_TYPES = (*_INVERTIBLE, *(f"not-{t}" for t in _INVERTIBLE), *FIGURE_TYPES, "llm-rubric")
"""The assertion types this module runs."""


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
        if base in FIGURE_TYPES:
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
                    f"{short(json.dumps(self.value, ensure_ascii=False))}",
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
            return f"expected output {short(out)} to {verb}equal {short(js_string(self.value))}"
        if base == "starts-with":
            return f"expected output to {verb}start with {short(self.value)}"
        if base == "regex":
            return f"expected output to {verb}match /{self.value}/"
        if base in LIST_TYPES:
            which = "one of" if base.endswith("-any") else "all of"
            items = ", ".join(js_string(v) for v in self.value)
            return f"expected output to {verb}contain {which} [{short(items)}]"
        case = " (any case)" if base == "icontains" else ""
        return f"expected output to {verb}contain {short(js_string(self.value))}{case}"

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
