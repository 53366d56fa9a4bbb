"""promptfoo configs: parity with promptfoo 0.120.0's recorded verdicts, and what is refused.

Each folder of tests/promptfoo_parity holds a promptfoo config on the ``echo`` provider, the
command that recorded it (record.sh) and promptfoo's own output. Here each config is loaded
with :func:`workbench.promptfoo.load`, each output is computed as Workbench's echo backend
would answer (the rendered message; a chat of several messages as JSON), and every
(provider, prompt, test) verdict must equal promptfoo's ``success``. Latency is promptfoo's
recorded ``latencyMs`` of that row (its echo call's own time), cost is 0 as echo's is.
No promptfoo and no model run here.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from workbench import promptfoo, templates, yamlio
from workbench.assertions import Observation
from workbench.config import load_settings
from workbench.errors import ValidationError
from workbench.experiment import Variant
from workbench.suite import Suite, TestCase

PARITY = Path(__file__).parent / "promptfoo_parity"
FOLDERS = sorted(p.parent.name for p in PARITY.glob("*/promptfooconfig.yaml"))


def load_file(path: Path) -> Suite:
    data, root = yamlio.load(path.read_text(encoding="utf-8"), str(path))
    return promptfoo.load(path, data, root, load_settings())


def load_text(tmp_path: Path, text: str, **files: str) -> Suite:
    for name, content in files.items():
        (tmp_path / name).write_text(content, encoding="utf-8")
    path = tmp_path / "promptfooconfig.yaml"
    path.write_text(text, encoding="utf-8")
    return load_file(path)


def echo(variant: Variant, case: TestCase) -> tuple[str, list[dict[str, str]]]:
    """What the echo backend answers (backends/echo.py), and the rendered messages."""
    messages = templates.render_messages(variant.messages, case.vars, variant.defaults)
    if len(messages) == 1:
        return messages[0]["content"], messages
    return json.dumps(messages, indent=2, ensure_ascii=False), messages


def recorded(folder: str) -> dict[tuple[str, str, int], dict[str, Any]]:
    """promptfoo's rows by (provider label or id, prompt label, test index)."""
    output = json.loads((PARITY / folder / "promptfoo-output.json").read_text(encoding="utf-8"))
    return {
        (
            row["provider"]["label"] or row["provider"]["id"],
            row["prompt"]["label"],
            row["testIdx"],
        ): row
        for row in output["results"]["results"]
    }


@pytest.mark.parametrize("folder", FOLDERS)
def test_verdicts_match_promptfoo(folder: str) -> None:
    suite = load_file(PARITY / folder / "promptfooconfig.yaml")
    rows = recorded(folder)
    assert suite.dialect == "promptfoo"
    seen_keys = set()
    mismatches = []
    for model in suite.models:
        assert model.backend == "echo"
        for variant in suite.variants:
            for index, case in enumerate(suite.cases):
                key = (model.name, variant.label, index)
                seen_keys.add(key)
                row = rows[key]
                assert case.vars == row["vars"], key
                output, messages = echo(variant, case)
                if len(messages) > 1 or all(isinstance(v, str) for v in case.vars.values()):
                    # Lists render differently: Nunjucks writes a,b; Jinja ['a', 'b'].
                    assert output == row["response"]["output"], key
                seen = Observation(output, latency_ms=row["latencyMs"], cost_usd=0.0)
                verdicts = [(check.type, check.check(seen)) for check in case.checks]
                passed = all(verdict.passed for _, verdict in verdicts)
                if passed != row["success"]:
                    mismatches.append(
                        (
                            case.description,
                            variant.label,
                            output,
                            verdicts,
                            row.get("gradingResult", {}).get("reason"),
                        )
                    )
    assert seen_keys == set(rows), "the suite's cells are not promptfoo's"
    assert not mismatches, "\n".join(map(repr, mismatches))


def test_parity_covers_every_assertion_type_passing_and_failing() -> None:
    outcomes: dict[str, set[bool]] = {}
    for folder in FOLDERS:
        output = json.loads((PARITY / folder / "promptfoo-output.json").read_text("utf-8"))
        for row in output["results"]["results"]:
            for part in (row.get("gradingResult") or {}).get("componentResults", []):
                outcomes.setdefault(part["assertion"]["type"], set()).add(part["pass"])
    for kind in promptfoo.SUPPORTED_TYPES:
        if kind == "llm-rubric":
            continue  # model-graded: the verdict is a model's (tests/test_judge.py)
        assert outcomes.get(kind) == {True, False}, kind


def test_echo_of_a_chat_answers_as_promptfoo_does() -> None:
    """promptfoo's echo answers a .json chat as JSON.stringify(messages, null, 2), and so
    does Workbench's echo backend (a one-message chat is its content, where promptfoo still
    answers JSON)."""
    import asyncio

    from workbench.backends.base import ChatRequest, Chunk
    from workbench.backends.echo import EchoBackend

    suite = load_file(PARITY / "prompts" / "promptfooconfig.yaml")
    chat = next(v for v in suite.variants if v.label.startswith("chat.json: "))
    messages = templates.render_messages(chat.messages, suite.cases[0].vars, chat.defaults)
    theirs = recorded("prompts")[("echo", chat.label, 0)]["response"]["output"]

    async def answer() -> str:
        backend = EchoBackend(EchoBackend.Options())
        return "".join([e.text async for e in backend.stream(ChatRequest(messages)) if isinstance(e, Chunk)])

    assert asyncio.run(answer()) == theirs


def test_labels_and_structure(tmp_path: Path) -> None:
    suite = load_file(PARITY / "prompts" / "promptfooconfig.yaml")
    labels = [v.label for v in suite.variants]
    assert labels[:3] == ["Inline: {{out}}", "Greeting", "Farewell"]  # the repeat runs once
    assert "prompts.txt: Line one\nLine two for {{name}}" in labels
    assert "tagged: prompts.txt: Last prompt, {{out}}" in labels
    chat = suite.variants[-1]
    assert [m.role for m in chat.messages] == ["system", "user"]
    assert suite.variants[0].messages[0].role == "user"
    assert suite.grader is not None and suite.grader.options["model"] == "openai/gpt-4o-mini"
    csv_suite = load_file(PARITY / "csv" / "promptfooconfig.yaml")
    assert csv_suite.cases[0].description == "two shorthand assertions"
    assert csv_suite.cases[-1].description == "Row #4"
    assert "__metadata:topic" not in csv_suite.cases[0].vars


# --- provider mapping -------------------------------------------------------------------

SECRET = "sk-test-0123456789abcdef"


def test_openai_with_api_base_uses_the_openai_backend(tmp_path: Path) -> None:
    suite = load_text(
        tmp_path,
        f"""
prompts: ["{{{{q}}}}"]
providers:
  - id: openai:chat:smollm2
    label: local
    config: {{apiBaseUrl: "http://127.0.0.1:8080/v1", apiKey: {SECRET}, temperature: 0,
              max_tokens: 64}}
tests: [{{vars: {{q: hi}}}}]
""",
    )
    (spec,) = suite.models
    assert (spec.name, spec.backend) == ("local", "openai")
    assert spec.options["model"] == "smollm2"
    assert spec.options["api_base"] == "http://127.0.0.1:8080/v1"
    assert spec.options["api_key"].get_secret_value() == SECRET
    assert spec.params == {"temperature": 0, "max_tokens": 64}
    assert SECRET not in repr(spec) and SECRET not in repr(suite)
    without_key = load_text(
        tmp_path, (tmp_path / "promptfooconfig.yaml").read_text().replace(f"apiKey: {SECRET}, ", "")
    )
    assert without_key.fingerprint == suite.fingerprint


@pytest.mark.parametrize(
    ("provider_id", "backend", "model"),
    [
        ("openai:chat:gpt-4o-mini", "litellm", "openai/gpt-4o-mini"),
        ("openai:gpt-4o", "litellm", "openai/gpt-4o"),
        (
            "anthropic:messages:claude-3-5-haiku-latest",
            "litellm",
            "anthropic/claude-3-5-haiku-latest",
        ),
        ("ollama:chat:llama3:8b", "litellm", "ollama_chat/llama3:8b"),
        ("ollama:llama3", "litellm", "ollama/llama3"),
        (
            "openrouter:meta-llama/llama-3-8b-instruct",
            "litellm",
            "openrouter/meta-llama/llama-3-8b-instruct",
        ),
        ("groq:llama-3.1-8b-instant", "litellm", "groq/llama-3.1-8b-instant"),
        ("mistral:mistral-small-latest", "litellm", "mistral/mistral-small-latest"),
        ("togetherai:chat:meta-llama/Llama-3-8b", "litellm", "together_ai/meta-llama/Llama-3-8b"),
        ("bedrock:converse:anthropic.claude-3", "litellm", "bedrock/converse/anthropic.claude-3"),
        ("google:gemini-1.5-flash", "litellm", "gemini/gemini-1.5-flash"),
        ("localai:chat:phi", "openai", "phi"),
    ],
)
def test_provider_ids_map_to_models(
    tmp_path: Path, provider_id: str, backend: str, model: str
) -> None:
    suite = load_text(
        tmp_path,
        f"""
prompts: ["{{{{q}}}}"]
providers: ["{provider_id}"]
tests: [{{vars: {{q: hi}}}}]
""",
    )
    (spec,) = suite.models
    assert (spec.name, spec.backend, spec.options["model"]) == (provider_id, backend, model)


@pytest.mark.parametrize(
    "provider_id",
    [
        "openai:embeddings:text-embedding-3-small",
        "openai:completion:gpt-3.5-turbo-instruct",
        "openai:responses:gpt-4.1",
        "anthropic:completion:claude-2",
        "azure:my-deployment",
        "ollama:embeddings:nomic",
        "webhook:http://127.0.0.1:9/hook",
        "http://127.0.0.1:9",
        "file://provider.js",
        "python:provider.py",
        "exec:./run.sh",
        "vllm:mistral",
        "promptfoo:redteam:iterative",
        "sequence",
        "browser",
    ],
)
def test_unsupported_providers_are_refused(tmp_path: Path, provider_id: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(
            tmp_path,
            f'prompts: ["hi"]\nproviders:\n  - echo\n  - "{provider_id}"\n'
            "tests: [{vars: {}}]\n",
        )
    message = str(caught.value)
    assert f"promptfooconfig.yaml:4: provider {provider_id!r} is not supported" in message


def test_api_key_never_shows_in_errors(tmp_path: Path) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(
            tmp_path,
            f"""prompts: ["hi"]
providers:
  - id: openai:chat:gpt-4o-mini
    config: {{apiKey: {SECRET}, temperature: 9}}
tests: [{{vars: {{}}}}]
""",
        )
    assert "temperature" in str(caught.value) and SECRET not in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        load_text(
            tmp_path,
            """prompts: ["hi"]
providers:
  - id: openai:chat:gpt-4o-mini
    config: {apiKey: "{{ env.OPENAI_API_KEY }}"}
tests: [{vars: {}}]
""",
        )
    assert "promptfooconfig.yaml:4: apiKey must be plain text" in str(caught.value)


def test_grader_and_echo_label(tmp_path: Path) -> None:
    suite = load_text(
        tmp_path,
        """prompts: ["{{q}}"]
providers: [{id: echo, label: mirror}]
defaultTest:
  options:
    provider: {id: "anthropic:messages:claude-3-5-haiku-latest", config: {temperature: 0}}
tests: [{vars: {q: hi}}]
""",
    )
    assert suite.models[0].name == "mirror" and suite.models[0].backend == "echo"
    assert suite.grader is not None
    assert suite.grader.options["model"] == "anthropic/claude-3-5-haiku-latest"
    assert suite.grader.params == {"temperature": 0}


# --- refusals, with the file and line ----------------------------------------------------

CONFIG = """prompts: ["{{{{out}}}}"]
providers: [echo]
tests:
  - vars: {{out: hi}}
    assert:
      - type: contains
        value: hi
      - {assertion}
"""


@pytest.mark.parametrize(
    "kind",
    [
        "javascript",
        "python",
        "similar",
        "similar:cosine",
        "model-graded-closedqa",
        "factuality",
        "answer-relevance",
        "g-eval",
        "levenshtein",
        "rouge-n",
        "bleu",
        "classifier",
        "moderation",
        "perplexity",
        "is-xml",
        "is-sql",
        "contains-html",
        "is-refusal",
        "finish-reason",
        "webhook",
        "not-javascript",
        "not-similar",
        "assert-set",
        "select-best",
        "max-score",
        "human",
        "not-latency",
        "not-cost",
        "no-such-type",
    ],
)
def test_unsupported_assertion_types_are_refused(tmp_path: Path, kind: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(tmp_path, CONFIG.format(assertion=f"{{type: {kind}, value: x}}"))
    message = str(caught.value)
    assert message.startswith(f"{tmp_path / 'promptfooconfig.yaml'}:8: ")
    assert repr(kind) in message


@pytest.mark.parametrize(
    ("assertion", "line", "words"),
    [
        ("{type: regex, value: '(a)\\1'}", 8, "backreferences"),
        ("{type: regex, value: '(?<n>a)\\k<n>'}", 8, "named backreferences"),
        ("{type: regex, value: '(?i)abc'}", 8, "no inline flags"),
        ("{type: regex, value: 'a++'}", 8, "possessive"),
        ("{type: regex, value: '(?<=a+)b'}", 8, "fixed width"),
        ("{type: regex, value: '(unclosed'}", 8, "invalid regular expression"),
        ("{type: regex, value: '[\\uD83D\\uDE00]'}", 8, "surrogate"),
        ("{type: contains}", 8, "contains needs a value"),
        ("{type: contains, value: ''}", 8, "non-empty"),
        ("{type: starts-with, value: 5}", 8, "non-empty string"),
        ("{type: latency, value: 500}", 8, "needs a threshold"),
        ("{type: not-is-json, value: {type: object}}", 8, "does not invert"),
        ("{type: not-contains-json, value: {type: object}}", 8, "does not invert"),
        ("{type: is-json, value: {type: 12}}", 8, "invalid JSON Schema"),
        ("{type: contains, value: x, transform: output.trim()}", 8, "'transform'"),
        ("{type: contains, value: x, provider: echo}", 8, "'provider'"),
        ("{type: contains, value: '{{ missing }}'}", 8, "missing"),
        ("{type: contains, value: 'file://expected.txt'}", 8, "from files"),
        ("{type: contains-any, value: {a: 1}}", 8, "a list or a comma-separated"),
    ],
)
def test_bad_assertions_are_refused(tmp_path: Path, assertion: str, line: int, words: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(tmp_path, CONFIG.format(assertion=assertion))
    message = str(caught.value)
    assert f"promptfooconfig.yaml:{line}: " in message
    assert words in message


@pytest.mark.parametrize(
    "key",
    [
        "env",
        "scenarios",
        "nunjucksFilters",
        "extensions",
        "redteam",
        "derivedMetrics",
        "commandLineOptions",
        "bogus",
    ],
)
def test_unknown_top_level_keys_are_refused(tmp_path: Path, key: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(
            tmp_path, f'prompts: ["hi"]\nproviders: [echo]\n{key}: {{}}\ntests: [{{vars: {{}}}}]\n'
        )
    assert f"promptfooconfig.yaml:3: promptfoo key {key!r} is not supported" in str(caught.value)


def test_harmless_top_level_keys_are_ignored(tmp_path: Path) -> None:
    suite = load_text(
        tmp_path,
        """description: kept
prompts: ["hi"]
providers: [echo]
outputPath: results.json
sharing: false
tags: {team: x}
metadata: {owner: y}
writeLatestResults: true
evaluateOptions: {maxConcurrency: 3, repeat: 2, cache: false, delay: 0}
tests: [{vars: {}}]
""",
    )
    assert (suite.description, suite.concurrency, suite.repeats) == ("kept", 3, 2)
    assert (suite.use_cache, suite.delay_ms) == (False, 0)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("{cache: 'no'}", "evaluateOptions.cache is true or false"),
        ("{showProgressBar: 1}", "evaluateOptions.showProgressBar is true or false"),
        ("{delay: -5}", "evaluateOptions.delay is a number of milliseconds"),
        ("{delay: soon}", "evaluateOptions.delay is a number of milliseconds"),
        ("{timeoutMs: 100}", "evaluateOptions.timeoutMs is not supported"),
    ],
)
def test_bad_evaluate_options_are_refused(tmp_path: Path, options: str, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        load_text(tmp_path, f'prompts: ["hi"]\nproviders: [echo]\nevaluateOptions: {options}\n'
                            "tests: [{vars: {}}]\n")


@pytest.mark.parametrize(
    ("text", "files", "message"),
    [
        ('prompts: ["file://missing.txt"]', {}, ":1: prompt file missing.txt not found"),
        ('prompts: ["file://p.md"]', {"p.md": "x"}, ":1: prompt file p.md: only .txt and .json"),
        ('prompts: ["Answer in 2/3 words"]', {}, ":1: promptfoo reads the prompt"),
        ('prompts: [{raw: "no label"}]', {}, ":1: a prompt mapping needs an id, or raw"),
        ("prompts: [{id: x, config: {temperature: 0}}]", {}, ":1: prompt key 'config'"),
        ('prompts: ["{{ unclosed"]', {}, ":1: prompt "),
        (
            'prompts: ["file://chat.json"]',
            {"chat.json": '{"role": "user"}'},
            ":1: chat.json is JSON but not a list of chat messages",
        ),
        (
            'prompts: ["file://chat.json"]',
            {"chat.json": '[{"role": "user", "content": 1}]'},
            ":1: chat.json: message 1",
        ),
        ('prompts: ["file://p*.txt"]', {}, ":1: prompt 'file://p*.txt': file patterns"),
    ],
)
def test_bad_prompts_are_refused(
    tmp_path: Path, text: str, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(tmp_path, text + "\nproviders: [echo]\ntests: [{vars: {}}]\n", **files)
    assert message in str(caught.value)


@pytest.mark.parametrize(
    ("tests", "files", "message"),
    [
        ("tests: file://missing.csv", {}, ":3: tests file missing.csv not found"),
        ("tests: [file://t.json]", {"t.json": "[]"}, ":3: tests file t.json: only .csv and .yaml"),
        ("tests: []", {}, ":3: no tests"),
        ("tests:\n  - description: only a description", {}, ":4: a test needs vars"),
        ("tests: [{vars: file://vars.yaml}]", {}, ":3: vars from files"),
        ("tests: [{vars: {q: 'file://q.txt'}}]", {}, ":3: variable q: values from files"),
        (
            "tests: [{vars: {q: 'Hi {{ name }}'}}]",
            {},
            ":3: variable q: promptfoo renders templates",
        ),
        ("tests: [{vars: {q: x}, provider: echo}]", {}, ":3: a test: key 'provider'"),
        ("tests: [{vars: {q: x}, options: {prefix: 'x'}}]", {}, ":3: test option 'prefix'"),
        (
            "tests: file://t.csv",
            {"t.csv": "q,__expected\nhi,javascript: output === 'hi'\n"},
            "t.csv:2: assertion type 'javascript' is not supported",
        ),
        (
            "tests: file://t.csv",
            {"t.csv": "q,__expected\nhi,similar(0.9):hello\n"},
            "t.csv:2: assertion type 'similar' is not supported",
        ),
        (
            "tests: file://t.csv",
            {"t.csv": "q,__prefix\nhi,x\n"},
            "t.csv:2: the CSV column __prefix",
        ),
        ("tests: file://t.csv", {"t.csv": "q,r\nhi\n"}, "t.csv:2: 1 fields; the header has 2"),
    ],
)
def test_bad_tests_are_refused(
    tmp_path: Path, tests: str, files: dict[str, str], message: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        load_text(tmp_path, f'prompts: ["{{{{q}}}}"]\nproviders: [echo]\n{tests}\n', **files)
    assert message in str(caught.value)


# --- CSV shorthand and values ------------------------------------------------------------


@pytest.mark.parametrize(
    ("cell", "expected"),
    [
        ("contains:foo", {"type": "contains", "value": "foo"}),
        ("not-icontains: BAR ", {"type": "not-icontains", "value": "BAR"}),
        ("contains-any:a, b", {"type": "contains-any", "value": ["a", "b"]}),
        ("regex:^\\d+$", {"type": "regex", "value": "^\\d+$"}),
        ("is-json", {"type": "is-json", "value": None}),
        ("starts-with:ab", {"type": "starts-with", "value": "ab", "threshold": 0.75}),
        ("latency(500)", {"type": "latency", "value": None, "threshold": 500.0}),
        ("latency:500", {"type": "latency", "value": "500", "threshold": 0.75}),
        ("Hello, world", {"type": "equals", "value": "Hello, world"}),
        ("Contains:x", {"type": "equals", "value": "Contains:x"}),
        ("javascript: output.length > 3", {"type": "javascript", "value": "output.length > 3"}),
        ("grade:is polite", {"type": "llm-rubric", "value": "is polite"}),
        ("python:len(output) > 3", {"type": "python", "value": "len(output) > 3"}),
        ("file://check.js", {"type": "javascript", "value": "file://check.js"}),
    ],
)
def test_csv_expected_shorthand(cell: str, expected: dict[str, Any]) -> None:
    assert promptfoo.assertion_from_string(cell) == expected


def test_csv_expected_columns_become_checks(tmp_path: Path) -> None:
    suite = load_text(
        tmp_path,
        'prompts: ["{{out}}"]\nproviders: [echo]\ntests: file://t.csv\n',
        **{
            "t.csv": "out,__expected,__expected2,__description\n"
            "hi,icontains:HI,not-contains:bye,greets\nx, ,,\n"
        },
    )
    first, second = suite.cases
    assert [c.type for c in first.checks] == ["icontains", "not-contains"]
    assert first.description == "greets" and first.vars == {"out": "hi"}
    assert second.checks == () and second.description == "Row #2"


def test_yaml_is_read_as_promptfoo_reads_it(tmp_path: Path) -> None:
    suite = load_text(
        tmp_path,
        """prompts: ["{{a}}"]
providers: [echo]
tests:
  - vars: {a: yes, b: no, c: on, d: 010, e: 1.0, f: 0x1F, g: 1:30, h: ~}
""",
    )
    assert suite.cases[0].vars == {
        "a": "yes",
        "b": "no",
        "c": "on",
        "d": 10,
        "e": 1,
        "f": 31,
        "g": "1:30",
        "h": None,
    }


def test_fingerprint_follows_what_decides_the_cells(tmp_path: Path) -> None:
    text = """prompts: ["{{q}}"]
providers: [echo]
tests: [{vars: {q: hi}, assert: [{type: contains, value: hi}]}]
"""
    first = load_text(tmp_path, text)
    assert load_text(tmp_path, text).fingerprint == first.fingerprint
    assert (
        load_text(tmp_path, text.replace("value: hi", "value: ho")).fingerprint != first.fingerprint
    )
    assert load_text(tmp_path, text.replace("q: hi", "q: ho")).fingerprint != first.fingerprint


# --- JavaScript semantics ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pattern", "text", "matches"),
    [
        (r"^\d+$", "123\n", False),
        (r"^\d+$", "123", True),
        (r"\d", "\u0663", False),
        (r"a.b", "a\rb", False),
        (r"[^]", "\n", True),
        (r"a[]", "a", False),
        (r"\Abc", "Abc", True),
        (r"a{,2}", "a{,2}", True),
        (r"(?<y>\d{4})", "2024", True),
        (r"[\S\d]", " ", False),
        (r"[^\Sx]", " ", True),
        (r"\cJ", "\n", True),
        (r"\c1", "\\c1", True),
    ],
)
def test_js_regex(pattern: str, text: str, matches: bool) -> None:
    assert (promptfoo.js_regex(pattern).search(text) is not None) is matches


def test_js_values() -> None:
    assert [promptfoo.js_string(v) for v in (1.0, True, None, [1, None, "a"], 1e21, 1.5e-7)] == [
        "1",
        "true",
        "null",
        "1,,a",
        "1e+21",
        "1.5e-7",
    ]
    assert promptfoo.split_any('"b, c",d,,') == ["b, c", "d"]
    # As in JavaScript: a space before the quote makes it part of an unquoted item.
    assert promptfoo.split_any('a, "b, c"') == ["a", "b", "c"]
    assert promptfoo.split_all("a, b ,,c") == ["a", "b", "", "c"]
    assert promptfoo.js_equal({"a": [1, 2.0]}, {"a": [1, 2]})
    assert not promptfoo.js_equal(True, 1)
    assert promptfoo.extract_json_objects('x {"a": 1} {b: 2} {"c": "}"}') == [{"a": 1}, {"b": 2}]


def test_cases_know_their_file_and_line(tmp_path: Path) -> None:
    # A case that lacks a variable is then named by where it is written.
    suite = load_text(
        tmp_path,
        "prompts: ['{{x}}']\nproviders: [echo]\ntests:\n  - vars: {x: 1}\n  - file://t.csv\n",
        **{"t.csv": 'x,note\n1,"two\nlines"\n\n2,z\n3,"a\u2028b"\n4,z\n'},
    )
    assert [c.where for c in suite.cases] == [
        f"{tmp_path}/promptfooconfig.yaml:4", f"{tmp_path}/t.csv:2", f"{tmp_path}/t.csv:5",
        f"{tmp_path}/t.csv:6", f"{tmp_path}/t.csv:7",  # U+2028 is text in a field, not a line end
    ]


def test_echo_of_a_one_message_chat_is_its_text(tmp_path: Path) -> None:
    """The difference README's promptfoo section names: promptfoo's echo would answer
    JSON.stringify of the one-message chat; Workbench's echo answers the message's text."""
    import asyncio

    from workbench.backends.base import ChatRequest, Chunk
    from workbench.backends.echo import EchoBackend

    suite = load_text(
        tmp_path, "prompts: ['file://one.json']\nproviders: [echo]\ntests: [{vars: {x: hi}}]\n",
        **{"one.json": '[{"role": "user", "content": "Say {{x}}"}]'},
    )
    [variant] = suite.variants
    messages = templates.render_messages(variant.messages, suite.cases[0].vars, variant.defaults)

    async def answer() -> str:
        backend = EchoBackend(EchoBackend.Options())
        events = [e async for e in backend.stream(ChatRequest(messages))]
        return "".join(e.text for e in events if isinstance(e, Chunk))

    assert asyncio.run(answer()) == "Say hi"  # promptfoo: '[\n  {\n    "role": "user", ...'
