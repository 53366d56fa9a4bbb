"""Suites: what ``workbench eval`` runs, loaded from Workbench's YAML or a promptfoo config.

A suite is prompt variants x models x test cases x repeats, with checks per case and
pass thresholds. Everything is resolved and checked when the file is loaded (prompts,
models, dataset files, assertion values, variables the templates need), so a bad suite
stops with the file and line before any model is called.

Workbench's format::

    description: Support answers
    prompts:                      # store references, prompt files or inline drafts
      - support-answer:approved
      - file: prompts/terse.yaml
      - name: inline-draft
        messages:
          - {role: user, content: "{{ question }}"}
        params: {temperature: 0}
    models: [smollm2, {name: local-server, model: openai/smollm2, api_base: http://127.0.0.1:8000/v1}]
    dataset: cases.csv            # a stored dataset's name, a .csv/.jsonl file, or inline
    tests:                        # inline cases (instead of, or with, dataset)
      - vars: {question: Where is my order?}
        assert: [{type: icontains, value: order}]
    assert:                       # checks on every case
      - {type: max-length, value: 600}
    repeats: 1
    concurrency: 8                # in flight per backend (-j overrides)
    thresholds:
      pass_rate: 0.9              # each variant x model must pass at least this share
      baseline_margin: 0.05       # with --baseline LABEL: worse by more than this fails
    judge:                        # score every output on a rubric (workbench/rubrics.py)
      model: smollm2
      rubric: support-quality@1   # stored NAME[@N], a rubric file, or inline
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import yaml
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from workbench import assertions, templates, yamlio
from workbench.yamlio import line_of
from workbench.assertions import Observation, Verdict
from workbench.config import Settings
from workbench.domain import Message, Params, PromptContent, check_plain_data, parse_ref
from workbench.errors import ValidationError, WorkbenchError
from workbench.experiment import Variant
from workbench.models import ModelSpec

if TYPE_CHECKING:
    from workbench.storage.db import Store


class Check(Protocol):
    """A check on one output (a Workbench assertion, or a promptfoo one)."""

    type: str

    def check(self, seen: Observation) -> Verdict:
        """Pass or fail, and why."""
        ...


@dataclass(frozen=True)
class TestCase:
    """One case: its variables and the checks its output must pass."""

    __test__ = False  # not a pytest class

    vars: dict[str, Any]
    checks: tuple[Check, ...] = ()
    description: str | None = None
    where: str = ""
    """Where the case was written (``suite.yaml:14``, ``cases.csv: case 3``)."""
    expected_chunks: tuple[str, ...] = ()
    """Chunk ids retrieval should find for this case (for hit@k and MRR)."""


@dataclass(frozen=True)
class Thresholds:
    """When a suite passes.

    Attributes:
        pass_rate: the share of cases each variant x model must pass; None means all.
        baseline_margin: with ``--baseline LABEL``, how much lower (as a share of cases) a
            candidate's pass rate may be than the labelled version's.
    """

    pass_rate: float | None = None
    baseline_margin: float = 0.0


@dataclass(frozen=True)
class Suite:
    """A loaded, checked suite."""

    source: str
    description: str
    variants: tuple[Variant, ...]
    models: tuple[ModelSpec, ...]
    cases: tuple[TestCase, ...]
    repeats: int = 1
    thresholds: Thresholds = field(default_factory=Thresholds)
    concurrency: int | None = None
    grader: ModelSpec | None = None
    """The model that grades model-graded checks (promptfoo's ``defaultTest.options.provider``)."""
    rubric: Any = None
    """The :class:`~workbench.rubrics.Rubric` outputs are scored on (with ``judge``)."""
    judge: ModelSpec | None = None
    """The model that scores every output on the rubric."""
    dialect: str = "workbench"
    """``workbench`` or ``promptfoo``."""
    fingerprint: str = ""
    """A hash of everything that decides the cells (to refuse resuming a changed suite)."""
    use_cache: bool = True
    """Answer identical requests from earlier runs (promptfoo's ``evaluateOptions.cache``)."""
    delay_ms: float = 0
    """Wait this long after each model call before the next starts; more than 0 means one
    call at a time (promptfoo's ``evaluateOptions.delay``)."""


def fingerprint(parts: Sequence[Any]) -> str:
    """A stable hash of plain data (variants, models, cases, repeats)."""
    text = json.dumps(parts, sort_keys=True, ensure_ascii=False, default=repr)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


# --- Workbench's own format -------------------------------------------------------------

_KEYS = (
    "description", "prompts", "models", "dataset", "tests", "assert", "repeats",
    "concurrency", "thresholds", "judge",
)


class _Inline(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    messages: list[Message] = Field(min_length=1)
    params: Params = Field(default_factory=Params)
    variables: dict[str, Any] | None = None
    retrieval: dict[str, Any] | None = None
    """Variables filled by retrieval (see :func:`workbench.retrieval.parse_bindings`)."""


class _FileRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    file: str
    label: str | None = None
    retrieval: dict[str, Any] | None = None


class _StoredRef(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt: str
    """``NAME``, ``NAME@N`` or ``NAME:LABEL``."""
    label: str | None = None
    """What the variant is called in results (default: the reference)."""
    retrieval: dict[str, Any] | None = None


class _ModelEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str
    model: str | None = None
    """A provider's model id (for a server of one's own, with ``api_base``)."""
    api_base: str | None = None
    params: Params = Field(default_factory=Params)


class _Test(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    vars: dict[str, Any] = Field(default_factory=dict)
    assert_: list[Any] = Field(default_factory=list, alias="assert")
    description: str | None = None
    expect_chunks: list[str] = Field(default_factory=list)
    """Chunk ids retrieval should find (reported as hit@k and MRR per variant)."""


class _Judge(BaseModel):
    model_config = ConfigDict(extra="forbid")

    model: str | _ModelEntry
    rubric: str | dict[str, Any] | None = None
    """A stored rubric (``NAME`` or ``NAME@N``), a rubric file (``*.yaml``), or inline."""


class _Thresholds(BaseModel):
    model_config = ConfigDict(extra="forbid")

    pass_rate: float | None = Field(default=None, ge=0, le=1)
    baseline_margin: float = Field(default=0.0, ge=0, le=1)


class _SuiteFile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    description: str = ""
    prompts: list[str | _FileRef | _StoredRef | _Inline] = Field(min_length=1)
    models: list[str | _ModelEntry] = Field(min_length=1)
    dataset: str | None = None
    tests: list[_Test] = Field(default_factory=list)
    assert_: list[Any] = Field(default_factory=list, alias="assert")
    repeats: int = Field(default=1, ge=1, le=1000)
    concurrency: int | None = Field(default=None, ge=1, le=256)
    thresholds: _Thresholds = Field(default_factory=_Thresholds)
    judge: _Judge | None = None


def is_promptfoo(path: Path, data: Any) -> bool:
    """promptfoo configs name ``providers`` (or ``targets``); Workbench suites ``models``."""
    if path.name.startswith("promptfooconfig"):
        return True
    return (
        isinstance(data, dict)
        and ("providers" in data or "targets" in data)  # `targets`: promptfoo's alias
        and "models" not in data
    )


def load_suite(path: Path, settings: Settings, store: Callable[[], Store]) -> Suite:
    """Read and check a suite file (Workbench's format or a promptfoo config).

    ``store`` opens the store when the suite names stored prompts or datasets.

    Raises:
        ValidationError: unreadable file, invalid YAML, unknown keys, bad values,
            missing files, unknown models or prompts, with the file and line.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read suite {path}: {exc}") from None
    data, root = yamlio.load(text, str(path))
    if is_promptfoo(path, data):
        from workbench import promptfoo

        return promptfoo.load(path, data, root, settings)
    return _load_native(path, data, root, settings, store)


def _load_native(
    path: Path, data: Any, root: yaml.Node | None, settings: Settings, store: Callable[[], Store]
) -> Suite:
    source = str(path)
    if not isinstance(data, dict) or root is None:
        raise ValidationError(f"{source}: a suite is a mapping with 'prompts' and 'models'")
    try:
        parsed = _SuiteFile.model_validate(data)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _readable_loc(tuple(err["loc"]))
            what = ".".join(str(p) for p in loc) or "suite"
            hint = ""
            if err["type"] == "extra_forbidden" and len(loc) == 1:
                hint = f" (allowed keys: {', '.join(_KEYS)})"
            problems.append(f"{source}:{line_of(root, loc)}: {what}: {err['msg']}{hint}")
        raise ValidationError("\n".join(dict.fromkeys(problems))) from None

    def at(*loc: Any) -> str:
        return f"{source}:{line_of(root, loc)}"

    variants = tuple(
        _variant(entry, path, at("prompts", i), store) for i, entry in enumerate(parsed.prompts)
    )
    labels = [v.label for v in variants]
    for label in labels:
        if labels.count(label) > 1:
            raise ValidationError(f"{at('prompts')}: two prompts are both called {label!r}")
    models = tuple(_model(entry, settings, at("models", i)) for i, entry in enumerate(parsed.models))
    shared = tuple(_checks(parsed.assert_, at, ("assert",)))
    cases: list[TestCase] = []
    if parsed.dataset is not None:
        cases.extend(_dataset_cases(parsed.dataset, path, at("dataset"), shared, store))
    for i, test in enumerate(parsed.tests):
        own = tuple(_checks(test.assert_, at, ("tests", i, "assert")))
        cases.append(
            TestCase(dict(test.vars), shared + own, test.description, where=at("tests", i),
                     expected_chunks=tuple(test.expect_chunks))
        )
    if not cases:
        raise ValidationError(f"{source}: no test cases: give 'dataset' or 'tests'")
    for case in cases:
        try:
            check_plain_data(case.vars, "a variable")
        except ValueError as exc:
            raise ValidationError(f"{case.where}: {exc}") from None
    cases = [_templated(case) for case in cases]
    rubric, judge = None, None
    if parsed.judge is not None:
        judge = _model(parsed.judge.model, settings, at("judge", "model"))
        if parsed.judge.rubric is not None:
            rubric = _rubric(parsed.judge.rubric, path, at("judge", "rubric"), store)
    from workbench.rubrics import graded_checks

    if judge is None and any(graded_checks(c.checks) for c in cases):
        raise ValidationError(f"{source}: llm-rubric needs a grader: add judge: {{model: ...}}")
    return Suite(
        source=source,
        description=parsed.description,
        variants=variants,
        models=models,
        cases=tuple(cases),
        repeats=parsed.repeats,
        thresholds=Thresholds(parsed.thresholds.pass_rate, parsed.thresholds.baseline_margin),
        concurrency=parsed.concurrency,
        rubric=rubric,
        judge=judge,
        fingerprint=fingerprint(
            [
                [[v.label, [m.model_dump() for m in v.messages], v.defaults, v.params,
                  [b.describe() for b in v.retrieval]] for v in variants],
                [model_identity(m) for m in models],
                [[c.vars, [_check_data(k) for k in c.checks]] for c in cases],
                parsed.repeats,
            ]
        ),
    )


def _rubric(entry: str | dict[str, Any], base: Path, where: str, store: Callable[[], Store]) -> Any:
    from workbench import rubrics

    if isinstance(entry, dict):
        return rubrics.rubric_from_data(entry, where)
    if entry.lower().endswith((".yaml", ".yml")):
        file = (base.parent / entry).resolve()
        if not file.is_file():
            raise ValidationError(f"{where}: rubric file {entry} not found (looked in {file})")
        return rubrics.load_rubric_file(file)
    from workbench.storage.rubrics import resolve_rubric

    try:
        return resolve_rubric(store(), entry).rubric
    except WorkbenchError as exc:
        raise ValidationError(f"{where}: {exc}") from None


def _templated(case: TestCase) -> TestCase:
    """Assertion values may use the case's variables: ``{type: icontains, value: "{{ city }}"}``."""
    checks = []
    for check in case.checks:
        value = getattr(check, "value", None)
        if isinstance(value, str) and ("{{" in value or "{%" in value):
            try:
                rendered = templates.render(value, case.vars, where=f"{check.type} value")
            except templates.TemplateError as exc:
                raise ValidationError(f"{case.where}: {exc}") from None
            from workbench.rubrics import GradedCheck

            if isinstance(check, GradedCheck):
                check = GradedCheck(rendered, check.weight)  # type: ignore[assignment]
            else:
                check = assertions.parse({"type": check.type, "value": rendered}, case.where)
        checks.append(check)
    return replace(case, checks=tuple(checks))


def model_identity(spec: ModelSpec) -> list[Any]:
    """A model as plain data, its secrets left out (for fingerprints)."""
    options = {k: v for k, v in spec.options.items() if k not in ("api_key",)}
    return [spec.name, spec.backend, options, spec.params]


def _check_data(check: Check) -> list[Any]:
    return [check.type, getattr(check, "value", None)]


def _readable_loc(loc: tuple[Any, ...]) -> tuple[Any, ...]:
    # pydantic names union members (`str`, `_Inline`) in error locations: drop them.
    return tuple(p for p in loc if not (isinstance(p, str) and (p in ("str",) or p.startswith("_"))))


def _variant(entry: Any, base: Path, where: str, store: Callable[[], Store]) -> Variant:
    from workbench.retrieval import parse_bindings

    bindings = parse_bindings(getattr(entry, "retrieval", None), where)
    if isinstance(entry, (str, _StoredRef)):
        from workbench.storage import repo

        ref = entry if isinstance(entry, str) else entry.prompt
        try:
            version = repo.resolve(store(), parse_ref(ref))
        except WorkbenchError as exc:
            raise ValidationError(f"{where}: {exc}") from None
        label = ref if isinstance(entry, str) else entry.label or ref
        return replace(_from_content(label, version.content, version.id, version.prompt),
                       retrieval=bindings)
    if isinstance(entry, _FileRef):
        from workbench.promptfile import load_prompt_file

        file = (base.parent / entry.file).resolve()
        if not file.is_file():
            raise ValidationError(f"{where}: prompt file {entry.file} not found (looked in {file})")
        loaded = load_prompt_file(file)
        return replace(_from_content(entry.label or loaded.name, loaded.content, None, None),
                       retrieval=bindings)
    try:
        content = PromptContent(
            messages=tuple(entry.messages), params=entry.params, variables=dict(entry.variables or {})
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"{where}: {exc.errors()[0]['msg']}") from None
    for index, message in enumerate(content.messages):
        try:
            templates.compile_template(
                message.content, where=templates.message_label(index, message.role)
            )
        except templates.TemplateError as exc:
            raise ValidationError(f"{where}: prompt {entry.name}: {exc}") from None
    return replace(_from_content(entry.name, content, None, None), retrieval=bindings)


def _from_content(
    label: str, content: PromptContent, version_id: str | None, prompt: str | None
) -> Variant:
    return Variant(
        label=label,
        messages=tuple(content.messages),
        defaults=dict(content.variables),
        params=content.params.model_dump(exclude_none=True, exclude={"model"}),
        version_id=version_id,
        prompt=prompt,
    )


def _model(entry: str | _ModelEntry, settings: Settings, where: str) -> ModelSpec:
    from workbench.models import resolve_model

    try:
        if isinstance(entry, str):
            return resolve_model(settings, entry)
        spec = resolve_model(settings, entry.model or entry.name, api_base=entry.api_base)
    except WorkbenchError as exc:
        raise ValidationError(f"{where}: {exc}") from None
    params = {**spec.params, **entry.params.model_dump(exclude_none=True, exclude={"model"})}
    return ModelSpec(entry.name, spec.backend, spec.options, spec.provider, params, spec.source)


def _checks(items: Sequence[Any], at: Callable[..., str], loc: tuple[Any, ...]) -> list[Check]:
    from workbench.rubrics import GradedCheck

    checks: list[Check] = []
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("type") == "llm-rubric":
            unknown = set(item) - {"type", "value"}
            if unknown or not isinstance(item.get("value"), str) or not item["value"].strip():
                raise ValidationError(
                    f"{at(*loc, i)}: llm-rubric takes a 'value': what a good answer does")
            checks.append(GradedCheck(item["value"]))  # type: ignore[arg-type]
        else:
            checks.append(assertions.parse(item, at(*loc, i)))
    return checks


def expected_checks(expected: Any, where: str) -> list[Check]:
    """A dataset case's ``expected`` as checks, in promptfoo's ``__expected`` convention:
    ``type:value`` for a known assertion type (``icontains:refund``, ``is-json``), any
    other text must equal the output; a mapping is an assertion; a list, several."""
    if expected is None:
        return []
    if isinstance(expected, list):
        return [c for item in expected for c in expected_checks(item, where)]
    if isinstance(expected, dict):
        return [assertions.parse(expected, where)]
    text = str(expected)
    kind, sep, value = text.partition(":")
    if kind in assertions.TYPES and (sep or kind.removeprefix("not-") == "is-json"):
        if kind in ("max-length", "latency", "cost"):
            try:
                number: Any = float(value) if "." in value else int(value)
            except ValueError:
                raise ValidationError(f"{where}: {kind} needs a number, got {value!r}") from None
            return [assertions.parse({"type": kind, "value": number}, where)]
        if kind == "json-schema":
            import json

            try:
                schema = json.loads(value)
            except ValueError as exc:
                raise ValidationError(f"{where}: json-schema: invalid JSON: {exc}") from None
            return [assertions.parse({"type": kind, "value": schema}, where)]
        return [assertions.parse({"type": kind, "value": value if sep else None}, where)]
    return [assertions.parse({"type": "equals", "value": text}, where)]


def _dataset_cases(
    name: str, base: Path, where: str, shared: tuple[Check, ...], store: Callable[[], Store]
) -> list[TestCase]:
    if name.lower().endswith((".csv", ".jsonl")):
        from workbench.datasets import read_cases_at

        file = (base.parent / name).resolve()
        if not file.is_file():
            raise ValidationError(f"{where}: dataset file {name} not found (looked in {file})")
        shown = base.parent / name  # as the suite was given: a path from where one stands
        places = [(f"{shown}:{line}", case) for line, case in read_cases_at(file)]
    else:
        from workbench.storage.datasets import get_dataset

        try:
            found = list(get_dataset(store(), name).cases)
        except WorkbenchError as exc:
            raise ValidationError(f"{where}: {exc}") from None
        places = [(f"dataset {name}: case {i + 1}", case) for i, case in enumerate(found)]
    cases = []
    for here, case in places:
        cases.append(
            TestCase(dict(case.vars), shared + tuple(expected_checks(case.expected, here)),
                     where=here, expected_chunks=_expected_chunks(case.metadata, here))
        )
    return cases


def _expected_chunks(metadata: dict[str, Any] | None, where: str) -> tuple[str, ...]:
    """A dataset case's ``expect_chunks`` metadata (a list in JSONL; in CSV the column
    ``__metadata:expect_chunks``, ids separated by commas)."""
    value = (metadata or {}).get("expect_chunks")
    if value is None or value == "":
        return ()
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise ValidationError(f"{where}: expect_chunks: a list of chunk ids (or, in CSV, ids "
                          "separated by commas)")
