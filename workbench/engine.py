"""The engine: every model call goes through here, is measured the same way, and is
recorded as a run.

A run is written as ``running`` before the call and completed after it: ``ok``,
``error`` (nothing arrived), ``partial`` (the stream broke after some text) or
``cancelled``. Backends are built once per model and reused (a local model stays
loaded).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from workbench import metrics
from workbench.backends.base import Backend, BackendError, ChatRequest, Chunk, Clock, Done, load_backend
from workbench.config import Settings
from workbench.errors import WorkbenchError
from workbench.models import ModelSpec
from workbench.storage import runs
from workbench.storage.db import Store

_PARAMS = ("max_tokens", "temperature", "top_p", "seed", "stop", "response_format")


@dataclass(frozen=True)
class RunResult:
    """What a call produced and measured."""

    run_id: str
    status: str
    output: str
    error: str | None
    metrics: metrics.Metrics
    model_info: dict[str, Any]


class Engine:
    """Runs model calls for the CLI and the app.

    Args:
        settings: configuration (prices, keys' providers).
        store: where runs are recorded.
        clock: a monotonic clock in seconds, injectable for tests.
        backend_classes: backends by name that take precedence over installed ones.
    """

    def __init__(
        self,
        settings: Settings,
        store: Store,
        *,
        clock: Clock = time.perf_counter,
        backend_classes: dict[str, type[Backend]] | None = None,
    ):
        self.settings = settings
        self.store = store
        self.clock = clock
        self._classes = dict(backend_classes or {})
        self._backends: dict[str, Backend] = {}
        self._described: dict[int, dict[str, Any]] = {}

    def backend(self, spec: ModelSpec) -> Backend:
        """The backend for a model, built on first use and then reused."""
        key = json.dumps([spec.backend, spec.options], sort_keys=True, default=str)
        if key not in self._backends:
            cls = self._classes.get(spec.backend) or load_backend(spec.backend)
            options = dict(spec.options)
            if spec.backend != "llama_cpp" and options.get("api_key") is None:
                options["api_key"] = self._key(spec)  # the keyring only when none is given
            try:
                validated = cls.Options(**{k: v for k, v in options.items() if v is not None})
            except Exception as exc:
                raise WorkbenchError(f"model {spec.name}: invalid options: {exc}") from None
            self._backends[key] = cls(validated, clock=self.clock)
        return self._backends[key]

    @staticmethod
    def request_params(spec: ModelSpec, params: dict[str, Any] | None) -> dict[str, Any]:
        """The parameters a call sends: the model's, overridden by the prompt's."""
        chosen = {**spec.params, **(params or {})}
        return {k: v for k, v in chosen.items() if k in _PARAMS and v is not None}

    def cache_key(
        self, spec: ModelSpec, messages: Sequence[dict[str, str]], params: dict[str, Any] | None
    ) -> str:
        """What makes two calls identical: the model's identity (a GGUF file's SHA-256 and
        the options that change answers, or the provider, model id and API base), the
        rendered messages and the parameters sent (the seed among them). The identity is
        the same whether or not the model is loaded yet. May hash a model file the first
        time."""
        data = {
            "backend": spec.backend,
            "model": self.backend(spec).identity(),
            "messages": list(messages),
            "params": self.request_params(spec, params),
        }
        text = json.dumps(data, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()

    def _key(self, spec: ModelSpec) -> str | None:
        if not spec.provider:
            return None
        from workbench.keys import get_key

        return get_key(spec.provider)[0]

    def secrets(self, spec: ModelSpec) -> list[str]:
        """The secrets a call to this model may involve (to scrub from error text).

        Besides the key the engine chose, a client library may read credentials from
        the environment on its own (litellm reads OPENAI_API_KEY for several providers),
        so every credential-looking variable counts.
        """
        from workbench.keys import environment_secrets

        key = self._key(spec) if spec.backend != "llama_cpp" else None
        return [*([key] if key else []), *environment_secrets()]

    async def run(
        self,
        spec: ModelSpec,
        messages: Sequence[dict[str, str]],
        params: dict[str, Any] | None = None,
        *,
        prompt_version_id: str | None = None,
        template: Sequence[dict[str, Any]] | None = None,
        variables: dict[str, Any] | None = None,
        on_chunk: Callable[[str], None] | None = None,
        experiment_id: str | None = None,
        cell: str | None = None,
        cache_key: str | None = None,
        gate: asyncio.Semaphore | None = None,
        on_start: Callable[[], None] | None = None,
        retrieval: list[dict[str, Any]] | None = None,
    ) -> RunResult:
        """Call the model, stream its text to ``on_chunk``, and record the run (with what
        ``retrieval`` filled variables with).

        With a ``gate``, the call waits for it and holds it only while the model is
        called; ``on_start`` is called once the call goes ahead.

        Backend failures are recorded and returned (status ``error`` or ``partial``),
        not raised. Cancelling the task records ``cancelled`` and re-raises.
        """
        chosen = self.request_params(spec, params)
        backend = self.backend(spec)
        run_id = runs.new_run_id()
        parts: list[str] = []
        first = last = None
        done: Done | None = None
        status, error = "ok", None
        cancelled = False
        # The gate bounds calls in flight; recording the outcome happens after it is
        # released, so the next call need not wait for this one's write.
        async with gate if gate is not None else contextlib.nullcontext():
            if on_start is not None:
                on_start()
            info = self._described.get(id(backend))
            if info is None:  # the first call may hash a model file: off the loop
                info = self._described[id(backend)] = await asyncio.to_thread(backend.describe)
            # The `running` row is written while the request goes out, not before it: the
            # write costs a millisecond or two that the call's latency need not wait for.
            started = asyncio.ensure_future(
                asyncio.to_thread(
                    runs.start_run,
                    self.store,
                    runs.RunStart(
                        model=spec.name,
                        backend=spec.backend,
                        messages=list(messages),
                        params=chosen,
                        variables=dict(variables or {}),
                        prompt_version_id=prompt_version_id,
                        template=template,
                        model_info=dict(info),
                        experiment_id=experiment_id,
                        cell=cell,
                        cache_key=cache_key,
                        retrieval=retrieval,
                    ),
                    run_id,
                )
            )
            submitted = self.clock()
            try:
                # Loading a model or importing a client library is set-up, not latency.
                await backend.prepare()
                submitted = self.clock()
                async for event in backend.stream(ChatRequest(messages=list(messages), **chosen)):
                    if isinstance(event, Chunk):
                        if event.text:
                            first = event.at if first is None else first
                            last = event.at
                            parts.append(event.text)
                            if on_chunk is not None:
                                on_chunk(event.text)
                    else:
                        done = event
            except asyncio.CancelledError:
                cancelled = True
                status, error = "cancelled", "cancelled by the user"
            except BackendError as exc:
                status, error = ("partial" if parts else "error"), f"{spec.name}: {exc}"
            except Exception as exc:  # a backend bug must not lose the run or crash the caller
                status = "partial" if parts else "error"
                error = f"{spec.name}: unexpected {type(exc).__name__}: {exc}"
        finishing = asyncio.ensure_future(
            self._finish(spec, started, run_id, status, parts, error, submitted, first, last, done)
        )
        if cancelled:
            # Record the cancellation even if cancelled again meanwhile (it is one write):
            # a run must never be left `running` by a live process.
            while not finishing.done():
                with contextlib.suppress(asyncio.CancelledError):
                    await asyncio.shield(finishing)
            raise asyncio.CancelledError
        return await finishing

    async def _finish(
        self,
        spec: ModelSpec,
        started: asyncio.Future[str],
        run_id: str,
        status: str,
        parts: list[str],
        error: str | None,
        submitted: float,
        first: float | None,
        last: float | None,
        done: Done | None,
    ) -> RunResult:
        if error is not None:
            from workbench.keys import redact

            error = redact(error, self.secrets(spec))
        backend = self.backend(spec)
        output_tokens = done.output_tokens if done else None
        timing = metrics.timing(submitted, first, last, output_tokens)
        input_tokens = done.input_tokens if done else None
        if backend.free:
            cost, source = 0.0, f"free ({spec.backend} backend calls no model)"
        elif backend.local:
            wall_s = (last if last is not None else self.clock()) - submitted
            cost, source = metrics.local_cost(wall_s, self.settings.local.price_per_hour_usd)
        else:
            from workbench.backends.pricing import price_for

            model_id = str(spec.options.get("model", spec.name))
            if spec.options.get("api_base"):
                # A server of one's own (vLLM, llama.cpp, Ollama) is not billed at a
                # provider's list price, whatever the model is called.
                cost, source = None, "unknown (own server at api_base; no list price)"
            else:
                cost, source = metrics.hosted_cost(
                    input_tokens, output_tokens, *price_for(model_id)
                )
        figures = metrics.Metrics(
            **timing,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            tokens_estimated=done.tokens_estimated if done else False,
            cost_usd=cost,
            cost_source=source,
        )
        info = {**backend.describe(), **(done.model_info if done else {})}
        await started  # the `running` row exists before it is completed
        await asyncio.to_thread(
            runs.finish_run,
            self.store,
            run_id,
            status=status,
            output="".join(parts),
            error=error,
            metrics=figures.as_dict(),
            model_info=info,
        )
        return RunResult(run_id, status, "".join(parts), error, figures, info)

    async def aclose(self) -> None:
        """Close every backend (unloads local models)."""
        for backend in self._backends.values():
            await backend.close()
        self._backends.clear()
