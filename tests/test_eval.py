"""`workbench eval`: suites, grading, the request cache, resume, results files, exit codes,
and the paired comparison."""

from __future__ import annotations

import asyncio
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner
from fault_server import FaultServer, Scenario, closed_port
from llama_server import llama_server  # noqa: F401 - the session fixture

from workbench.cli import cli
from workbench.config import load_settings
from workbench.engine import Engine
from workbench.evaluate import Evaluation
from workbench.stats import paired_difference, percentile, square_and_add, wilson_interval


def wilson(k: int, n: int) -> tuple[float, float]:
    found = wilson_interval(k, n)
    return found.low, found.high
from workbench.models import demo_model_path
from workbench.storage.db import open_store
from workbench.storage.experiments import settled_cells
from workbench.suite import load_suite

needs_demo = pytest.mark.skipif(demo_model_path() is None, reason="demo extra not installed")

ECHO_SUITE = """\
description: Echo checks
prompts:
  - name: plain
    messages:
      - {role: user, content: "{{ text }}"}
  - name: shout
    messages:
      - {role: user, content: "{{ text | upper }}"}
models: [echo]
tests:
  - vars: {text: hello world}
    assert: [{type: contains, value: hello}]
  - vars: {text: '{"a": 1}'}
    assert: [{type: is-json}]
  - vars: {text: Paris, city: paris}
    assert: [{type: icontains, value: "{{ city }}"}]
"""


def invoke(*args: str, cwd: Path | None = None):
    runner = CliRunner()
    if cwd is None:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    old = os.getcwd()
    os.chdir(cwd)
    try:
        return runner.invoke(cli, list(args), catch_exceptions=False)
    finally:
        os.chdir(old)


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_echo_suite_grades_every_case_and_exits_1_on_a_failure(tmp_path: Path) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE)
    result = invoke("eval", str(suite))
    assert result.exit_code == 1, result.output
    out = result.stdout
    assert "plain    echo   3/3 (100%)" in out
    assert "shout    echo   2/3 (67%)" in out
    assert "shout · echo · case 0: contains: expected output to contain 'hello'" in out
    assert "shout on echo: 1 of 3 cases failed" in out
    assert "not distinguishable from noise" in out


def test_json_rows_carry_every_column(tmp_path: Path) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE)
    result = invoke("eval", str(suite), "--json")
    assert result.exit_code == 1
    data = json.loads(result.stdout)
    rows = data["results"]
    assert len(rows) == 6
    first = rows[0]
    for key in ("variant", "model", "test_idx", "vars", "output", "pass", "reason", "status",
                "error", "cached", "run_id", "ttft_ms", "e2e_ms", "tpot_ms", "output_tokens",
                "cost_usd"):
        assert key in first
    assert [(r["variant"], r["test_idx"], r["pass"]) for r in rows] == [
        ("plain", 0, True), ("plain", 1, True), ("plain", 2, True),
        ("shout", 0, False), ("shout", 1, True), ("shout", 2, True),
    ]
    assert rows[5]["output"] == "PARIS" and rows[5]["vars"] == {"text": "Paris", "city": "paris"}
    assert rows[3]["reason"].startswith("contains:")
    assert data["passed"] is False and data["comparisons"][0]["pairs"] == 3


@pytest.mark.parametrize("suffix", [".json", ".csv", ".parquet"])
def test_results_files_open_in_pandas(tmp_path: Path, suffix: str) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE)
    target = tmp_path / f"results{suffix}"
    assert invoke("eval", str(suite), "--output", str(target)).exit_code == 1
    if suffix == ".json":
        frame = pd.DataFrame(json.loads(target.read_text())["results"])
    elif suffix == ".csv":
        frame = pd.read_csv(target)
    else:
        frame = pd.read_parquet(target)
    assert len(frame) == 6
    assert list(frame["pass"]) == [True, True, True, False, True, True]
    assert list(frame["test_idx"]) == [0, 1, 2, 0, 1, 2]
    assert {"variant", "model", "vars", "output", "reason", "status", "error", "cached",
            "run_id", "ttft_ms", "cost_usd"} <= set(frame.columns)


def test_threshold_holds_exit_0(tmp_path: Path) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE + "thresholds: {pass_rate: 0.6}\n")
    result = invoke("eval", str(suite))
    assert result.exit_code == 0, result.output
    assert "PASSED" in result.stdout
    strict = write(tmp_path / "strict.yaml", ECHO_SUITE + "thresholds: {pass_rate: 0.7}\n")
    result = invoke("eval", str(strict))
    assert result.exit_code == 1
    assert "shout on echo: pass rate 66.7% below the threshold 70.0%" in result.stdout


def test_dataset_files_with_expected_shorthand(tmp_path: Path) -> None:
    write(tmp_path / "cases.csv", "text,__expected\nhello,icontains:HELLO\nbye,bye\n"
                                  'x,"regex:^x$"\n')
    write(tmp_path / "more.jsonl", '{"vars": {"text": "{\\"k\\": 2}"}, "expected": "is-json"}\n')
    suite = write(tmp_path / "suite.yaml", """\
prompts:
  - name: p
    messages: [{role: user, content: "{{ text }}"}]
models: [echo]
dataset: cases.csv
tests:
  - vars: {text: "done"}
    assert: [{type: equals, value: done}]
""")
    result = invoke("eval", str(suite), "--json")
    assert result.exit_code == 0, result.output
    assert [r["pass"] for r in json.loads(result.stdout)["results"]] == [True] * 4
    jsonl = write(tmp_path / "j.yaml", suite.read_text().replace("cases.csv", "more.jsonl"))
    assert invoke("eval", str(jsonl)).exit_code == 0


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("prompts: [{name: p, messages: [{role: user, content: hi}]}]\nmodels: [echo]\n"
         "tests: [{vars: {}}]\ncolour: blue\n",
         r"suite.yaml:4: colour: Extra inputs are not permitted \(allowed keys: description"),
        ("prompts: [{name: p, messages: [{role: user, content: hi}]}]\nmodels: [nosuch]\n"
         "tests: [{vars: {}}]\n", r"suite.yaml:2: unknown model 'nosuch'"),
        ("prompts: [{name: p, messages: [{role: user, content: hi}]}]\nmodels: [echo]\n"
         "dataset: missing.csv\n", r"suite.yaml:3: dataset file missing.csv not found"),
        ("prompts: [{file: nope.yaml}]\nmodels: [echo]\ntests: [{vars: {}}]\n",
         r"suite.yaml:1: prompt file nope.yaml not found"),
        ("prompts: [{name: p, messages: [{role: user, content: '{{ q }}'}]}]\nmodels: [echo]\n"
         "tests:\n  - vars: {q: fine}\n  - vars: {other: x}\n",
         r"suite.yaml:5: variant p: message 1 \(user\), line 1: variable 'q' is undefined"),
        ("prompts: [{name: p, messages: [{role: user, content: hi}]}]\nmodels: [echo]\n"
         "tests: [{vars: {}, assert: [{type: smells-nice}]}]\n",
         r"suite.yaml:3: unknown assertion type 'smells-nice'"),
        ("prompts: [{name: p, messages: [{role: user, content: hi}]}]\nmodels: [echo]\n",
         r"no test cases"),
        ("prompts: [nosuch@3]\nmodels: [echo]\ntests: [{vars: {}}]\n",
         r"suite.yaml:1: unknown prompt 'nosuch'"),
        ("prompts: [{name: p, messages: [{role: user, content: '{{ q'}]}]\nmodels: [echo]\n"
         "tests: [{vars: {}}]\n", r"suite.yaml:1: prompt p: message 1 \(user\), line 1"),
    ],
)
def test_bad_suites_exit_2_before_any_call(tmp_path: Path, body: str, message: str) -> None:
    suite = write(tmp_path / "suite.yaml", body)
    result = invoke("eval", "suite.yaml", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stdout == ""
    import re

    assert re.search(message, result.stderr), result.stderr
    assert "Traceback" not in result.stderr
    del suite


def test_missing_suite_file_exits_2(tmp_path: Path) -> None:
    result = invoke("eval", str(tmp_path / "none.yaml"))
    assert result.exit_code == 2
    assert "cannot read suite" in result.stderr


def _hosted_suite(tmp_path: Path, server: FaultServer, extra: str = "", cases: int = 4) -> Path:
    tests = "".join(f"  - vars: {{q: question {i}}}\n    assert: [{{type: contains, value: tok0}}]\n"
                    for i in range(cases))
    return write(tmp_path / "suite.yaml", f"""\
prompts:
  - name: p
    messages: [{{role: user, content: "{{{{ q }}}}"}}]
    params: {{temperature: 0}}
models:
  - {{name: server, model: openai/fake, api_base: "{server.base_url}"}}
tests:
{tests}{extra}""")


def test_cache_answers_a_rerun_and_no_cache_calls_again(tmp_path: Path) -> None:
    with FaultServer(Scenario("ok", chunks=2)) as server:
        suite = _hosted_suite(tmp_path, server)
        first = json.loads(invoke("eval", str(suite), "--json").stdout)
        assert len(server.requests) == 4
        assert [r["cached"] for r in first["results"]] == [False] * 4
        second = json.loads(invoke("eval", str(suite), "--json").stdout)
        assert len(server.requests) == 4  # nothing called
        rows = second["results"]
        assert [r["cached"] for r in rows] == [True] * 4
        assert [r["output"] for r in rows] == [r["output"] for r in first["results"]]
        assert all(r["cost_usd"] == 0 for r in rows)
        assert {r["run_id"] for r in rows}.isdisjoint({r["run_id"] for r in first["results"]})
        assert second["summary"][0]["cached"] == 4
        invoke("eval", str(suite), "--no-cache")
        assert len(server.requests) == 8


def test_sampling_repeats_bypass_the_cache(tmp_path: Path) -> None:
    with FaultServer(Scenario("ok", chunks=2)) as server:
        suite = _hosted_suite(tmp_path, server, "repeats: 2\n", cases=1)
        suite.write_text(suite.read_text().replace("temperature: 0", "temperature: 0.7"))
        invoke("eval", str(suite))
        invoke("eval", str(suite))
        assert len(server.requests) == 4
        greedy = _hosted_suite(tmp_path, server, "repeats: 2\n", cases=1)  # temperature 0
        invoke("eval", str(greedy))
        invoke("eval", str(greedy))
        assert len(server.requests) == 6  # the first run only: the second is cached


def test_cache_key_changes_with_model_messages_params() -> None:
    from workbench.models import ModelSpec

    settings = load_settings()
    engine = Engine(settings, store=None)  # type: ignore[arg-type] - keys need no store
    a = ModelSpec("a", "openai", {"model": "m", "api_base": "http://127.0.0.1:1/v1"})
    b = ModelSpec("b", "openai", {"model": "m", "api_base": "http://127.0.0.1:2/v1"})
    msgs = [{"role": "user", "content": "hi"}]
    key = engine.cache_key(a, msgs, {"temperature": 0})
    assert key == engine.cache_key(a, list(msgs), {"temperature": 0})
    assert key != engine.cache_key(b, msgs, {"temperature": 0})
    assert key != engine.cache_key(a, [{"role": "user", "content": "hi!"}], {"temperature": 0})
    assert key != engine.cache_key(a, msgs, {"temperature": 0, "seed": 1})
    assert key != engine.cache_key(a, msgs, {"temperature": 0.5})


def test_a_failing_model_fails_only_its_cells(tmp_path: Path) -> None:
    with FaultServer(Scenario("ok", chunks=2)) as server:
        suite = _hosted_suite(tmp_path, server, cases=2)
        text = suite.read_text().replace(
            "models:\n",
            f"models:\n  - {{name: down, model: openai/fake, api_base: 'http://127.0.0.1:{closed_port()}/v1'}}\n",
        )
        suite.write_text(text)
        data = json.loads(invoke("eval", str(suite), "--json").stdout)
    by_model = {}
    for row in data["results"]:
        by_model.setdefault(row["model"], []).append(row)
    assert [r["status"] for r in by_model["down"]] == ["error", "error"]
    assert all("not reachable" in r["reason"] or "connect" in r["reason"] for r in by_model["down"])
    assert [r["pass"] for r in by_model["server"]] == [True, True]


async def test_resume_runs_only_the_missing_cells(tmp_path: Path) -> None:
    settings = load_settings()
    store = open_store(settings.database.url)
    with FaultServer(Scenario("ok", chunks=2, delay_s=0.05)) as server:
        path = _hosted_suite(tmp_path, server, cases=12, extra="concurrency: 2\n")
        suite = load_suite(path, settings, lambda: store)
        finished = []
        evaluation = Evaluation(Engine(settings, store), suite, use_cache=False,
                                on_event=lambda e: finished.append(e) if e.kind == "finished" else None)
        task = asyncio.ensure_future(evaluation.run())
        while len(finished) < 4:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        experiment_id = evaluation.experiment_id
        assert experiment_id is not None
        done_before = settled_cells(store, experiment_id)
        assert 4 <= len(done_before) < 12
        calls_before = len(server.requests)
        resumed = Evaluation(Engine(settings, store), suite, use_cache=False, resume="last")
        report = await resumed.run()
        assert report.experiment_id == experiment_id
        assert len(server.requests) - calls_before == 12 - len(done_before)
        settled = settled_cells(store, experiment_id)
        assert len(settled) == 12
        assert [r.passed for r in report.rows] == [True] * 12
        assert {r.run_id for r in report.rows} >= {run.id for run in done_before.values()}
        with sqlite3.connect(settings.database.url.removeprefix("sqlite:///")) as conn:
            statuses = dict(conn.execute(
                "SELECT status, count(*) FROM run WHERE experiment_id = ? GROUP BY status",
                (experiment_id,)))
        assert statuses["ok"] == 12 and set(statuses) <= {"ok", "cancelled"}
        await resumed.engine.aclose()
    store.close()


async def test_resume_refuses_a_changed_suite(tmp_path: Path) -> None:
    settings = load_settings()
    store = open_store(settings.database.url)
    suite_path = write(tmp_path / "suite.yaml", ECHO_SUITE)
    suite = load_suite(suite_path, settings, lambda: store)
    await Evaluation(Engine(settings, store), suite).run()
    suite_path.write_text(ECHO_SUITE.replace("hello world", "hello there"))
    changed = load_suite(suite_path, settings, lambda: store)
    from workbench.errors import ValidationError

    with pytest.raises(ValidationError, match="ran a different suite"):
        await Evaluation(Engine(settings, store), changed, resume="last").run()
    store.close()


def test_resume_of_unknown_experiment_exits_2(tmp_path: Path) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE)
    result = invoke("eval", str(suite), "--resume", "last")
    assert result.exit_code == 2
    assert "no experiment to resume" in result.stderr


def test_kill_9_mid_eval_loses_no_finished_run_and_resume_completes(
    tmp_path: Path, isolated_env: Path
) -> None:
    script = str(Path(sys.executable).parent / "workbench")
    db = isolated_env / "data" / "workbench" / "workbench.db"
    with FaultServer(Scenario("ok", chunks=4, delay_s=0.05)) as server:
        suite = _hosted_suite(tmp_path, server, cases=40, extra="concurrency: 2\n")
        proc = subprocess.Popen([script, "eval", str(suite)], cwd=tmp_path,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        finished = 0
        while time.monotonic() < deadline and finished < 6:
            time.sleep(0.1)
            if db.exists():
                with sqlite3.connect(db) as conn:
                    try:
                        finished = conn.execute(
                            "SELECT count(*) FROM run WHERE status = 'ok'").fetchone()[0]
                    except sqlite3.OperationalError:
                        pass  # tables not made yet
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        with sqlite3.connect(db) as conn:
            assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            kept = conn.execute("SELECT count(*) FROM run WHERE status = 'ok'").fetchone()[0]
            running = conn.execute("SELECT count(*) FROM run WHERE status = 'running'").fetchone()[0]
        assert 6 <= kept < 40
        assert running >= 1  # calls were in flight when it died
        calls = len(server.requests)
        resumed = subprocess.run([script, "eval", str(suite), "--resume", "last", "--json"],
                                 cwd=tmp_path, capture_output=True, text=True, timeout=120)
        assert resumed.returncode == 0, resumed.stderr
        rows = json.loads(resumed.stdout)["results"]
        assert len(rows) == 40 and all(r["pass"] for r in rows)
        assert len(server.requests) - calls == 40 - kept
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE status = 'running'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM run WHERE status = 'interrupted'").fetchone()[0] >= 1
        assert conn.execute("SELECT status FROM experiment").fetchall() == [("done",)]
        per_cell = conn.execute(
            "SELECT cell, count(*) FROM run WHERE status = 'ok' GROUP BY cell HAVING count(*) > 1"
        ).fetchall()
        assert per_cell == []  # no duplicates


def test_baseline_label_fails_a_worse_candidate(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", "name: greet\nmessages:\n  - {role: user, content: 'hello {{ who }}'}\n")
    bad = write(tmp_path / "bad.yaml", "name: greet\nmessages:\n  - {role: user, content: 'bye {{ who }}'}\n")
    assert invoke("prompts", "commit", str(good), "-m", "v1").exit_code == 0
    assert invoke("prompts", "label", "greet@1", "production").exit_code == 0
    assert invoke("prompts", "commit", str(bad), "-m", "v2").exit_code == 0
    suite = write(tmp_path / "suite.yaml", """\
prompts: [greet@2]
models: [echo]
tests:
  - vars: {who: ann}
    assert: [{type: contains, value: hello}]
  - vars: {who: bob}
    assert: [{type: contains, value: bob}]
thresholds: {pass_rate: 0.5, baseline_margin: 0.1}
""")
    plain = invoke("eval", str(suite))
    assert plain.exit_code == 0, plain.output  # 50% meets the threshold
    result = invoke("eval", str(suite), "--baseline", "production")
    assert result.exit_code == 1, result.output
    assert "greet@2 on echo: pass rate 50.0% is worse than greet:production's 100.0%" in result.stdout
    assert "greet@2 vs greet:production on echo: pass rate -50.0 points" in result.stdout
    missing = invoke("eval", str(suite), "--baseline", "nolabel")
    assert missing.exit_code == 2
    assert "no 'nolabel' label" in missing.stderr


@needs_demo
def test_suite_on_smollm2_locally_then_cached_with_saved_cost(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("WORKBENCH_LOCAL__PRICE_PER_HOUR_USD", "3.6")
    suite = write(tmp_path / "suite.yaml", """\
prompts:
  - name: terse
    messages: [{role: user, content: "Name a colour. {{ hint }}"}]
    params: {temperature: 0, max_tokens: 8, seed: 1}
models: [smollm2]
tests:
  - vars: {hint: ""}
    assert: [{type: max-length, value: 400}]
  - vars: {hint: "One word."}
    assert: [{type: max-length, value: 400}, {type: latency, value: 60000}]
""")
    first = json.loads(invoke("eval", str(suite), "--json").stdout)
    assert [r["status"] for r in first["results"]] == ["ok", "ok"]
    assert all(r["output"] and r["output_tokens"] >= 1 for r in first["results"])
    spent = first["summary"][0]["cost_usd"]
    assert spent > 0
    second = invoke("eval", str(suite))
    assert second.exit_code == 0
    assert f"(saved ${spent:.4f})" in second.stdout
    data = json.loads(invoke("eval", str(suite), "--json").stdout)
    assert math.isclose(data["summary"][0]["saved_cost_usd"], spent)


@needs_demo
def test_suite_through_llama_cpp_server(tmp_path: Path, llama_server: str) -> None:  # noqa: F811
    suite = write(tmp_path / "suite.yaml", f"""\
prompts:
  - name: a
    messages: [{{role: user, content: "Say hi to {{{{ who }}}}."}}]
  - name: b
    messages: [{{role: system, content: Be formal.}}, {{role: user, content: "Greet {{{{ who }}}}."}}]
models:
  - {{name: served, model: openai/smollm2, api_base: "{llama_server}", params: {{temperature: 0, max_tokens: 12}}}}
tests:
  - vars: {{who: Ann}}
    assert: [{{type: max-length, value: 500}}]
  - vars: {{who: Bob}}
    assert: [{{type: max-length, value: 500}}]
concurrency: 1  # llama_cpp.server interrupts a stream when another request arrives
""")
    result = invoke("eval", str(suite), "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0, result.output
    assert [r["status"] for r in data["results"]] == ["ok"] * 4
    assert all(r["ttft_ms"] is not None and r["ttft_ms"] > 0 for r in data["results"])


# --- statistics ------------------------------------------------------------------------


def test_percentile_interpolates() -> None:
    assert percentile([], 50) is None
    assert percentile([5.0], 95) == 5.0
    assert percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
    assert percentile([10.0, 20.0, 30.0, 40.0, 50.0], 95) == pytest.approx(48.0)


def test_wilson_matches_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:857-872, Table II: 81/263 -> 0.2553, 0.3662;
    # 15/148 -> 0.0624, 0.1605; 0/20 -> 0, 0.1611; 1/29 -> 0.0061, 0.1718.
    for (k, n), (low, high) in {
        (81, 263): (0.2553, 0.3662),
        (15, 148): (0.0624, 0.1605),
        (0, 20): (0.0, 0.1611),
        (1, 29): (0.0061, 0.1718),
    }.items():
        got = wilson(k, n)
        assert got[0] == pytest.approx(low, abs=6e-5) and got[1] == pytest.approx(high, abs=6e-5)


def test_square_and_add_matches_published_values() -> None:
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10 (independent
    # samples, phi = 0): 56/70 vs 48/80 -> 0.0524, 0.3339; 9/10 vs 3/10 -> 0.1705, 0.8090.
    for (k1, n1, k2, n2), (low, high) in {
        (56, 70, 48, 80): (0.0524, 0.3339),
        (9, 10, 3, 10): (0.1705, 0.8090),
    }.items():
        got = square_and_add(k1 / n1, wilson(k1, n1), k2 / n2, wilson(k2, n2))
        assert got == (pytest.approx(low, abs=6e-5), pytest.approx(high, abs=6e-5))


def test_paired_difference_uses_the_corrected_correlation() -> None:
    # 44 pairs: 12 both pass, 9 only A, 2 only B, 21 neither. phi = (12*21 - 2*9 - 22) /
    # sqrt(14*30*21*23), computed here by hand from Newcombe's formula.
    phi = (12 * 21 - 2 * 9 - 44 / 2) / math.sqrt(14 * 30 * 21 * 23)
    expected = square_and_add(14 / 44, wilson(14, 44), 21 / 44, wilson(21, 44), phi)
    diff, low, high = paired_difference(both=12, a_only=9, b_only=2, neither=21)
    assert diff == pytest.approx(-7 / 44)
    assert (low, high) == (pytest.approx(expected[0]), pytest.approx(expected[1]))
    # Positively correlated pairs give a narrower interval than independent samples would.
    independent = square_and_add(14 / 44, wilson(14, 44), 21 / 44, wilson(21, 44))
    assert high - low < independent[1] - independent[0]


def test_paired_difference_properties() -> None:
    diff, low, high = paired_difference(5, 3, 3, 5)
    assert diff == 0 and low == pytest.approx(-high) and low < 0 < high
    assert paired_difference(0, 0, 20, 0)[1] > 0  # b always wins: clearly better
    for counts in [(0, 0, 0, 1), (10, 0, 0, 0), (0, 10, 0, 0), (3, 1, 7, 2)]:
        d, lo, hi = paired_difference(*counts)
        assert -1 <= lo <= d <= hi <= 1


def test_concurrency_option_bounds_calls_in_flight(tmp_path: Path) -> None:
    with FaultServer(Scenario("ok", chunks=2, delay_s=0.05)) as server:
        suite = _hosted_suite(tmp_path, server, cases=6)
        assert invoke("eval", str(suite), "-j", "2", "--no-cache").exit_code == 0
        spans = sorted((r.at, sent[-1]) for r, sent in zip(server.requests, server.sent_at, strict=True))
    most = max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)
    assert most == 2  # the limit was used, and never exceeded


def test_sigterm_cancels_records_and_tells_how_to_resume(tmp_path: Path, isolated_env: Path) -> None:
    script = str(Path(sys.executable).parent / "workbench")
    db = isolated_env / "data" / "workbench" / "workbench.db"
    with FaultServer(Scenario("ok", chunks=4, delay_s=0.1)) as server:
        suite = _hosted_suite(tmp_path, server, cases=30, extra="concurrency: 2\n")
        proc = subprocess.Popen([script, "eval", str(suite)], cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(server.requests) < 4:
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"workbench eval {suite} --resume " in err
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT status FROM experiment").fetchall() == [("cancelled",)]
        statuses = {s for (s,) in conn.execute("SELECT status FROM run")}
    assert "running" not in statuses and "cancelled" in statuses


def test_costs_of_reads_many_runs_at_once(store) -> None:
    from workbench.storage import runs
    from workbench.storage.experiments import costs_of

    ids = []
    for cost in (0.5, None):
        run_id = runs.start_run(store, runs.RunStart(model="m", backend="b", messages=[]))
        runs.finish_run(store, run_id, status="ok", output="x", error=None, metrics={"cost_usd": cost})
        ids.append(run_id)
    assert costs_of(store, ids + ["missing"]) == {ids[0]: 0.5, ids[1]: None}


def test_list_shows_experiments(tmp_path: Path) -> None:
    assert "no experiments yet" in invoke("eval", "--list").stdout
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE)
    invoke("eval", str(suite))
    listed = invoke("eval", "--list")
    assert listed.exit_code == 0
    line = listed.stdout.splitlines()[1]
    assert " done " in line and line.rstrip().endswith("suite.yaml") and " 6 " in line
    assert invoke("eval").exit_code == 2  # neither a suite nor --list


@pytest.mark.parametrize(
    ("name", "text", "line"),
    [
        # The header is line 1; a quoted field spanning two lines and a blank line come
        # before the case that lacks the variable.
        ("cases.csv", 'need,note\n,"two\nlines"\n\ny,z\n', 5),
        ("cases.jsonl", '{"vars": {"need": ""}}\n\n{"vars": {"need": "y", "s": "a\u2028b"}}\n', 3),
    ],
)
def test_a_dataset_case_lacking_a_variable_is_named_by_file_and_line(
    tmp_path: Path, name: str, text: str, line: int
) -> None:
    (tmp_path / "data").mkdir()
    write(tmp_path / "data" / name, text)
    write(tmp_path / "data" / "suite.yaml", f"""\
prompts:
  - name: a
    messages: [{{role: user, content: "{{% if need %}}{{{{ text }}}}{{% endif %}}"}}]
models: [echo]
dataset: {name}
""")
    result = invoke("eval", "data/suite.yaml", cwd=tmp_path)
    assert result.exit_code == 2, result.output
    assert result.stderr.startswith(
        f"Error: data/{name}:{line}: variant a: message 1 (user), line 1: "
        "variable 'text' is undefined"
    ), result.stderr


def _row(variant: str, case: int, repeat: int, passed: bool):
    from workbench.report import Row

    return Row(variant, "m", case, repeat, {}, "", passed, "", "ok", None, False,
               f"{variant}{case}{repeat}", {})


def test_repeats_are_paired_per_case_by_majority() -> None:
    from workbench.report import compare_pass_rates

    # a passes every call; b passes case 0 in 2 of 3 repeats (a pass by majority) and
    # case 1 in 1 of 3 (a failure). Two cases make two pairs, not six.
    rows_a = [_row("a", c, r, True) for c in range(2) for r in range(3)]
    rows_b = [_row("b", 0, r, r < 2) for r in range(3)] + [_row("b", 1, r, r < 1) for r in range(3)]
    found = compare_pass_rates("m", "a", "b", rows_a, rows_b)
    assert (found.pairs, found.repeats, found.a_only, found.b_only) == (2, 3, 1, 0)
    assert found.difference == -0.5
    sentence = found.sentence()
    assert "by majority of repeats" in sentence and "over 2 paired cases" in sentence
    single = compare_pass_rates("m", "a", "b", rows_a[::3], rows_b[::3])
    assert (single.pairs, single.repeats) == (2, 1)
    assert "vs a on m: pass rate" in single.sentence()


def test_a_suite_with_repeats_pairs_its_cases_not_its_calls(tmp_path: Path) -> None:
    suite = write(tmp_path / "suite.yaml", ECHO_SUITE + "repeats: 3\n")
    data = json.loads(invoke("eval", str(suite), "--json").stdout)
    assert len(data["results"]) == 18
    [comparison] = data["comparisons"]
    assert (comparison["pairs"], comparison["repeats"]) == (3, 3)


def test_resume_last_takes_this_suites_newest_experiment(tmp_path: Path) -> None:
    mine = write(tmp_path / "mine.yaml", ECHO_SUITE)
    other = write(tmp_path / "other.yaml", ECHO_SUITE.replace("hello world", "hello there"))
    assert invoke("eval", str(other), "--resume", "last").exit_code == 2  # none of its own yet
    first = json.loads(invoke("eval", str(mine), "--json").stdout)["experiment_id"]
    later = json.loads(invoke("eval", str(other), "--json").stdout)["experiment_id"]
    assert later != first  # the newest experiment of all is the other suite's
    resumed = invoke("eval", str(mine), "--resume", "last", "--json")
    assert resumed.exit_code == 1, resumed.output  # shout fails a case, as before
    assert json.loads(resumed.stdout)["experiment_id"] == first
    again = invoke("eval", str(other), "--resume", "last", "--json")
    assert json.loads(again.stdout)["experiment_id"] == later
    fresh = write(tmp_path / "fresh.yaml", ECHO_SUITE.replace("Paris", "Rome"))
    refused = invoke("eval", str(fresh), "--resume", "last")
    assert refused.exit_code == 2
    assert f"no experiment to resume for {fresh}: this suite has not been run yet" in refused.stderr
