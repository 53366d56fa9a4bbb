"""Rubrics: the criteria outputs are scored on, by people and by judge models.

A rubric file (YAML)::

    name: support-quality
    description: How good is a support answer?
    criteria:
      - name: correctness
        description: |
          5: fully correct and complete; 3: partly correct; 1: wrong
        scale: 1-5              # an integer range LOW-HIGH, or pass-fail
        weight: 2
      - name: tone
        description: polite and calm
        scale: pass-fail        # 1 pass, 0 fail
      - name: format
        assert: {type: max-length, value: 400}   # scored automatically, pass-fail

A judge answers with JSON of the rubric's shape (:meth:`Rubric.judge_schema`); on
llama.cpp the answer is constrained to it by a grammar, on hosted models by JSON schema
output. An answer that still does not parse is an error, never a score.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from workbench import assertions, yamlio
from workbench.domain import canonical_json, check_name
from workbench.errors import ValidationError

_RANGE = re.compile(r"^\s*(-?\d+)\s*-\s*(-?\d+)\s*$")


class Criterion(BaseModel):
    """One thing to score."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_-]{0,63}$")
    description: str = ""
    scale: str = "1-5"
    """``LOW-HIGH`` (integers) or ``pass-fail``."""
    weight: float = Field(default=1.0, ge=0)
    assert_: dict[str, Any] | None = Field(default=None, alias="assert")
    """An assertion that scores this criterion automatically (pass 1, fail 0)."""

    @field_validator("scale")
    @classmethod
    def _scale(cls, value: str) -> str:
        if value == "pass-fail":
            return value
        match = _RANGE.match(value)
        if not match or int(match.group(1)) >= int(match.group(2)):
            raise ValueError("a scale is LOW-HIGH (integers, LOW < HIGH, e.g. 1-5) or pass-fail")
        if int(match.group(2)) - int(match.group(1)) > 100:
            raise ValueError("a scale spans at most 100 points")
        return f"{int(match.group(1))}-{int(match.group(2))}"

    @model_validator(mode="after")
    def _automatic_is_pass_fail(self) -> Criterion:
        if self.assert_ is not None:
            if self.scale not in ("pass-fail", "1-5"):
                raise ValueError("a criterion with an assertion is scored pass-fail")
            assertions.parse(self.assert_, f"criterion {self.name}")
            object.__setattr__(self, "scale", "pass-fail")
        return self

    @property
    def bounds(self) -> tuple[int, int]:
        """The lowest and highest score."""
        if self.scale == "pass-fail":
            return 0, 1
        low, high = _split(self.scale)
        return int(low), int(high)

    @property
    def automatic(self) -> bool:
        return self.assert_ is not None

    def normalised(self, score: float) -> float:
        """A score on 0..1 (so criteria with different scales can be combined)."""
        low, high = self.bounds
        return (score - low) / (high - low)


def _split(scale: str) -> tuple[str, str]:
    match = _RANGE.match(scale)
    assert match is not None
    return match.group(1), match.group(2)


class Rubric(BaseModel):
    """A named set of criteria."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    description: str = ""
    criteria: tuple[Criterion, ...] = Field(min_length=1)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        return check_name(value)

    @field_validator("criteria")
    @classmethod
    def _unique(cls, value: tuple[Criterion, ...]) -> tuple[Criterion, ...]:
        names = [c.name for c in value]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ValueError(f"criteria named twice: {', '.join(twice)}")
        return value

    def content(self) -> dict[str, Any]:
        """Plain data, as stored and hashed."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)

    def content_hash(self) -> str:
        return hashlib.sha256(canonical_json(self.content()).encode()).hexdigest()

    @property
    def judged(self) -> tuple[Criterion, ...]:
        """The criteria a judge (or a person) scores: all but the automatic ones."""
        return tuple(c for c in self.criteria if not c.automatic)

    def judge_schema(self) -> dict[str, Any]:
        """The JSON Schema of a judge's answer: a score per judged criterion, a reason."""
        scores = {
            c.name: {"type": "integer", "minimum": c.bounds[0], "maximum": c.bounds[1]}
            for c in self.judged
        }
        return {
            "type": "object",
            "properties": {
                "scores": {
                    "type": "object",
                    "properties": scores,
                    "required": list(scores),
                    "additionalProperties": False,
                },
                "reason": {"type": "string", "maxLength": 600},
            },
            "required": ["scores", "reason"],
            "additionalProperties": False,
        }

    def weighted(self, scores: dict[str, float]) -> float | None:
        """The weighted mean of the normalised scores (0..1); None when none is known."""
        total = weight = 0.0
        for criterion in self.criteria:
            if criterion.name in scores and scores[criterion.name] is not None:
                total += criterion.weight * criterion.normalised(scores[criterion.name])
                weight += criterion.weight
        return total / weight if weight else None


def automatic_scorer(rubric: Rubric) -> Callable[[str, Mapping[str, Any] | None], dict[str, int]]:
    """A function scoring ``rubric``'s automatic criteria on one output by their
    assertions (pass 1, fail 0): ``score(output, metrics)``, latency and cost read from a
    run's metrics (``e2e_ms``, ``cost_usd``). The assertions are parsed once, here.
    ``workbench eval`` and the app's review both score with it, so their weighted scores
    mean the same."""
    checks = [(c.name, assertions.parse(c.assert_, c.name)) for c in rubric.criteria if c.automatic]

    def score(output: str, metrics: Mapping[str, Any] | None) -> dict[str, int]:
        metrics = metrics or {}
        seen = assertions.Observation(output, metrics.get("e2e_ms"), metrics.get("cost_usd"))
        return {name: int(check.check(seen).passed) for name, check in checks}

    return score


@dataclass(frozen=True)
class JudgeAnswer:
    """A judge's parsed answer, or why it could not be used (with the raw text)."""

    scores: dict[str, int] | None
    reason: str
    error: str | None = None
    raw: str = ""


def parse_judge_answer(rubric: Rubric, raw: str) -> JudgeAnswer:
    """Check a judge's answer against the rubric: every judged criterion scored with an
    integer in its range. Anything else is an error that keeps the raw text."""
    text = raw.strip()
    if text.startswith("```"):
        text = text.strip("`").removeprefix("json").strip()
    try:
        data = json.loads(text)
    except ValueError as exc:
        return JudgeAnswer(None, "", f"the judge's answer is not JSON ({exc})", raw)
    if not isinstance(data, dict) or not isinstance(data.get("scores"), dict):
        return JudgeAnswer(None, "", "the judge's answer has no 'scores' object", raw)
    scores: dict[str, int] = {}
    for criterion in rubric.judged:
        value = data["scores"].get(criterion.name)
        low, high = criterion.bounds
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or (isinstance(value, float) and not value.is_integer())  # NaN and inf too
        ):
            return JudgeAnswer(None, "", f"no integer score for {criterion.name!r}", raw)
        if not low <= value <= high:
            return JudgeAnswer(
                None, "", f"score {value} for {criterion.name!r} is outside {low}..{high}", raw
            )
        scores[criterion.name] = int(value)
    reason = data.get("reason")
    return JudgeAnswer(scores, reason if isinstance(reason, str) else "", None, raw)


def judge_messages(rubric: Rubric, prompt: list[dict[str, str]], output: str) -> list[dict[str, str]]:
    """What a judge model is asked: the rubric, the conversation and the answer to score."""
    lines = [
        "You are a strict evaluator. Score the ANSWER to the CONVERSATION on each criterion.",
        "Reply with JSON only, exactly this shape:",
        json.dumps({"scores": {c.name: c.bounds[0] for c in rubric.judged}, "reason": "..."}),
        "",
        "Criteria:",
    ]
    for c in rubric.judged:
        low, high = c.bounds
        scale = "1 = pass, 0 = fail" if c.scale == "pass-fail" else f"an integer from {low} to {high}"
        lines.append(f"- {c.name} ({scale}): {c.description.strip() or c.name}")
    conversation = "\n".join(f"{m['role'].upper()}: {m['content']}" for m in prompt)
    user = f"CONVERSATION:\n{conversation}\n\nANSWER:\n{output}\n\nScore the ANSWER now."
    return [{"role": "system", "content": "\n".join(lines)}, {"role": "user", "content": user}]


def load_rubric_file(path: Path) -> Rubric:
    """Read and check a rubric file.

    Raises:
        ValidationError: unreadable, invalid YAML, or not a valid rubric (with the line).
    """
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValidationError(f"cannot read {path}: {exc}") from None
    data, root = yamlio.load(text, str(path))
    return rubric_from_data(data, str(path), root)


def rubric_from_data(data: Any, source: str, root: Any = None) -> Rubric:
    """A rubric from plain data (a file's, or inline in a suite)."""
    from workbench.yamlio import line_of

    if not isinstance(data, dict):
        raise ValidationError(f"{source}: a rubric is a mapping with 'name' and 'criteria'")
    try:
        return Rubric.model_validate(data)
    except PydanticValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(err["loc"])
            line = f":{line_of(root, loc)}" if root is not None else ""
            what = ".".join(str(p) for p in loc) or "rubric"
            problems.append(f"{source}{line}: {what}: {err['msg']}")
        raise ValidationError("\n".join(problems)) from None
    except ValidationError as exc:
        raise ValidationError(f"{source}: {exc}") from None


@dataclass(frozen=True, eq=False)
class GradedCheck:
    """``llm-rubric``: a grader model judges whether the output meets the text of
    ``value`` (a one-criterion, pass/fail rubric). The grading happens before the checks
    run; the verdict arrives in :attr:`Observation.graded`.

    Compared by identity: the verdicts are keyed by ``id(check)``.
    """

    value: str
    weight: float = 1.0
    type: str = "llm-rubric"

    @property
    def rubric(self) -> Rubric:
        return Rubric(name="llm-rubric", criteria=(
            Criterion(name="pass", description=f"1 if the answer meets this, else 0: {self.value}",
                      scale="pass-fail"),
        ))

    def evaluate(self, seen: Any) -> Any:
        from workbench.assertions import Verdict

        found = (seen.graded or {}).get(id(self))
        if found is None:
            return Verdict(False, "not graded (no grader answered)")
        passed, reason = found
        return Verdict(passed, "ok" if passed else f"the grader says no: {reason}")

    def check(self, seen: Any) -> Any:
        return self.evaluate(seen)

    def describe(self) -> dict[str, Any]:
        return {"type": self.type, "value": self.value, "weight": self.weight}


def graded_checks(checks: Any) -> list[GradedCheck]:
    """The model-graded checks among ``checks`` (inside a test's threshold too)."""
    found: list[GradedCheck] = []
    for check in checks:
        if isinstance(check, GradedCheck):
            found.append(check)
        found.extend(graded_checks(getattr(check, "assertions", ())))
    return found
