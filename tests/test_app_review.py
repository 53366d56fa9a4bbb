"""Human review by keyboard: a 20-case A/B grid scored per criterion in blind mode, saved
at once, names revealed when done, and agreement once a second reviewer has scored."""

from __future__ import annotations

from pathlib import Path

from scripted_backend import ScriptedBackend, StepClock

from pilot_helpers import opened, until

from workbench.config import load_settings
from workbench.rubrics import Rubric
from workbench.screens.app import make_app
from workbench.screens.review import review_order
from workbench.storage.datasets import Case, save_dataset
from workbench.storage.db import open_store
from workbench.storage.models import Score
from workbench.storage.rubrics import commit_rubric
from workbench.workspace import VariantDraft, Workspace, workspace_path

CONFIG = '[models.fast]\nbackend = "scripted"\nmodel = "fast"\n'
RUBRIC = Rubric.model_validate({"name": "quality", "criteria": [
    {"name": "correct", "scale": "1-5", "description": "5 right, 1 wrong"},
    {"name": "polite", "scale": "pass-fail"}]})


def _setup(tmp_path: Path, monkeypatch, rubric: Rubric = RUBRIC, cases: int = 20) -> None:
    monkeypatch.setenv("WORKBENCH_DATABASE__URL", f"sqlite:///{tmp_path / 'app.db'}")
    (tmp_path / "config.toml").write_text(CONFIG, encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(tmp_path / "config.toml"))
    store = open_store(load_settings().database.url)
    save_dataset(store, "twenty", [Case({"q": f"question {i}"}) for i in range(cases)])
    commit_rubric(store, rubric, message="m", author="t")
    store.close()
    Workspace(variants=[
        VariantDraft("a", [{"role": "user", "content": "{{ q }}"}], {}, "fast"),
        VariantDraft("b", [{"role": "user", "content": "Answer: {{ q }}"}], {}, "fast"),
    ], path=workspace_path()).save()



_until = until


async def _open_review(app, pilot):
    """Run the grid over the first dataset, then open its review with the first rubric."""
    await pilot.press("f3", "ctrl+g")
    await opened(pilot, "Pick", 120.0)
    await pilot.press("enter")
    await _until(pilot, lambda: getattr(app.screen, "report", None) is not None)
    await pilot.press("v")
    await opened(pilot, "Pick", 120.0)
    await pilot.press("enter")
    await _until(pilot, lambda: type(app.screen).__name__ == "ReviewScreen")
    return app.screen


async def _review(app, pilot, first: str, second: str) -> None:
    review = await _open_review(app, pilot)
    assert len(review.order) == 40
    seen_names = set()
    for _ in range(40):
        seen_names.add(str(review.query_one("#where").render()))
        await pilot.press(first, "down", second, "up", "right")
    await _until(pilot, lambda: review.done())
    assert all(" · blind" in w and ("output A" in w or "output B" in w) for w in seen_names)
    where = str(review.query_one("#where").render())
    assert "a · fast" in where or "b · fast" in where  # names shown once done
    summary = str(review.query_one("#summary").render())
    assert "a · fast: " in summary and "b · fast: " in summary and "over 20 cases" in summary
    assert "20 cases (20 ties)" in summary or "no difference" in summary


async def test_blind_review_of_a_20_case_grid(tmp_path: Path, monkeypatch) -> None:
    _setup(tmp_path, monkeypatch)
    app = make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})
    async with app.run_test(size=(150, 40)) as pilot:
        await _review(app, pilot, "4", "1")
        await app.workers.wait_for_complete()
    store = open_store(load_settings().database.url)
    from sqlmodel import select

    with store.read() as session:
        scores = session.exec(select(Score)).all()
    assert len(scores) == 80 and {s.reviewer for s in scores} == {"tester"}
    assert sorted({(s.criterion, s.value) for s in scores}) == [("correct", 4), ("polite", 1)]
    store.close()

    monkeypatch.setenv("WORKBENCH_USER__NAME", "bob")
    app = make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})
    async with app.run_test(size=(150, 40)) as pilot:
        review = await _open_review(app, pilot)
        # The grid re-ran from the cache: the same outputs, so tester's scores count.
        await _until(pilot, lambda: review.others)
        for i in range(40):
            await pilot.press("4" if i % 2 else "3", "down", "1", "up", "right")
        await _until(pilot, lambda: "agreement" in str(review.query_one("#status").render()))
        assert "correct" in review.agreement()


async def _score_by_variant(app, pilot, scores: dict[str, list[int]], outputs: int) -> str:
    """Run the grid, open the blind review and give each output the scores of its variant
    (one per judged criterion, top to bottom); the summary once every output is scored."""
    review = await _open_review(app, pilot)
    assert len(review.order) == outputs
    for _ in range(outputs):
        given = scores[review.current().variant]  # the test peeks; the reviewer cannot
        for i, value in enumerate(given):
            await pilot.press(str(value), *(["down"] if i < len(given) - 1 else []))
        await pilot.press(*["up"] * (len(given) - 1), "right")
    await _until(pilot, lambda: review.done())
    return str(review.query_one("#summary").render())


async def test_review_summary_names_the_better_variant(tmp_path: Path, monkeypatch) -> None:
    """b scored higher on every case: the summary credits b's wins to b, not to a."""
    _setup(tmp_path, monkeypatch, cases=4)
    app = make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})
    async with app.run_test(size=(150, 40)) as pilot:
        summary = await _score_by_variant(app, pilot, {"a": [2, 1], "b": [5, 1]}, outputs=8)
        await app.workers.wait_for_complete()
    assert "fast: b beats a on 4 of 4 cases (no ties)" in summary
    assert "a beats b" not in summary and "a · fast beats" not in summary
    assert "a · fast: 0.62 " in summary and "b · fast: 1.00 " in summary
    assert "each variant against a (the first), on each model:" in summary


async def test_review_summary_weighs_automatic_criteria_as_eval_does(
    tmp_path: Path, monkeypatch
) -> None:
    """An automatic criterion counts in the app's weighted score, scored by its assertion,
    as in `workbench eval`: here it turns the outcome (b's answers all say "Answer:")."""
    rubric = Rubric.model_validate({"name": "mixed", "criteria": [
        {"name": "correct", "scale": "1-5"},
        {"name": "plain", "assert": {"type": "not-contains", "value": "Answer:"}}]})
    _setup(tmp_path, monkeypatch, rubric=rubric, cases=3)
    app = make_app(load_settings(), engine_options={
        "backend_classes": {"scripted": ScriptedBackend}, "clock": StepClock()})
    async with app.run_test(size=(150, 40)) as pilot:
        summary = await _score_by_variant(app, pilot, {"a": [2], "b": [5]}, outputs=6)
        weighted_a = rubric.weighted({"correct": 2, "plain": 1})  # (0.25 + 1) / 2
        weighted_b = rubric.weighted({"correct": 5, "plain": 0})  # (1 + 0) / 2
        assert f"a · fast: {weighted_a:.2f} " in summary
        assert f"b · fast: {weighted_b:.2f} " in summary
        assert "(weighted with plain, scored by their assertions)" in summary
        assert "fast: a beats b on 3 of 3 cases" in summary
        rows = app.screen.scored_rows()
        assert {r.variant: r.judge["automatic"] for r in rows} == {
            "a": {"plain": 1}, "b": {"plain": 0}}
        await app.workers.wait_for_complete()


def test_blind_order_is_shuffled_per_case_and_stable() -> None:
    class R:
        def __init__(self, variant: str, idx: int):
            self.variant, self.test_idx, self.repeat, self.status = variant, idx, 0, "ok"

    rows = [R(v, i) for v in "ab" for i in range(30)]
    plain = review_order(rows, blind=False, seed=1)
    assert [(r.test_idx, r.variant) for r in plain[:4]] == [(0, "a"), (0, "b"), (1, "a"), (1, "b")]
    blind = review_order(rows, blind=True, seed=1)
    assert [r.test_idx for r in blind] == [r.test_idx for r in plain]
    assert [r.variant for r in blind] != [r.variant for r in plain]  # some cases swapped
    assert [id(r) for r in review_order(rows, blind=True, seed=1)] == [id(r) for r in blind]


def test_review_screen_snapshot(snap_compare, tmp_path: Path, monkeypatch) -> None:
    from workbench.evaluate import Row
    from workbench.screens.review import ReviewScreen
    from workbench.storage.rubrics import resolve_rubric

    _setup(tmp_path, monkeypatch)
    store = open_store(load_settings().database.url)
    info = resolve_rubric(store, "quality")
    store.close()
    rows = [Row(v, "fast", i, 0, {"q": f"question {i}"}, f"fast says: {v} [b]{i}[/b]", True, "", "ok",
                None, False, f"{v}{i:031d}", {}) for i in range(3) for v in ("a", "b")]

    async def open_review(pilot) -> None:
        await pilot.app.push_screen(ReviewScreen(rows, info, blind=True, seed=7))
        await pilot.pause(0.3)

    assert snap_compare(make_app(load_settings()), terminal_size=(110, 24), run_before=open_review)
