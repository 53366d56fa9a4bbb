"""Local models through llama.cpp (llama-cpp-python): GGUF files, CPU or GPU offload.

A model is loaded once per process and reused by every call. Generation runs in a worker thread, one request
at a time per model, and stops between tokens when the caller cancels. The prompt is
formatted with the chat template from the GGUF metadata and tokenized with the model's
own tokenizer, so input and output token counts are exact, not estimates.
"""

from __future__ import annotations

import asyncio
import atexit
import codecs
import hashlib
import json
import os
import random
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

from pydantic import Field

from workbench.backends.base import Backend, BackendError, ChatRequest, Chunk, Done

GGUF_MAGIC = b"GGUF"
_END = object()
# Loaded models by (file, n_ctx, threads, gpu layers): one load per process, reused by
# every backend on the same file. A cache, filled on first use, never at import.
_LOADED: dict[tuple[Any, ...], tuple[Any, Any, dict[str, Any], threading.Lock]] = {}
_LOAD_LOCK = threading.Lock()


class LlamaCppBackend(Backend):
    """A GGUF model run in-process by llama.cpp."""

    name = "llama_cpp"
    local = True
    supports_grammar = True
    supports_json_schema = True
    max_concurrency = 1

    class Options(Backend.Options):
        """How to load the model."""

        model_path: str
        n_ctx: int = Field(default=4096, ge=256)
        n_threads: int | None = Field(default=None, ge=1)
        """CPU threads; default: every core (llama.cpp's own default is half of them)."""
        n_gpu_layers: int = 0
        """Layers offloaded to the GPU (-1: all); needs a CUDA or Metal build."""
        seed: int | None = None

    options: Options

    def __init__(self, options: Options, **kwargs: Any):
        super().__init__(options, **kwargs)
        self._llm: Any = None
        self._formatter: Any = None
        self._gen_lock = threading.Lock()
        self._info: dict[str, Any] = {}

    def availability(self) -> str | None:
        path = Path(self.options.model_path)
        if not path.is_file():
            return f"model file {path} does not exist"
        try:
            with path.open("rb") as handle:
                if handle.read(4) != GGUF_MAGIC:
                    return f"{path} is not a GGUF file"
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or exc}"
        return None

    def describe(self) -> dict[str, Any]:
        if not self._info:
            path = Path(self.options.model_path)
            info: dict[str, Any] = {"file": str(path), "n_gpu_layers": self.options.n_gpu_layers}
            if path.is_file():
                info.update(file_identity(path))
            self._info = info
        return dict(self._info)

    def identity(self) -> dict[str, Any]:
        """The file's SHA-256 and size, and the options that change answers (the context
        size bounds an answer without max_tokens; the default seed picks the samples).
        Not the path, threads or GPU layers, nor what loading reads from the metadata:
        the key must be the same before and after the model is loaded."""
        facts = self.describe()
        o = self.options
        found = {k: facts[k] for k in ("sha256", "size_bytes") if k in facts}
        return {**(found or {"file": facts["file"]}), "n_ctx": o.n_ctx, "seed": o.seed}

    def _load(self) -> Any:
        if self._llm is not None:
            return self._llm
        key = (
            str(Path(self.options.model_path).resolve()),
            self.options.n_ctx,
            self.options.n_threads,
            self.options.n_gpu_layers,
        )
        with _LOAD_LOCK:
            if key not in _LOADED:
                if not _LOADED:
                    # Free models before the interpreter tears modules down; llama.cpp's
                    # finalizers fail noisily when they run after that.
                    atexit.register(unload_all)
                _LOADED[key] = self._load_model()
        self._llm, self._formatter, facts, self._gen_lock = _LOADED[key]
        self._info = {**self.describe(), **facts}
        return self._llm

    def _load_model(self) -> tuple[Any, Any, dict[str, Any], threading.Lock]:
        problem = self.availability()
        if problem is not None:
            kind = "model_missing" if "does not exist" in problem else "model_corrupt"
            raise BackendError(problem, kind=kind)
        from llama_cpp import Llama
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        threads = self.options.n_threads or os.cpu_count() or 1
        try:
            llm = Llama(
                model_path=self.options.model_path,
                n_ctx=self.options.n_ctx,
                n_threads=threads,
                n_threads_batch=threads,
                n_gpu_layers=self.options.n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(
                f"{self.options.model_path} could not be loaded (truncated or not a "
                f"model llama.cpp supports): {exc}",
                kind="model_corrupt",
            ) from None
        template = llm.metadata.get("tokenizer.chat_template")
        if not template:
            llm.close()
            raise BackendError(
                f"{self.options.model_path} has no chat template in its metadata",
                kind="model_corrupt",
            )
        eos, bos = llm.token_eos(), llm.token_bos()
        text = llm._model.token_get_text
        formatter = Jinja2ChatFormatter(
            template=template,
            eos_token=text(eos) if eos != -1 else "",
            bos_token=text(bos) if bos != -1 else "",
            stop_token_ids=[eos],
        )
        return llm, formatter, gguf_facts(llm), threading.Lock()

    async def prepare(self) -> None:
        """Load the model (once per process) off the event loop."""
        await asyncio.to_thread(self._load)

    async def stream(self, request: ChatRequest) -> AsyncIterator[Chunk | Done]:
        llm = await asyncio.to_thread(self._load)
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        cancel = threading.Event()

        def produce() -> None:
            try:
                # One generation at a time per loaded model (it has one context); the
                # lock lives with the model, so separate backends on one file queue too.
                with self._gen_lock:
                    for item in self._generate(llm, request, cancel):
                        loop.call_soon_threadsafe(queue.put_nowait, item)
            except BaseException as exc:
                loop.call_soon_threadsafe(queue.put_nowait, exc)
            finally:
                loop.call_soon_threadsafe(queue.put_nowait, _END)

        worker = loop.run_in_executor(None, produce)
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            cancel.set()  # the thread stops before its next token
            await asyncio.shield(worker)

    def _generate(
        self, llm: Any, request: ChatRequest, cancel: threading.Event
    ) -> Iterator[Chunk | Done]:
        import llama_cpp

        formatted = self._formatter(messages=request.messages)
        tokens = llm.tokenize(
            formatted.prompt.encode("utf-8"), add_bos=not formatted.added_special, special=True
        )
        room = llm.n_ctx() - len(tokens)
        if room <= 0:
            raise BackendError(
                f"the prompt has {len(tokens)} tokens; the context holds {llm.n_ctx()}",
                kind="config",
            )
        max_tokens = min(request.max_tokens or room, room)
        stops = [s for s in (request.stop or []) if s]
        seed = request.seed if request.seed is not None else self.options.seed
        # A seed must not stick to the shared model: unseeded calls get a fresh one.
        llm.set_seed(seed if seed is not None else random.getrandbits(31))
        _forget_last_prompt_token(llm, tokens)
        grammar = _grammar(request)
        vocab = llm._model.vocab
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending, produced, finish = "", 0, "length"
        for token in llm.generate(
            tokens,
            temp=request.temperature if request.temperature is not None else 0.2,
            top_p=request.top_p if request.top_p is not None else 0.95,
            top_k=40,
            min_p=0.05,
            repeat_penalty=1.0,
            grammar=grammar,
        ):
            if cancel.is_set():
                finish = "cancelled"
                break
            if llama_cpp.llama_vocab_is_eog(vocab, token):
                finish = "stop"
                break
            produced += 1
            pending += decoder.decode(llm.detokenize([token]))
            cut = _find_stop(pending, stops)
            if cut is not None:
                if cut:
                    yield Chunk(pending[:cut], self.clock())
                pending, finish = "", "stop"
                break
            # Hold back a tail that could still grow into a stop sequence.
            safe = len(pending) - _stop_prefix_len(pending, stops)
            if safe > 0:
                yield Chunk(pending[:safe], self.clock())
                pending = pending[safe:]
            if produced >= max_tokens:
                break
        tail = pending + decoder.decode(b"", final=True)
        if tail and finish != "stop":
            yield Chunk(tail, self.clock())
        yield Done(
            input_tokens=len(tokens),
            output_tokens=produced,
            finish_reason=finish,
            model_info=dict(self._info),
        )

    async def close(self) -> None:
        # The model stays loaded for the next backend on the same file (see unload_all).
        self._llm = None


def unload_all() -> None:
    """Free every loaded model."""
    with _LOAD_LOCK:
        for llm, *_ in _LOADED.values():
            llm.close()
        _LOADED.clear()
    atexit.unregister(unload_all)


def _forget_last_prompt_token(llm: Any, tokens: list[int]) -> None:
    """Keep the KV-cache prefix reuse, minus the case llama-cpp-python gets wrong.

    When the whole prompt is already in the cache (the same prompt twice in a row),
    llama-cpp-python 0.3.36 can sample from stale logits and produce garbage. Dropping
    the cached prompt's last token makes it re-evaluate that one token: the prefix is
    still reused (TTFT stays low), and the logits are fresh.
    """
    cached = llm._input_ids
    same = 0
    for a, b in zip(cached, tokens):
        if a != b:
            break
        same += 1
    if same >= len(tokens) and tokens:
        keep = len(tokens) - 1
        if keep > 0 and llm._ctx.kv_cache_seq_rm(-1, keep, -1):
            llm.n_tokens = keep
        else:
            llm.reset()


def _grammar(request: ChatRequest) -> Any:
    from llama_cpp.llama_grammar import JSON_GBNF, LlamaGrammar

    if request.grammar:
        return LlamaGrammar.from_string(request.grammar, verbose=False)
    fmt = request.response_format or {}
    if fmt.get("type") == "json_schema":
        schema = fmt.get("json_schema", {}).get("schema") or fmt.get("schema")
        if schema:
            return LlamaGrammar.from_json_schema(json.dumps(schema), verbose=False)
    if fmt.get("type") in ("json_object", "json_schema"):
        return LlamaGrammar.from_string(JSON_GBNF, verbose=False)
    return None


def _find_stop(text: str, stops: list[str]) -> int | None:
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    return min(found) if found else None


def _stop_prefix_len(text: str, stops: list[str]) -> int:
    """The length of the longest end of ``text`` that begins some stop sequence."""
    best = 0
    for stop in stops:
        for n in range(min(len(stop) - 1, len(text)), best, -1):
            if text.endswith(stop[:n]):
                best = n
                break
    return best


def file_identity(path: Path) -> dict[str, Any]:
    """SHA-256 and size of a model file, cached by path, size and mtime (hashing GBs is slow)."""
    from workbench.config import data_dir

    stat = path.stat()
    key = f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
    cache_file = data_dir() / "model-hashes.json"
    try:
        cache = json.loads(cache_file.read_text())
    except (OSError, ValueError):
        cache = {}
    if key not in cache:
        digest = hashlib.sha256()
        with path.open("rb") as handle:
            while block := handle.read(1 << 20):
                digest.update(block)
        cache[key] = digest.hexdigest()
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            cache_file.write_text(json.dumps(cache))
        except OSError:
            pass  # a cache we cannot write only costs time
    return {"sha256": cache[key], "size_bytes": stat.st_size}


def gguf_facts(llm: Any) -> dict[str, Any]:
    """Quantization, architecture and name from a loaded model's metadata."""
    import llama_cpp

    meta = llm.metadata
    names = {
        getattr(llama_cpp, n): n.removeprefix("LLAMA_FTYPE_MOSTLY_").removeprefix("LLAMA_FTYPE_")
        for n in dir(llama_cpp)
        if n.startswith("LLAMA_FTYPE_")
    }
    file_type = meta.get("general.file_type")
    quant = names.get(int(file_type)) if file_type is not None and file_type.isdigit() else None
    return {
        "quantization": quant,
        "architecture": meta.get("general.architecture"),
        "model_name": meta.get("general.name"),
        "n_ctx": llm.n_ctx(),
    }
