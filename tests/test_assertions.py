"""Assertions on outputs: every type, its `not-` form, unknowns that fail, bad definitions."""

from __future__ import annotations

import pytest

from workbench.assertions import Observation, check, check_all, parse
from workbench.errors import ValidationError

OUT = Observation('The capital of France is Paris. {"ok": 1}', latency_ms=120.0, cost_usd=0.002)


@pytest.mark.parametrize(
    ("kind", "value", "passes"),
    [
        ("contains", "Paris", True),
        ("contains", "paris", False),
        ("icontains", "PARIS", True),
        ("icontains", "Lyon", False),
        ("equals", OUT.output, True),
        ("equals", "Paris", False),
        ("starts-with", "The capital", True),
        ("starts-with", "capital", False),
        ("regex", r"capital of \w+", True),
        ("regex", r"^Paris", False),
        ("is-json", None, False),
        ("max-length", 100, True),
        ("max-length", 10, False),
        ("latency", 200, True),
        ("latency", 100, False),
        ("cost", 0.01, True),
        ("cost", 0.001, False),
    ],
)
def test_each_type(kind: str, value: object, passes: bool) -> None:
    verdict = check(parse({"type": kind, "value": value}), OUT)
    assert verdict.passed is passes
    assert (verdict.reason == "ok") is passes
    if kind in ("contains", "icontains", "equals", "starts-with", "regex", "is-json"):
        inverted = check(parse({"type": f"not-{kind}", "value": value}), OUT)
        assert inverted.passed is not passes


def test_json_and_schema() -> None:
    data = Observation('{"name": "Ada", "age": 36}')
    schema = {"type": "object", "properties": {"age": {"type": "integer"}}, "required": ["name"]}
    assert check(parse({"type": "is-json"}), data).passed
    assert check(parse({"type": "json-schema", "value": schema}), data).passed
    wrong = check(parse({"type": "json-schema", "value": schema}), Observation('{"age": "x"}'))
    assert not wrong.passed and "schema" in wrong.reason
    assert "not JSON" in check(parse({"type": "json-schema", "value": schema}), OUT).reason


def test_unknown_figures_fail() -> None:
    blank = Observation("text")
    assert check(parse({"type": "latency", "value": 1000}), blank) .reason.startswith("latency unknown")
    assert not check(parse({"type": "cost", "value": 1}), blank).passed


def test_check_all_reports_the_first_failure() -> None:
    rules = [parse({"type": "contains", "value": "Paris"}), parse({"type": "max-length", "value": 5})]
    verdict = check_all(rules, OUT)
    assert not verdict.passed and verdict.reason.startswith("max-length: output has")
    assert check_all(rules[:1], OUT).passed


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"type": "javascript", "value": "1"}, "unknown assertion type 'javascript'"),
        ({"type": "contains"}, "needs a text value"),
        ({"type": "regex", "value": "(unclosed"}, "invalid regular expression"),
        ({"type": "latency", "value": "fast"}, "needs a number"),
        ({"type": "json-schema", "value": {"type": "nonsense"}}, "invalid JSON Schema"),
        ({"type": "contains", "value": "x", "weight": 2}, "unknown keys weight"),
        ("contains", "a mapping with a 'type'"),
    ],
)
def test_bad_definitions(data: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        parse(data, "suite.yaml:3")
