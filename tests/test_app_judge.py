"""A judge model scores a Compare grid from the app: every output gets a parseable score (a
scripted judge, and SmolLM2 through llama.cpp), recorded as `workbench eval` records
them; the panel shows the intervals, the paired comparison and the judge's own calls; a
judge that answers garbage or cannot be reached is shown and recorded without a score."""

from __future__ import annotations

from pathlib import Path

import pytest
from scripted_backend import ScriptedBackend, StepClock
from sqlmodel import select

from pilot_helpers import opened, until

from workbench.config import load_settings
from workbench.models import demo_model_path
from workbench.rubrics import Rubric
from workbench.screens.app import make_app
from workbench.storage.datasets import Case, save_dataset
from workbench.storage.db import open_store
from workbench.storage.models import Judgement
from workbench.storage.rubrics import commit_rubric
from workbench.workspace import VariantDraft, Workspace, workspace_path

CONFIG = """\
[models.fast]
backend = "scripted"
model = "fast"

[models.judge]
backend = "scripted"
model = "judge"

[models.judge2]
backend = "scripted"
model = "judge"

[models.fail]
backend = "scripted"
model = "fail"

[models.slowjudge]
backend = "scripted"
model = "judge"
options = { delay_s = 2.0 }
"""
RUBRIC = Rubric.model_validate({"name": "quality", "criteria": [
    {"name": "correct", "scale": "1-5", "description": "5 right, 1 wrong"},
    {"name": "polite", "scale": "pass-fail"}]})
ONLY_ASSERTIONS = Rubric.model_validate({"name": "auto", "criteria": [
    {"name": "short", "assert": {"type": "max-length", "value": 400}}]})


def _setup(tmp_path: Path, monkeypatch, cases: int = 3) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'app.db'}")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(tmp_path / "config.toml"))
    store = open_store(load_settings().database.url)
    save_dataset(store, "qs", [Case({"q": f"question {i}"}) for i in range(cases)])
    commit_rubric(store, RUBRIC, message="m", author="t")
    commit_rubric(store, ONLY_ASSERTIONS, message="m", author="t")
    store.close()
    # b's answers start "Answer:": the scripted judge gives them top marks, a's the lowest.
    Workspace(variants=[
        VariantDraft("a", [{"role": "user", "content": "{{ q }}"}], {}, "fast"),
        VariantDraft("b", [{"role": "user", "content": "Answer: {{ q }}"}], {}, "fast"),
    ], path=workspace_path()).save()


def _app():
    return make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})


def _status(app) -> str:
    return str(app.screen.query_one("#status").render())


async def _pick(pilot, option: str, after=None):
    """Choose the option starting with ``option`` in the Pick dialog opening (not ``after``,
    the one just answered); returns that dialog."""
    dialog = await opened(pilot, "Pick", after=after)
    index = next(i for i, o in enumerate(dialog.options) if o.startswith(option))
    await pilot.press(*["down"] * index, "enter")
    return dialog


async def _grid(pilot) -> None:
    await pilot.press("f3", "ctrl+g")
    await _pick(pilot, "qs")
    await until(pilot, lambda: getattr(pilot.app.screen, "report", None) is not None)


async def _judge(pilot, model: str, rubric: str, done: str = "judged ") -> str:
    await pilot.press("j")
    first = await _pick(pilot, model)
    await _pick(pilot, rubric, after=first)
    await until(pilot, lambda: type(pilot.app.screen).__name__ == "CompareScreen"
                and done in _status(pilot.app))
    return _status(pilot.app)


def _judgements() -> list[Judgement]:
    store = open_store(load_settings().database.url)
    with store.read() as session:
        found = list(session.exec(select(Judgement)).all())
    store.close()
    return found


async def test_a_judge_scores_every_output_and_the_panel_shows_intervals(
    tmp_path: Path, monkeypatch
) -> None:
    _setup(tmp_path, monkeypatch)
    app = _app()
    async with app.run_test(size=(150, 45)) as pilot:
        await _grid(pilot)
        status = await _judge(pilot, "judge", "quality")
        assert "judged 6 outputs with judge on quality@1: 6 scored" in status
        compare = app.screen
        rows = compare.report.rows
        assert all(r.judge["scores"] is not None and "error" not in r.judge for r in rows)
        assert {r.variant: r.judge["weighted"] for r in rows} == {"a": 0.0, "b": 1.0}
        grid = compare.query_one("#grid")
        assert [str(c) for c in grid.get_row_at(0)] == ["0", "✓ pass · J 0.00", "✓ pass · J 1.00"]
        panel = str(compare.query_one("#judge-summary").render())
        assert "Judge judge on quality@1: the judge's scores, apart from reviewers'" in panel
        assert "Judge scores (mean, bootstrap 95% interval):" in panel
        assert "b        fast   weighted   3  1.00 [1.00, 1.00]  0" in panel
        assert "a        fast   correct    3  1.00 [1.00, 1.00]  0" in panel
        assert "Judge calls (the judge's own latency and cost" in panel
        assert "fast: b beats a on 3 of 3 cases" in panel
        await pilot.press("enter")  # the first cell: its verdict with the output
        await until(pilot, lambda: type(app.screen).__name__ == "Show")
        assert "judge judge: correct 1, polite 0 (weighted 0.00): scripted" in (
            app.screen.query_one("TextArea").text)
        await pilot.press("escape")

        # Judged again by the same judge on the same rubric version: nothing is asked again.
        status = await _judge(pilot, "judge", "quality", done="reused")
        assert "with judge on quality@1: 6 scored (6 reused from earlier judgements)" in status

        # The review shows the judge's weighted scores apart from the reviewer's.
        await pilot.press("v")
        await _pick(pilot, "quality@1")
        await until(pilot, lambda: type(app.screen).__name__ == "ReviewScreen")
        review = app.screen
        for _ in range(6):
            await pilot.press("3", "down", "1", "up", "right")
        await until(pilot, lambda: review.done())
        summary = str(review.query_one("#summary").render())
        mine, judge = summary.split("judge judge (not a reviewer; its details are in Compare):")
        assert "a · fast: 0.75 " in mine and "b · fast: 0.75 " in mine
        assert "a · fast: 0.00 " in judge and "b · fast: 1.00 " in judge
        assert "fast: b beats a on 3 of 3 cases" in judge
        await pilot.press("escape", "j")  # the rubric reviewed with comes first
        await _pick(pilot, "judge")
        await until(pilot, lambda: "rubric" in getattr(app.screen, "title_text", ""))
        assert app.screen.options == ["quality@1 (this grid's review)", "auto@1"]
        await pilot.press("escape")
        # Another judge model judges afresh: no other judge's verdict is reused.
        status = await _judge(pilot, "judge2", "quality", done="judged 6 outputs with judge2")
        assert "judged 6 outputs with judge2 on quality@1: 6 scored ·" in status
        await app.workers.wait_for_complete()
    judgements = _judgements()
    assert sorted(j.judge_model for j in judgements) == ["judge"] * 6 + ["judge2"] * 6
    assert all(j.error is None for j in judgements)
    assert all(j.judge_run_id and set(j.scores or {}) == {"correct", "polite"} for j in judgements)


async def test_judge_errors_are_shown_and_recorded_without_a_score(
    tmp_path: Path, monkeypatch
) -> None:
    _setup(tmp_path, monkeypatch, cases=2)
    app = _app()
    async with app.run_test(size=(150, 45)) as pilot:
        await pilot.press("f3", "j")
        assert "run a dataset first" in _status(app)
        await _grid(pilot)
        # `fast` answers prose: not JSON, so no score, and the raw text is kept.
        status = await _judge(pilot, "fast", "quality")
        assert "judged 4 outputs with fast on quality@1: 0 scored, 4 judge errors" in status
        assert "the judge's answer is not JSON" in status
        assert app.screen.query_one("#status").has_class("error-message")
        grid = app.screen.query_one("#grid")
        assert [str(c) for c in grid.get_row_at(1)] == ["1", "✓ pass · J error", "✓ pass · J error"]
        panel = str(app.screen.query_one("#judge-summary").render())
        assert "a        fast   weighted   0  -              2" in panel  # n 0, 2 judge errors
        # A judge that cannot be reached: its call's error, no score.
        status = await _judge(pilot, "fail", "quality", done="judged 4 outputs with fail")
        assert "4 judge errors" in status and "the judge's call failed" in status
        # A rubric with nothing for a judge to score.
        status = await _judge(pilot, "judge", "auto", done="has nothing for a judge")
        assert app.is_running
        await app.workers.wait_for_complete()
    judgements = _judgements()
    assert len(judgements) == 8 and all(j.scores is None and j.error for j in judgements)
    prose = [j for j in judgements if j.judge_model == "fast"]
    assert all("not JSON" in (j.error or "") and j.raw.startswith("fast says:") for j in prose)
    failed = [j for j in judgements if j.judge_model == "fail"]
    assert all("HTTP 500" in (j.error or "") for j in failed)


async def test_escape_cancels_judging(tmp_path: Path, monkeypatch) -> None:
    _setup(tmp_path, monkeypatch, cases=2)
    app = _app()
    async with app.run_test(size=(150, 45)) as pilot:
        await _grid(pilot)
        await _judge(pilot, "slowjudge", "quality", done="judging 4 outputs")
        await pilot.press("j")
        assert "already judging" in _status(app)
        await pilot.press("escape")
        await until(pilot, lambda: "judging cancelled after 0 of 4" in _status(app))
        assert app.is_running and app.screen.report.rows[0].judge is None
        await app.workers.wait_for_complete()
    assert _judgements() == []


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
async def test_smollm2_judges_every_output_of_the_grid(tmp_path: Path, monkeypatch) -> None:
    """The real model through llama.cpp, its answers constrained by the rubric's grammar:
    a parseable score for every output, and the summary with its intervals."""
    _setup(tmp_path, monkeypatch, cases=2)
    app = _app()
    async with app.run_test(size=(150, 45)) as pilot:
        await _grid(pilot)
        await pilot.press("j")
        first = await _pick(pilot, "smollm2")
        await _pick(pilot, "quality", after=first)
        await until(pilot, lambda: "judged " in _status(app), timeout_s=240)
        assert "judged 4 outputs with smollm2 on quality@1: 4 scored" in _status(app)
        rows = app.screen.report.rows
        for row in rows:
            scores = row.judge["scores"]
            assert 1 <= scores["correct"] <= 5 and scores["polite"] in (0, 1), row.judge
            assert row.judge["latency_ms"] > 0 and 0 <= row.judge["weighted"] <= 1
        panel = str(app.screen.query_one("#judge-summary").render())
        assert "Judge smollm2 on quality@1" in panel and "MEAN [95% CI]" in panel
        assert panel.count("weighted ") >= 2 and "Judge calls" in panel
    judgements = _judgements()
    assert len(judgements) == 4 and all(j.error is None and j.scores for j in judgements)
