"""Hosted-path overhead: TTFT and E2E through the engine vs the raw openai client.

Starts `python -m llama_cpp.server` with SmolLM2 on 127.0.0.1, warms everything up,
then alternates call by call: the raw `openai` AsyncOpenAI client streaming a chat
completion, and the same request through the engine (the `openai` backend and the
`litellm` backend in turn). Both sides are timed from outside, the same way: from the
moment the call is made to the first text chunk handed to the caller (TTFT) and to the
call's return (E2E), so the engine's own work (recording the run in SQLite, computing
metrics) counts as overhead.

Usage: python bench/hosted_overhead.py [--runs N] [--tokens N]
Goal: at most 3 ms added per call.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from workbench.config import load_settings  # noqa: E402
from workbench.engine import Engine  # noqa: E402
from workbench.models import ModelSpec, demo_model_path  # noqa: E402
from workbench.storage.db import open_store  # noqa: E402

MESSAGES = [{"role": "user", "content": "Write a long story about a lighthouse."}]
TOKENS = 16  # changed by --tokens


def start_server(folder: str) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "llama_cpp.server", "--model", str(demo_model_path()),
         "--host", "127.0.0.1", "--port", str(port), "--model_alias", "smollm2",
         "--n_ctx", "2048", "--interrupt_requests", "False"],
        cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}/v1"
    for _ in range(600):
        try:
            urllib.request.urlopen(f"{base}/models", timeout=1).read()
            return proc, base
        except OSError:
            time.sleep(0.1)
    proc.kill()
    raise SystemExit("llama_cpp.server did not start")


async def raw_call(client) -> tuple[float, float]:
    started = time.perf_counter()
    first = None
    stream = await client.chat.completions.create(
        model="smollm2", messages=MESSAGES, max_tokens=TOKENS, temperature=0, stream=True,
        stream_options={"include_usage": True},
    )
    async for chunk in stream:
        if first is None and chunk.choices and chunk.choices[0].delta.content:
            first = time.perf_counter()
    end = time.perf_counter()
    return (first - started) * 1000, (end - started) * 1000


async def engine_call(engine: Engine, spec: ModelSpec) -> tuple[float, float]:
    first: list[float] = []
    started = time.perf_counter()
    result = await engine.run(spec, MESSAGES, {"max_tokens": TOKENS, "temperature": 0},
                              on_chunk=lambda _: first or first.append(time.perf_counter()))
    end = time.perf_counter()
    assert result.status == "ok", result.error
    return (first[0] - started) * 1000, (end - started) * 1000


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--tokens", type=int, default=16)
    args = parser.parse_args()
    global TOKENS
    TOKENS = args.tokens
    import openai

    with tempfile.TemporaryDirectory() as folder:
        proc, base = start_server(folder)
        try:
            client = openai.AsyncOpenAI(base_url=base, api_key="sk-no-key", max_retries=0)
            store = open_store(f"sqlite:///{folder}/bench.db")
            engine = Engine(load_settings(), store)
            specs = {
                "openai backend": ModelSpec("smollm2", "openai", {"model": "smollm2", "api_base": base}),
                "litellm backend": ModelSpec("smollm2", "litellm",
                                             {"model": "openai/smollm2", "api_base": base}),
            }
            for spec in specs.values():
                for _ in range(3):
                    await raw_call(client)
                    await engine_call(engine, spec)
            print(f"llama_cpp.server on loopback, SmolLM2, {TOKENS} tokens per call, "
                  f"{args.runs} alternating pairs per backend")
            for label, spec in specs.items():
                raw, ours = [], []
                for _ in range(args.runs):
                    raw.append(await raw_call(client))
                    ours.append(await engine_call(engine, spec))
                for i, figure in ((0, "TTFT"), (1, "E2E ")):
                    r = statistics.median(x[i] for x in raw)
                    o = statistics.median(x[i] for x in ours)
                    added = statistics.median(b[i] - a[i] for a, b in zip(raw, ours, strict=True))
                    print(f"{label:<16} {figure} raw {r:7.2f} ms  engine {o:7.2f} ms  "
                          f"added per call (median of pairs) {added:+.2f} ms")
            await engine.aclose()
            await client.close()
            store.close()
        finally:
            proc.terminate()
            proc.wait(10)


if __name__ == "__main__":
    asyncio.run(main())
