"""``tests`` and ``defaultTest``: inline tests and ``.csv``/``.yaml`` test files, merged
and expanded into test cases in promptfoo's order."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from workbench import suite as suites
from workbench.domain import check_plain_data
from workbench.errors import ValidationError
from workbench.promptfoo.asserts import assertion_from_string, parse_assertion
from workbench.promptfoo.checks import ScoreThreshold
from workbench.promptfoo.js import is_number, js_parse_float, js_trim
from workbench.promptfoo.source import GLOB_MAGIC, Loc, refuse, short
from workbench.promptfoo.yamlcore import yaml_core_load

_TEST_KEYS = ("description", "vars", "assert", "threshold", "options", "metadata")
_DEFAULT_TEST_KEYS = ("vars", "assert", "threshold", "options", "metadata")
_CSV_REFUSED = ("__prefix", "__suffix", "__providerOutput")
_TEMPLATE_TAG = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


@dataclass
class _Test:
    """A promptfoo test as written, before defaultTest and var expansion."""

    loc: Loc
    description: str | None = None
    vars: dict[str, Any] = field(default_factory=dict)
    asserts: list[tuple[Any, Loc]] = field(default_factory=list)
    threshold: float | None = None
    expand: bool | None = None
    provider: Any = None


def parse_test(raw: Any, loc: Loc, *, default: bool = False) -> _Test:
    """An inline test (or ``defaultTest``)."""
    what = "defaultTest" if default else "a test"
    if not isinstance(raw, dict):
        raise refuse(
            loc,
            f"{what} is a mapping (vars, assert, ...)"
            + ("; defaultTest files are not supported" if default else ""),
        )
    allowed = _DEFAULT_TEST_KEYS if default else _TEST_KEYS
    unknown = [k for k in raw if k not in allowed]
    if unknown:
        raise refuse(
            loc.key(unknown[0]),
            f"{what}: key {unknown[0]!r} is not supported (supported: {', '.join(allowed)})",
        )
    if not default and not any(
        k in raw for k in ("vars", "assert", "options", "metadata", "threshold")
    ):
        raise refuse(loc, "a test needs vars, assert, options, metadata or threshold")
    test = _Test(loc)
    description = raw.get("description")
    if description is not None and not isinstance(description, str):
        raise refuse(loc["description"], "a test's description is text")
    test.description = description
    variables = raw.get("vars")
    if isinstance(variables, str | list):
        raise refuse(
            loc["vars"], "vars from files are not supported; write the variables in the test"
        )
    if variables is not None and not isinstance(variables, dict):
        raise refuse(loc["vars"], "vars is a mapping of names to values")
    test.vars = dict(variables or {})
    asserts = raw.get("assert")
    if asserts is not None and not isinstance(asserts, list):
        raise refuse(loc["assert"], "assert is a list of assertions")
    test.asserts = [(a, loc["assert"][i]) for i, a in enumerate(asserts or [])]
    threshold = raw.get("threshold")
    if threshold is not None and not is_number(threshold):
        raise refuse(loc["threshold"], "threshold is a number")
    test.threshold = threshold
    _parse_options(raw.get("options"), loc["options"], test, default)
    return test


def _parse_options(options: Any, loc: Loc, test: _Test, default: bool) -> None:
    if options is None:
        return
    allowed = ("disableVarExpansion", "provider") if default else ("disableVarExpansion",)
    if not isinstance(options, dict):
        raise refuse(loc, "options is a mapping")
    unknown = [k for k in options if k not in allowed]
    if unknown:
        hint = (
            " (the grader goes in defaultTest.options.provider)" if unknown[0] == "provider" else ""
        )
        raise refuse(
            loc.key(unknown[0]),
            f"test option {unknown[0]!r} is not supported (supported: {', '.join(allowed)}){hint}",
        )
    if "disableVarExpansion" in options:
        test.expand = not options["disableVarExpansion"]
    test.provider = options.get("provider")


def load_tests(raw: Any, loc: Loc, base: Path) -> list[_Test]:
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
                raise refuse(where, "test generators ({path: ...}) are not supported")
            else:
                tests.append(parse_test(item, where))
    elif raw is not None:
        raise refuse(loc, "tests is a list of tests, or a file:// path to a .csv or .yaml file")
    if not tests:
        raise refuse(
            loc,
            "no tests: promptfoo 0.120.0 runs nothing without tests (add one, even `- vars: {}`)",
        )
    return tests


def _file_tests(text: str, loc: Loc, base: Path) -> list[_Test]:
    relative = text.removeprefix("file://")
    if GLOB_MAGIC.search(relative) or relative.startswith(("https://", "huggingface://")):
        raise refuse(
            loc, f"tests from {short(text)}: only single .csv and .yaml files are supported"
        )
    path = base / relative
    shown = str(path)
    if path.suffix not in (".csv", ".yaml", ".yml"):
        raise refuse(loc, f"tests file {relative}: only .csv and .yaml test files are supported")
    if not path.is_file():
        raise refuse(loc, f"tests file {relative} not found (looked for {path})")
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(loc, f"cannot read tests file {relative}: {exc}") from None
    if path.suffix == ".csv":
        return _csv_tests(content, shown)
    data, root = yaml_core_load(content, shown)
    file_loc = Loc.of(shown, root)
    items = data if isinstance(data, list) else [data]
    return [
        parse_test(item, file_loc[i] if isinstance(data, list) else file_loc)
        for i, item in enumerate(items)
    ]


def _csv_tests(content: str, shown: str) -> list[_Test]:
    """promptfoo's ``testCaseFromCsvRow`` for each row of a CSV file."""
    from workbench.datasets import csv_rows

    rows = csv_rows(content, shown)
    header = next(rows, None)
    if header is None:
        return []
    columns = [js_trim(c) for c in header[1]]
    duplicates = sorted({c for c in columns if columns.count(c) > 1})
    if duplicates:
        raise ValidationError(f"{shown}:{header[0]}: duplicate columns {', '.join(duplicates)}")
    tests = []
    for number, (line, row) in enumerate(rows, start=1):
        loc = Loc(shown, line)
        if len(row) != len(columns):
            raise refuse(loc, f"{len(row)} fields; the header has {len(columns)} columns")
        test = _Test(loc)
        for column, value in zip(columns, row, strict=True):
            if column.startswith("__expected"):
                if js_trim(value):
                    test.asserts.append((assertion_from_string(js_trim(value)), loc))
            elif column in _CSV_REFUSED or column.startswith("__config:"):
                raise refuse(loc, f"the CSV column {column} is not supported")
            elif column == "__description":
                test.description = value
            elif column == "__threshold":
                test.threshold = js_parse_float(value)
            elif column == "__metric" or column.startswith("__metadata"):
                continue  # names and labels only: they do not change pass or fail
            else:
                test.vars[column] = value
        test.description = test.description or f"Row #{number}"
        tests.append(test)
    return tests


def _combinations(variables: dict[str, Any]) -> list[dict[str, Any]]:
    """promptfoo's ``generateVarCombinations``: a list of texts gives one test per item."""
    combos: list[dict[str, Any]] = [{}]
    for key, value in variables.items():
        expands = isinstance(value, list) and bool(value) and isinstance(value[0], str)
        values = value if expands else [value]
        combos = [{**combo, key: item} for combo in combos for item in values]
    return combos


def _case_vars(combo: dict[str, Any], loc: Loc) -> dict[str, Any]:
    """A test's variables as promptfoo renders with them: one final newline dropped."""
    result = {}
    for name, value in combo.items():
        if isinstance(value, str):
            if value.startswith(("file://", "package:")):
                raise refuse(loc, f"variable {name}: values from files are not supported")
            if _TEMPLATE_TAG.search(value):
                raise refuse(
                    loc,
                    f"variable {name}: promptfoo renders templates inside "
                    "variables, and Workbench does not; take the {{ }} out of "
                    f"{short(value)}",
                )
            value = value.removesuffix("\n")
        result[name] = value
    try:
        check_plain_data(result, "variables of the test")
    except ValueError as exc:
        raise refuse(loc, str(exc)) from None
    return result


def build_cases(tests: list[_Test], default: _Test | None) -> list[suites.TestCase]:
    """Every test after defaultTest is merged in and vars are expanded, in promptfoo's order
    (its ``testIdx``)."""
    base = default or _Test(Loc("", 0))
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
                suites.TestCase(vars=case_vars, checks=tuple(checks), description=test.description,
                                where=str(test.loc))
            )
    return cases
