"""Rubrics, their storage, and judges: a SmolLM2 judge gives a parseable score for every
output; a judge that answers garbage gives an error with the raw text, never a score."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from fault_server import FaultServer, Scenario

from workbench.cli import cli
from workbench.errors import NotFoundError, StoreConflictError, ValidationError
from workbench.models import demo_model_path
from workbench.rubrics import Rubric, parse_judge_answer, rubric_from_data
from workbench.storage import rubrics as stored
from workbench.storage.db import Store

RUBRIC = {
    "name": "support-quality",
    "criteria": [
        {"name": "correctness", "description": "5 correct, 1 wrong", "scale": "1-5", "weight": 2},
        {"name": "polite", "description": "polite and calm", "scale": "pass-fail"},
        {"name": "short", "assert": {"type": "max-length", "value": 40}},
    ],
}


def test_rubric_shape_and_checks() -> None:
    rubric = Rubric.model_validate(RUBRIC)
    assert [c.bounds for c in rubric.criteria] == [(1, 5), (0, 1), (0, 1)]
    assert [c.name for c in rubric.judged] == ["correctness", "polite"]
    schema = rubric.judge_schema()["properties"]["scores"]
    assert schema["required"] == ["correctness", "polite"]
    assert schema["properties"]["correctness"] == {"type": "integer", "minimum": 1, "maximum": 5}
    assert rubric.weighted({"correctness": 5, "polite": 0, "short": 1}) == pytest.approx(3 / 4)
    for bad, words in (
        ({**RUBRIC, "criteria": []}, "at least 1"),
        ({**RUBRIC, "criteria": [{"name": "x", "scale": "5-1"}]}, "LOW < HIGH"),
        ({**RUBRIC, "criteria": [{"name": "x"}, {"name": "x"}]}, "named twice"),
        ({**RUBRIC, "colour": 1}, "Extra inputs"),
    ):
        with pytest.raises(ValidationError, match=words):
            rubric_from_data(bad, "r.yaml")


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ('{"scores": {"correctness": 4, "polite": 1}, "reason": "fine"}', None),
        ('```json\n{"scores": {"correctness": 4, "polite": 1}, "reason": ""}\n```', None),
        ("I think it is a 4.", "not JSON"),
        ('{"score": 4}', "no 'scores' object"),
        ('{"scores": {"correctness": 4}}', "no integer score for 'polite'"),
        ('{"scores": {"correctness": 9, "polite": 1}}', "outside 1..5"),
        ('{"scores": {"correctness": 3.5, "polite": 1}}', "no integer score"),
        ('{"scores": {"correctness": true, "polite": 1}}', "no integer score"),
        ('{"scores": {"correctness": NaN, "polite": 1}}', "no integer score"),
    ],
)
def test_judge_answers_parse_or_fail_with_the_raw_text(raw: str, error: str | None) -> None:
    answer = parse_judge_answer(Rubric.model_validate(RUBRIC), raw)
    if error is None:
        assert answer.error is None and answer.scores == {"correctness": 4, "polite": 1}
    else:
        assert answer.scores is None and error in (answer.error or "") and answer.raw == raw


def test_rubric_versions_are_stored_like_prompts(store: Store) -> None:
    rubric = Rubric.model_validate(RUBRIC)
    first, new = stored.commit_rubric(store, rubric, message="m", author="ann")
    assert new and first.ref == "support-quality@1"
    same, new = stored.commit_rubric(store, rubric, message="again", author="ann")
    assert not new and same.id == first.id
    changed = Rubric.model_validate({**RUBRIC, "description": "v2"})
    second, _ = stored.commit_rubric(store, changed, message="m", author="bob")
    assert second.number == 2 and stored.resolve_rubric(store, "support-quality").id == second.id
    assert stored.resolve_rubric(store, "support-quality@1").rubric == rubric
    assert [r.ref for r in stored.list_rubrics(store)] == ["support-quality@2"]
    with pytest.raises(NotFoundError):
        stored.resolve_rubric(store, "support-quality@9")
    from sqlalchemy import text

    with pytest.raises(StoreConflictError), store.write() as session:  # immutable in the database
        session.execute(text("UPDATE rubric_version SET message = 'x'"))


def _suite(tmp_path: Path, judge: str) -> Path:
    (tmp_path / "rubric.yaml").write_text(json.dumps(RUBRIC), encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "prompts:\n  - {name: p, messages: [{role: user, content: '{{ text }}'}]}\n"
        "models: [echo]\n"
        "tests:\n"
        "  - vars: {text: 'Paris is the capital of France.'}\n"
        "  - vars: {text: 'I do not know, go away. This answer is much too long to be short.'}\n"
        "  - vars: {text: 'Berlin.'}\n"
        f"judge: {{model: {judge}, rubric: rubric.yaml}}\n",
        encoding="utf-8",
    )
    return suite


def test_a_judge_that_answers_garbage_gives_errors_not_scores(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "echo")), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    rows = json.loads(result.stdout)["results"]
    for row in rows:
        judge = row["judge"]
        assert judge["model"] == "echo" and judge["scores"] is None
        assert "no 'scores' object" in judge["error"]["message"]
        assert judge["error"]["raw"].startswith("[")  # echo answered the messages as JSON
        assert judge["latency_ms"] is not None and judge["cost_usd"] == 0
        assert "weighted" not in judge


def test_automatic_criteria_keep_their_scores_when_the_judge_fails(tmp_path: Path) -> None:
    """The assertion-scored criterion does not depend on the judge: its scores stay in
    every row and in the summary; the judged criteria and `weighted` have none."""
    result = CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "echo")), "--json"],
                                catch_exceptions=False)
    data = json.loads(result.stdout)
    assert [r["judge"]["automatic"] for r in data["results"]] == [
        {"short": 1}, {"short": 0}, {"short": 1}]
    by_criterion = {s["criterion"]: s for s in data["scores"]}
    assert by_criterion["short"]["n"] == 3 and by_criterion["short"]["mean"] == pytest.approx(2 / 3)
    assert by_criterion["short"]["judge_errors"] == 3
    assert by_criterion["correctness"]["n"] == by_criterion["weighted"]["n"] == 0
    assert by_criterion["weighted"]["mean"] is None and data["score_comparisons"] == []


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
def test_smollm2_judge_scores_every_output(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "smollm2")), "--json"],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    rows = data["results"]
    assert {s["criterion"] for s in data["scores"]} == {"correctness", "polite", "short", "weighted"}
    assert all(s["n"] == 3 and s["judge_errors"] == 0 for s in data["scores"])
    assert len(rows) == 3
    for row in rows:
        judge = row["judge"]
        assert "error" not in judge, judge
        assert set(judge["scores"]) == {"correctness", "polite", "short"}
        assert 1 <= judge["scores"]["correctness"] <= 5 and judge["scores"]["polite"] in (0, 1)
        assert judge["latency_ms"] > 0 and 0 <= judge["weighted"] <= 1
    assert [r["judge"]["scores"]["short"] for r in rows] == [1, 0, 1]  # the automatic criterion
    again = json.loads(CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "smollm2")),
                                                "--json"]).stdout)["results"]
    assert all(r["judge"].get("reused") for r in again)  # judged once per rubric version
    text = CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "smollm2"))]).stdout
    assert "Judge scores (mean, bootstrap 95% interval):" in text and "correctness" in text


def test_rubrics_cli(tmp_path: Path) -> None:
    import yaml

    path = tmp_path / "rubric.yaml"
    path.write_text(yaml.safe_dump(RUBRIC), encoding="utf-8")
    runner = CliRunner()
    assert runner.invoke(cli, ["rubrics", "commit", str(path), "-m", "first"]).stdout == "support-quality@1\n"
    assert "(unchanged)" in runner.invoke(cli, ["rubrics", "commit", str(path), "-m", "x"]).stdout
    listed = json.loads(runner.invoke(cli, ["rubrics", "list", "--json"]).stdout)
    assert listed[0]["criteria"] == ["correctness", "polite", "short"]
    shown = runner.invoke(cli, ["rubrics", "show", "support-quality@1"]).stdout
    assert yaml.safe_load(shown) == Rubric.model_validate(RUBRIC).content()
    missing = runner.invoke(cli, ["rubrics", "show", "nope"])
    assert missing.exit_code == 1 and "unknown rubric 'nope'" in missing.stderr
    path.write_text("name: r\ncriteria:\n  - {name: x, scale: 9-1}\n", encoding="utf-8")
    bad = runner.invoke(cli, ["rubrics", "commit", str(path), "-m", "x"])
    assert bad.exit_code == 1 and "rubric.yaml:3: criteria.0.scale" in bad.stderr


def test_score_statistics_summarise_and_compare() -> None:
    from workbench.evaluate import Row, score_statistics
    from workbench.models import ModelSpec
    from workbench.suite import Suite

    rubric = Rubric.model_validate(RUBRIC)
    model = ModelSpec("m", "echo", {})
    suite = Suite(source="s", description="", variants=(), models=(model,), cases=(), rubric=rubric)
    rows = []
    a_scores = [2, 3, 2, 3, 2, 3, 2, 3, 2, 3, 2, 3]
    b_scores = [4, 5, 4, 5, 4, 5, 4, 5, 4, 5, 4, 3]
    for variant, scores in (("A", a_scores), ("B", b_scores)):
        for i, s in enumerate(scores):
            judged = {"correctness": s, "polite": 1, "short": 1}
            rows.append(Row(variant, "m", i, 0, {}, "x", True, "", "ok", None, False, f"{variant}{i}", {},
                            judge={"scores": judged, "weighted": rubric.weighted(judged)}))
    rows.append(Row("A", "m", 99, 0, {}, "x", True, "", "ok", None, False, "err", {},
                    judge={"scores": None, "error": {"message": "bad", "raw": "?"}}))
    summary, comparisons = score_statistics(suite, rows, [("A", "B")])
    a = next(s for s in summary if s["variant"] == "A" and s["criterion"] == "correctness")
    assert a["n"] == 12 and a["mean"] == pytest.approx(2.5) and a["ci_low"] < 2.5 < a["ci_high"]
    assert a["judge_errors"] == 1
    (comparison,) = comparisons
    assert (comparison["wins"], comparison["ties"], comparison["losses"]) == (11, 1, 0)
    assert comparison["sign_p"] < 0.01
    assert comparison["sentence"].startswith("m: B beats A on 11 of 12 cases")
    flipped = score_statistics(suite, rows, [("B", "A")])[1][0]
    assert flipped["sentence"].startswith("m: B beats A")  # the better one is named first
    from workbench.report import compare_scores

    other_model = [replace(r, model="n", variant="A") for r in rows if r.variant == "B"]
    across = compare_scores(rows + other_model, ("A", "m"), ("A", "n"))
    assert across is not None and across["model"] is None
    assert across["sentence"].startswith("A · n beats A · m on 11 of 12 cases")


def test_eval_shows_the_judges_latency_and_cost_apart_from_the_runs() -> None:
    from workbench.cli_eval import render_report
    from workbench.models import ModelSpec
    from workbench.report import Report, Row, judge_figures, score_summary, summarise
    from workbench.suite import Suite

    rubric = Rubric.model_validate(RUBRIC)
    suite = Suite(source="s", description="", variants=(), models=(ModelSpec("m", "echo", {}),),
                  cases=(), rubric=rubric)
    scores = {"correctness": 4, "polite": 1, "short": 1}

    def row(variant: str, i: int, **judge: object) -> Row:
        # The judged run itself took 5 s and cost $1: none of it is the judge's.
        return Row(variant, "m", i, 0, {}, "x", True, "", "ok", None, False, f"{variant}{i}",
                   {"e2e_ms": 5000.0, "cost_usd": 1.0},
                   judge={"model": "j", "scores": scores, "weighted": 0.9, **judge})

    rows = [row("A", 0, latency_ms=100.0, cost_usd=0.001),
            row("A", 1, latency_ms=300.0, cost_usd=0.001),
            row("A", 2, latency_ms=200.0, cost_usd=0.001),
            row("A", 3, latency_ms=None, cost_usd=0.0, reused=True),
            row("B", 0, latency_ms=50.0, cost_usd=None)]
    figures = judge_figures(rows)
    assert figures[0] == {"variant": "A", "model": "m", "calls": 3, "reused": 1,
                          "latency_p50_ms": 200.0, "cost_usd": pytest.approx(0.003)}
    assert figures[1]["cost_usd"] is None and figures[1]["latency_p50_ms"] == 50.0
    report = Report("e1", suite, rows, [summarise("A", "m", rows[:4]), summarise("B", "m", rows[4:])],
                    [], scores=score_summary(rubric, rows), judge_summary=figures)
    text = render_report(report)
    head = "Judge calls (the judge's own latency and cost, apart from the runs above):\n"
    section = text.split(head)[1].splitlines()
    assert section[0].split() == ["VARIANT", "MODEL", "CALLS", "REUSED", "LATENCY", "P50", "COST"]
    assert section[1].split() == ["A", "m", "3", "1", "200", "$0.0030"]
    assert section[2].split() == ["B", "m", "1", "0", "50", "unknown"]
    assert report.as_dict()["judge_summary"] == figures


def test_eval_terminal_report_has_the_judge_calls(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_suite(tmp_path, "echo"))], catch_exceptions=False)
    section = result.stdout.split("Judge calls (the judge's own latency and cost")[1].splitlines()
    cells = section[2].split()
    assert cells[:4] == ["p", "echo", "3", "0"] and cells[5] == "$0.0000"  # echo is free
    assert float(cells[4]) >= 0


JUDGE_REPLY = '{"scores": {"correctness": 4, "polite": 1}, "reason": "right and polite"}'
hosted = pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*",
                                    "ignore:Item .* is using the `ReadOnly` qualifier:UserWarning")


def _hosted_judge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str, url: str) -> Path:
    """The echo suite, judged by a model configured as ``judge`` behind ``url``."""
    model = "openai/fake" if backend == "litellm" else "fake"
    config = tmp_path / "config.toml"
    config.write_text(f'[models.judge]\nbackend = "{backend}"\nmodel = "{model}"\n'
                      f'api_base = "{url}"\n', encoding="utf-8")
    monkeypatch.setenv("WORKBENCH_CONFIG_FILE", str(config))
    return _suite(tmp_path, "judge")


@hosted
@pytest.mark.parametrize("backend", ["openai", "litellm"])
def test_a_hosted_judge_is_sent_the_rubrics_json_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    with FaultServer(Scenario("ok", reply=JUDGE_REPLY)) as server:
        suite = _hosted_judge(tmp_path, monkeypatch, backend, server.base_url)
        result = CliRunner().invoke(cli, ["eval", str(suite), "--json"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    bodies = [r.body or {} for r in server.requests]
    assert len(bodies) == 3  # one judge call per output: the judged model is echo
    schema = Rubric.model_validate(RUBRIC).judge_schema()
    for body in bodies:
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {"name": "rubric_scores", "schema": schema, "strict": True},
        }
        assert body["temperature"] == 0 and body["max_tokens"] == 400
        assert "Criteria:" in body["messages"][0]["content"]
    assert {b["messages"][1]["content"].split("ANSWER:\n")[1].split("\n")[0] for b in bodies} == {
        "Paris is the capital of France.", "Berlin.",
        "I do not know, go away. This answer is much too long to be short."}
    for row in json.loads(result.stdout)["results"]:
        judge = row["judge"]
        assert "error" not in judge and judge["reason"] == "right and polite"
        assert judge["scores"]["correctness"] == 4 and judge["scores"]["polite"] == 1
        assert judge["latency_ms"] > 0


@hosted
@pytest.mark.parametrize("backend", ["openai", "litellm"])
def test_a_provider_refusing_json_schema_gets_json_mode_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, backend: str
) -> None:
    with FaultServer(Scenario("no_json_schema", reply=JUDGE_REPLY)) as server:
        suite = _hosted_judge(tmp_path, monkeypatch, backend, server.base_url)
        result = CliRunner().invoke(cli, ["eval", str(suite), "--json", "-j", "1"],
                                    catch_exceptions=False)
    assert result.exit_code == 0, result.output
    formats = [(r.body or {}).get("response_format", {}).get("type") for r in server.requests]
    # Refused once (no retry of the 400); remembered: the next outputs go to JSON mode.
    assert formats == ["json_schema", "json_object", "json_object", "json_object"]
    rows = json.loads(result.stdout)["results"]
    for row in rows:
        assert "error" not in row["judge"] and row["judge"]["scores"]["correctness"] == 4
    # The refused call is a failed run of its own; each verdict's latency is its answer's.
    from sqlmodel import select

    from workbench.config import load_settings
    from workbench.storage.db import open_store
    from workbench.storage.models import Judgement, Run

    store = open_store(load_settings().database.url)
    with store.read() as session:
        [refused] = session.exec(select(Run).where(Run.status == "error")).all()
        answers = {j.run_id: session.get(Run, j.judge_run_id) for j in session.exec(select(Judgement))}
    store.close()
    assert "json_schema" in refused.error and "HTTP 400" in refused.error
    assert {row["run_id"]: row["judge"]["latency_ms"] for row in rows} == \
        {rid: answer.e2e_ms for rid, answer in answers.items()}


def test_only_a_refused_json_schema_falls_back() -> None:
    from types import SimpleNamespace

    from workbench.judge import schema_refused

    said = "judge: fake at http://127.0.0.1:9/v1: request refused (HTTP 400) ({})"

    def failed(error: str, status: str = "error") -> SimpleNamespace:
        return SimpleNamespace(status=status, error=error)

    assert schema_refused(failed(said.format("'response_format' of type 'json_schema' not supported")))
    assert schema_refused(failed(said.format("Invalid schema for response_format 'rubric_scores'")))
    assert not schema_refused(failed(said.format("context length exceeded")))
    assert not schema_refused(failed("judge: server error (HTTP 500) (response_format broke us)"))
    assert not schema_refused(failed(said.format("response_format"), status="ok"))


def _graded_config(tmp_path: Path, grader: str | None) -> Path:
    config = tmp_path / "promptfooconfig.yaml"
    default = f"defaultTest:\n  options: {{provider: {grader}}}\n" if grader else ""
    config.write_text(
        "prompts: ['{{out}}']\nproviders: [echo]\n" + default +
        "tests:\n"
        "  - vars: {out: 'Thank you for waiting, your parcel arrives on Monday.'}\n"
        "    assert: [{type: llm-rubric, value: 'is polite'}]\n"
        "  - vars: {out: 'x'}\n"
        "    threshold: 0.5\n"
        "    assert: [{type: llm-rubric, value: 'mentions {{out}}'}, {type: contains, value: x}]\n",
        encoding="utf-8",
    )
    return config


def test_llm_rubric_needs_a_grader(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_graded_config(tmp_path, None))])
    assert result.exit_code == 2 and "llm-rubric needs a grader" in result.stderr


def test_llm_rubric_with_a_garbage_grader_fails_with_the_reason(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_graded_config(tmp_path, "echo")), "--json"],
                                catch_exceptions=False)
    rows = json.loads(result.stdout)["results"]
    assert rows[0]["pass"] is False and "the grader says no" in rows[0]["reason"]
    assert "no 'scores' object" in rows[0]["reason"]
    assert rows[1]["pass"] is True  # the threshold: contains passes, half the weight
    # The grader's own calls, apart from the graded runs: one per llm-rubric check.
    [figures] = json.loads(result.stdout)["grader_summary"]
    assert {k: figures[k] for k in ("model", "grader", "calls", "cost_usd")} == \
        {"model": "echo", "grader": "echo", "calls": 2, "cost_usd": 0.0}
    assert figures["latency_p50_ms"] >= 0
    text = CliRunner().invoke(cli, ["eval", str(_graded_config(tmp_path, "echo"))]).stdout
    section = text.split("Grader calls (llm-rubric: the grader's own latency and cost")[1].splitlines()
    assert section[1].split() == ["VARIANT", "MODEL", "GRADER", "CALLS", "LATENCY", "P50", "COST"]
    assert section[2].split()[1:4] == ["echo", "echo", "2"] and section[2].split()[-1] == "$0.0000"


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
def test_llm_rubric_graded_by_smollm2(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["eval", str(_graded_config(tmp_path, "workbench:smollm2")),
                                      "--json"], catch_exceptions=False)
    assert result.exit_code in (0, 1), result.output
    rows = json.loads(result.stdout)["results"]
    # SmolLM2's verdict may go either way; it must be a verdict, never a parse failure.
    assert all("not graded" not in r["reason"] and "not JSON" not in r["reason"] for r in rows)


@pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")
def test_smollm2_judge_over_a_20_case_ab_grid(tmp_path: Path) -> None:
    """Every one of 40 outputs gets a parseable score; the summary has intervals and the
    paired comparison."""
    (tmp_path / "rubric.yaml").write_text(json.dumps(RUBRIC), encoding="utf-8")
    tests = "".join(f"  - vars: {{n: '{i}'}}\n" for i in range(20))
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "prompts:\n"
        "  - {name: a, messages: [{role: user, content: 'Order {{ n }} ships on Monday.'}]}\n"
        "  - {name: b, messages: [{role: user, content: 'Thank you! Order {{ n }} ships on Monday.'}]}\n"
        f"models: [echo]\ntests:\n{tests}judge: {{model: smollm2, rubric: rubric.yaml}}\n",
        encoding="utf-8",
    )
    result = CliRunner().invoke(cli, ["eval", str(suite), "--json"], catch_exceptions=False)
    data = json.loads(result.stdout)
    assert len(data["results"]) == 40
    assert all("error" not in r["judge"] and r["judge"]["scores"] for r in data["results"])
    weighted = [s for s in data["scores"] if s["criterion"] == "weighted"]
    assert [s["n"] for s in weighted] == [20, 20]
    assert all(s["ci_low"] <= s["mean"] <= s["ci_high"] for s in weighted)
    (comparison,) = data["score_comparisons"]
    assert comparison["pairs"] == 20 and comparison["wins"] + comparison["ties"] + comparison["losses"] == 20
    assert 0 <= comparison["sign_p"] <= 1 and comparison["sentence"]


def test_which_columns_a_summary_compares() -> None:
    """Each variant against the first on each model; with one variant, each model against
    the first; with one column, nothing."""
    from types import SimpleNamespace

    from workbench.report import comparison_pairs

    def rows(*columns: tuple[str, str]) -> list[SimpleNamespace]:
        return [SimpleNamespace(variant=v, model=m) for v, m in columns]

    heading, pairs = comparison_pairs(rows(("a", "m"), ("b", "m"), ("c", "m"), ("a", "n"), ("b", "n")))
    assert heading.startswith("each variant against a")
    assert pairs == [(("a", "m"), ("b", "m")), (("a", "n"), ("b", "n")),
                     (("a", "m"), ("c", "m")), (("a", "n"), ("c", "n"))]
    heading, pairs = comparison_pairs(rows(("a", "m"), ("a", "n"), ("a", "o")))
    assert heading.startswith("each model against m")
    assert pairs == [(("a", "m"), ("a", "n")), (("a", "m"), ("a", "o"))]
    assert comparison_pairs(rows(("a", "m"), ("a", "m"))) == ("", [])
