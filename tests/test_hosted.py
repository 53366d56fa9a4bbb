"""The hosted-model backends (openai, litellm) against a scripted fault server and a real
``llama_cpp.server``, all on 127.0.0.1."""

from __future__ import annotations

import asyncio
import base64
import itertools
import subprocess
import sys
import time
import traceback
import urllib.parse
from collections.abc import Iterator

import pytest
from fault_server import FaultServer, Scenario, closed_port
from llama_server import llama_server  # noqa: F401 - the session fixture

from workbench.backends.base import BackendError, ChatRequest, Chunk, Done, load_backend
from workbench.backends.hosted import HostedBackend, parse_retry_after
from workbench.backends.pricing import price_for
from workbench.backends.token_estimate import count

# litellm's own use of pydantic warns; not ours to fix.
pytestmark = [
    pytest.mark.filterwarnings("ignore::DeprecationWarning:litellm.*"),
    pytest.mark.filterwarnings("ignore:Item .* is using the `ReadOnly` qualifier:UserWarning"),
]

BACKENDS = ["openai", "litellm"]
REQUEST = ChatRequest(messages=[{"role": "user", "content": "Say hello"}])


@pytest.fixture
def fault() -> Iterator[FaultServer]:
    with FaultServer() as server:
        yield server


def make(name: str, api_base: str, model: str = "fault-model", **options: object) -> HostedBackend:
    """A backend for ``model`` at ``api_base``; quick retries unless told otherwise."""
    cls = load_backend(name)
    model_id = f"openai/{model}" if name == "litellm" else model
    backend = cls(cls.Options(model=model_id, api_base=api_base, **{"backoff_s": 0.01, **options}))
    assert isinstance(backend, HostedBackend)
    return backend


async def run(backend: HostedBackend, request: ChatRequest = REQUEST):
    """Chunks, the Done (or None) and the BackendError (or None) of one call."""
    chunks: list[Chunk] = []
    done: list[Done] = []
    error: BackendError | None = None
    try:
        async for item in backend.stream(request):
            (chunks if isinstance(item, Chunk) else done).append(item)  # type: ignore[arg-type]
    except BackendError as exc:
        error = exc
    finally:
        await backend.close()
    assert len(done) <= 1
    return chunks, (done[0] if done else None), error


@pytest.mark.parametrize("name", BACKENDS)
async def test_chunks_then_usage(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("ok", chunks=5, delay_s=0.01)
    request = ChatRequest(REQUEST.messages, max_tokens=16, temperature=0, seed=1, stop=["\n\n"])
    chunks, done, error = await run(make(name, fault.base_url), request)
    assert error is None and done is not None
    assert "".join(c.text for c in chunks) == "tok0 tok1 tok2 tok3 tok4 "
    assert (done.input_tokens, done.output_tokens, done.tokens_estimated) == (7, 5, False)
    assert done.finish_reason == "stop"
    assert [c.at for c in chunks] == sorted(c.at for c in chunks)
    assert len(fault.sent_at[0]) == len(chunks)
    body = fault.requests[0].body or {}
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["seed"], body["stop"]) == (
        16,
        0,
        1,
        ["\n\n"],
    )
    assert fault.requests[0].headers["authorization"] == "Bearer sk-no-key"


@pytest.mark.parametrize("name", BACKENDS)
async def test_no_usage_is_estimated_not_chunk_counted(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("no_usage", chunks=3, text="The quick brown fox ")
    chunks, done, error = await run(make(name, fault.base_url))
    assert error is None and done is not None and done.tokens_estimated
    text = "".join(c.text for c in chunks)
    assert done.output_tokens == count(text) and done.output_tokens > len(chunks)
    assert done.input_tokens is not None and done.input_tokens > 0


@pytest.mark.parametrize("name", BACKENDS)
async def test_rate_limit_honours_retry_after(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("rate_limit", times=2, retry_after="0.3", chunks=2)
    chunks, done, error = await run(make(name, fault.base_url))
    assert error is None and done is not None and len(chunks) == 2
    arrivals = [r.at for r in fault.requests]
    assert len(arrivals) == 3
    assert all(later - earlier >= 0.3 for earlier, later in itertools.pairwise(arrivals))


@pytest.mark.parametrize("name", BACKENDS)
async def test_rate_limit_gives_up(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("rate_limit", times=None, retry_after="0.05")
    _, _, error = await run(make(name, fault.base_url, max_retries=1))
    assert error is not None and error.kind == "rate_limited" and error.retry_after_s == 0.05
    assert f"fault-model at {fault.base_url}: rate limited (HTTP 429) after 1 retry" in str(error)
    assert len(fault.requests) == 2


@pytest.mark.parametrize("name", BACKENDS)
async def test_server_error_retried_then_raised(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("server_error", times=None)
    _, _, error = await run(make(name, fault.base_url, max_retries=2))
    assert error is not None and error.kind == "server"
    assert "fault-model" in str(error) and "(HTTP 500)" in str(error)
    assert "after 2 retries" in str(error)
    assert len(fault.requests) == 3


@pytest.mark.parametrize("name", BACKENDS)
async def test_server_error_once_then_ok(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("server_error", times=1, chunks=2)
    chunks, done, error = await run(make(name, fault.base_url))
    assert error is None and done is not None and len(chunks) == 2
    assert len(fault.requests) == 2


@pytest.mark.parametrize("name", BACKENDS)
async def test_drop_after_text_never_retries(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("drop", chunks=5, drop_after=2)
    chunks, done, error = await run(make(name, fault.base_url))
    assert "".join(c.text for c in chunks) == "tok0 tok1 "
    assert done is None and error is not None and error.kind == "connection"
    assert "fault-model" in str(error)
    assert len(fault.requests) == 1


@pytest.mark.parametrize("name", BACKENDS)
async def test_stall_hits_first_token_timeout(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("stall", stall_s=5)
    started = time.perf_counter()
    _, _, error = await run(make(name, fault.base_url, first_token_timeout_s=0.5))
    assert error is not None and error.kind == "timeout" and "first token" in str(error)
    assert time.perf_counter() - started < 3
    assert len(fault.requests) == 1


@pytest.mark.parametrize("name", BACKENDS)
async def test_total_timeout_mid_stream(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("ok", chunks=30, delay_s=0.1)
    chunks, _, error = await run(make(name, fault.base_url, total_timeout_s=0.6))
    assert error is not None and error.kind == "timeout" and "longer than 0.6 s" in str(error)
    assert 0 < len(chunks) < 30


@pytest.mark.parametrize("name", BACKENDS)
async def test_invalid_json_is_bad_response(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("invalid_json", chunks=3)
    _, _, error = await run(make(name, fault.base_url))
    assert error is not None and error.kind == "bad_response" and "fault-model" in str(error)


@pytest.mark.parametrize("name", BACKENDS)
async def test_model_not_found(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("not_found")
    _, _, error = await run(make(name, fault.base_url))
    assert error is not None and error.kind == "model_missing"
    assert len(fault.requests) == 1


@pytest.mark.parametrize("key", ["sk-canary-1234567890abcdef", "sk-canary+12/34=567890abcdef"])
@pytest.mark.parametrize("name", BACKENDS)
async def test_unauthorized_never_shows_the_key(name: str, key: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("unauthorized")
    _, _, error = await run(make(name, fault.base_url, api_key=key))
    assert fault.requests[0].headers["authorization"] == f"Bearer {key}"  # it was sent
    assert error is not None and error.kind == "auth" and "HTTP 401" in str(error)
    assert "***" in str(error)  # the server's echo is shown, the key in it is not
    assert error.__cause__ is None and error.__context__ is None
    shown = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for form in (key, urllib.parse.quote(key, safe=""), base64.b64encode(key.encode()).decode()):
        assert all(form not in text for text in shown), form


@pytest.mark.parametrize("name", BACKENDS)
async def test_closed_port_is_connection_error(name: str) -> None:
    base = f"http://127.0.0.1:{closed_port()}/v1"
    _, _, error = await run(make(name, base, max_retries=1))
    assert error is not None and error.kind == "connection"
    assert "fault-model at " in str(error) and "after 1 retry" in str(error)


@pytest.mark.parametrize("name", BACKENDS)
async def test_cancel_mid_stream_closes_the_stream(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("ok", chunks=50, delay_s=0.1)
    backend = make(name, fault.base_url)
    first = asyncio.Event()

    async def consume() -> None:
        async for _ in backend.stream(REQUEST):
            first.set()

    task = asyncio.create_task(consume())
    await asyncio.wait_for(first.wait(), 10)
    cancelled_at = time.perf_counter()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert time.perf_counter() - cancelled_at < 0.5
    deadline = time.perf_counter() + 3
    while not fault.disconnects and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    assert fault.disconnects == 1  # the server noticed the closed socket
    assert len(fault.sent_at[0]) < 10
    await backend.close()


@pytest.mark.parametrize("name", BACKENDS)
async def test_leaving_early_closes_the_stream(name: str, fault: FaultServer) -> None:
    fault.scenario = Scenario("ok", chunks=50, delay_s=0.1)
    backend = make(name, fault.base_url)
    stream = backend.stream(REQUEST)
    assert isinstance(await anext(stream), Chunk)
    await stream.aclose()  # what `break` out of `async for` leads to, once collected
    deadline = time.perf_counter() + 3
    while not fault.disconnects and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    assert fault.disconnects == 1 and len(fault.sent_at[0]) < 10
    await backend.close()


def test_retry_after_forms() -> None:
    assert parse_retry_after("2") == 2.0 and parse_retry_after(" 0.3 ") == 0.3
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:10 GMT", now=1445412480.0) == 10.0
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_options_and_description() -> None:
    cls = load_backend("openai")
    with pytest.raises(ValueError, match="extra"):
        cls.Options(model="m", temprature=0.2)
    assert cls(cls.Options(model="gpt-4o-mini")).availability() is not None
    local = cls(cls.Options(model="smollm2", api_base="http://127.0.0.1:1/v1"))
    assert local.availability() is None
    assert local.describe() == {
        "provider": "openai",
        "model": "smollm2",
        "api_base": "http://127.0.0.1:1/v1",
    }
    lite = load_backend("litellm")
    assert lite(lite.Options(model="anthropic/claude-x")).describe()["provider"] == "anthropic"
    assert lite(lite.Options(model="ollama_chat/llama3")).availability() is None


def test_prices_from_the_bundled_list() -> None:
    assert price_for("gpt-4o-mini")[2] == "litellm-bundled-prices"
    assert price_for("openai/gpt-4o-mini") == price_for("gpt-4o-mini")
    assert price_for("openai/gpt-4o-mini")[0] > 0  # type: ignore[operator]
    assert price_for("local/no-such-model") == (None, None, "unknown")


def test_backends_import_nothing_heavy(tmp_path) -> None:
    code = (
        "import sys\n"
        "import workbench.backends.openai_compat, workbench.backends.litellm\n"
        "from workbench.backends.pricing import price_for\n"
        "price_for('gpt-4o-mini')\n"
        "print(','.join(m for m in ('openai', 'litellm', 'tiktoken') if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=tmp_path
    )
    assert out.stdout.strip() == ""


@pytest.mark.slow
@pytest.mark.parametrize("name", BACKENDS)
async def test_real_llama_cpp_server(name: str, llama_server: str) -> None:  # noqa: F811
    request = ChatRequest(
        [{"role": "user", "content": "Say hello in one short sentence."}],
        max_tokens=16,
        temperature=0,
    )
    chunks, done, error = await run(make(name, llama_server, model="smollm2"), request)
    assert error is None, error
    assert done is not None and "".join(c.text for c in chunks).strip()
    assert done.finish_reason in ("stop", "length")
    # llama_cpp.server 0.3.x ignores stream_options and sends no usage when streaming:
    # the counts are then estimates, and marked as such.
    assert done.input_tokens is not None and done.input_tokens > 5
    assert done.output_tokens is not None and done.output_tokens >= 1
    if not done.tokens_estimated:
        assert done.output_tokens <= 16
