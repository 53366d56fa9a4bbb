"""``providers`` (or ``targets``): promptfoo provider ids and their ``config``, as
Workbench models (through litellm, or the echo backend)."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

from pydantic import SecretStr
from pydantic import ValidationError as PydanticValidationError

from workbench.config import Settings
from workbench.domain import Params
from workbench.errors import WorkbenchError
from workbench.models import ModelSpec, resolve_model
from workbench.promptfoo.source import Loc, refuse

#: promptfoo provider -> litellm provider prefix.
_LITELLM_PREFIX = {
    "openai": "openai",
    "anthropic": "anthropic",
    "ollama": "ollama",
    "azure": "azure",
    "openrouter": "openrouter",
    "groq": "groq",
    "mistral": "mistral",
    "deepseek": "deepseek",
    "togetherai": "together_ai",
    "perplexity": "perplexity",
    "xai": "xai",
    "fireworks": "fireworks_ai",
    "cerebras": "cerebras",
    "cohere": "cohere_chat",
    "google": "gemini",
    "vertex": "vertex_ai",
    "bedrock": "bedrock",
    "huggingface": "huggingface",
    "hf": "huggingface",
    # OpenAI-compatible servers: a LocalAI server and a LiteLLM proxy.
    "localai": "openai",
    "litellm": "openai",
}
#: The second part of an id that names the chat API (``openai:chat:MODEL``).
_CHAT_KIND = {
    "openai": "chat",
    "anthropic": "messages",
    "ollama": "chat",
    "azure": "chat",
    "togetherai": "chat",
    "mistral": "chat",
    "cohere": "chat",
    "vertex": "chat",
    "localai": "chat",
    "litellm": "chat",
    "bedrock": "converse",
    "huggingface": "text-generation",
    "hf": "text-generation",
}
#: Second parts that name other APIs (embeddings, images, agents...).
# fmt: off
_OTHER_KINDS = frozenset((
    "completion", "embedding", "embeddings", "moderation", "realtime", "responses",
    "transcription", "assistant", "image", "agents", "chatkit", "codex", "codex-sdk", "live",
    "audio", "claude-agent-sdk", "claude-code", "kb", "knowledge-base", "nova-sonic",
    "feature-extraction", "sentence-similarity", "text-classification", "token-classification",
    "foundry-agent",
))
# fmt: on
#: Where promptfoo sends these when no apiBaseUrl is given (Ollama: $OLLAMA_BASE_URL first).
_DEFAULT_BASE = {
    "localai": "http://localhost:8080/v1",
    "litellm": "http://0.0.0.0:4000",
    "ollama": "http://localhost:11434",
}
#: Families whose ids must name the chat API.
_KIND_REQUIRED = frozenset({"azure", "huggingface", "hf"})
_PROVIDER_KEYS = ("id", "label", "config")
WORKBENCH_PREFIX = "workbench:"
"""Workbench's own provider ids: ``workbench:`` and any model `workbench run` accepts."""
_CONFIG_PARAMS = ("temperature", "max_tokens", "top_p", "seed", "stop")
_CONFIG_KEYS = ("apiBaseUrl", "apiKey", *_CONFIG_PARAMS)
# fmt: off
SUPPORTED_PROVIDERS = (
    "echo", "workbench:MODEL", "openai:chat:MODEL", "openai:MODEL", "anthropic:messages:MODEL", "anthropic:MODEL",
    "ollama:chat:MODEL", "ollama:MODEL", "azure:chat:DEPLOYMENT", "openrouter:MODEL",
    "groq:MODEL", "mistral:MODEL", "deepseek:MODEL", "togetherai:MODEL", "perplexity:MODEL",
    "xai:MODEL", "fireworks:MODEL", "cerebras:MODEL", "cohere:MODEL", "google:MODEL",
    "vertex:MODEL", "bedrock:MODEL", "bedrock:converse:MODEL",
    "huggingface:text-generation:MODEL", "localai:MODEL", "litellm:MODEL",
)
# fmt: on
"""The provider ids this module maps (``MODEL`` is any model name)."""


def litellm_id(provider_id: str) -> str | None:
    """The litellm model id of a promptfoo provider id, or None when there is none.

    ``openai:chat:gpt-4o-mini`` -> ``openai/gpt-4o-mini``, ``anthropic:messages:M`` ->
    ``anthropic/M``, ``ollama:chat:llama3`` -> ``ollama_chat/llama3``, ``ollama:llama3`` ->
    ``ollama/llama3``; LocalAI and LiteLLM-proxy ids become ``openai/MODEL`` (a server).
    """
    family, _, rest = provider_id.partition(":")
    prefix = _LITELLM_PREFIX.get(family)
    if prefix is None or not rest:
        return None
    kind, _, model = rest.partition(":")
    if family == "ollama" and kind in ("chat", "completion"):
        prefix = "ollama_chat" if kind == "chat" else "ollama"
    elif kind == _CHAT_KIND.get(family) and model:
        prefix = "bedrock/converse" if family == "bedrock" else prefix
    elif kind in _OTHER_KINDS or family in _KIND_REQUIRED:
        return None
    else:
        model = rest
    return f"{prefix}/{model}" if model else None


def provider_spec(raw: Any, loc: Loc, settings: Settings) -> ModelSpec:
    """A ``providers`` entry (an id, or ``{id, label, config}``) as a model."""
    if isinstance(raw, str):
        raw = {"id": raw}
    elif isinstance(raw, dict) and len(raw) == 1 and "id" not in raw:
        # promptfoo's {"openai:chat:gpt-4o": {config: ...}} form.
        ((key, options),) = raw.items()
        if not isinstance(options, dict):
            raise refuse(loc, "a provider is an id or a mapping with id, label and config")
        raw, loc = {"id": key, **options}, loc[key]
    if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
        raise refuse(loc, "a provider is an id or a mapping with id, label and config")
    unknown = [k for k in raw if k not in _PROVIDER_KEYS]
    if unknown:
        raise refuse(
            loc.key(unknown[0]),
            f"provider key {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_PROVIDER_KEYS)})",
        )
    provider_id, label = raw["id"], raw.get("label")
    if label is not None and not isinstance(label, str):
        raise refuse(loc["label"], "a provider's label is text")
    config = raw.get("config") or {}
    if not isinstance(config, dict):
        raise refuse(loc["config"], "a provider's config is a mapping")
    name = label or provider_id
    if provider_id == "echo":
        if config:
            raise refuse(loc["config"], "the echo provider takes no config")
        return ModelSpec(name=name, backend="echo", options={})
    if provider_id.startswith(WORKBENCH_PREFIX):
        # Workbench's own extension: any model `workbench run` accepts (a configured
        # model, smollm2, a .gguf file), e.g. `workbench:smollm2` runs SmolLM2 locally.
        ref = provider_id.removeprefix(WORKBENCH_PREFIX)
        allowed = {k: v for k, v in config.items() if k in _CONFIG_PARAMS}
        if set(config) - set(allowed):
            extra = sorted(set(config) - set(allowed))[0]
            raise refuse(loc["config"].key(extra),
                         f"a workbench: provider takes only {', '.join(_CONFIG_PARAMS)}")
        try:
            spec = resolve_model(settings, ref)
            params = Params.model_validate(allowed).model_dump(exclude_none=True)
        except (WorkbenchError, PydanticValidationError) as exc:
            raise refuse(loc["id"], f"provider {provider_id}: {exc}") from None
        return replace(spec, name=name, params={**spec.params, **params})
    ref = litellm_id(provider_id)
    if ref is None:
        raise refuse(
            loc["id"],
            f"provider {provider_id!r} is not supported "
            f"(supported: {', '.join(SUPPORTED_PROVIDERS)})",
        )
    return _model_spec(provider_id, ref, name, config, loc["config"], settings)


def _model_spec(
    provider_id: str, ref: str, name: str, config: dict[str, Any], loc: Loc, settings: Settings
) -> ModelSpec:
    unknown = [k for k in config if k not in _CONFIG_KEYS]
    if unknown:
        raise refuse(
            loc.key(unknown[0]),
            f"provider config {unknown[0]!r} is not supported "
            f"(supported: {', '.join(_CONFIG_KEYS)})",
        )
    family = provider_id.partition(":")[0]
    default = os.environ.get("OLLAMA_BASE_URL") if family == "ollama" else None
    base = config.get("apiBaseUrl", default or _DEFAULT_BASE.get(family))
    if base is not None and not isinstance(base, str):
        raise refuse(loc["apiBaseUrl"], "apiBaseUrl is a URL")
    key = config.get("apiKey")
    if key is not None and (not isinstance(key, str) or "{{" in key):
        # Never echo the value: it may be a real key.
        raise refuse(
            loc["apiKey"],
            "apiKey must be plain text (templates such as "
            "{{ env.X }} are not supported: leave apiKey out and give Workbench the "
            "key through its keyring or the environment)",
        )
    try:
        params = Params.model_validate(
            {k: config[k] for k in _CONFIG_PARAMS if k in config}
        ).model_dump(exclude_none=True)
    except PydanticValidationError as exc:
        problem = exc.errors()[0]
        where = str(problem["loc"][0]) if problem["loc"] else ""
        raise refuse(
            loc[where] if where else loc, f"provider {name}: {where}: {problem['msg']}"
        ) from None
    try:
        spec = resolve_model(settings, ref, api_base=base)
    except WorkbenchError as exc:
        raise refuse(loc, f"provider {name}: {exc}") from None
    options = dict(spec.options)
    if key:
        options["api_key"] = SecretStr(key)  # shows as '**********' in any repr
    return replace(spec, name=name, options=options, params={**spec.params, **params})


def load_providers(config: dict[str, Any], loc: Loc, settings: Settings) -> list[ModelSpec]:
    if "providers" in config and "targets" in config:
        raise refuse(loc.key("targets"), "give providers or targets, not both")
    key = "targets" if "targets" in config else "providers"
    raw = config.get(key)
    if isinstance(raw, str):
        raw = [raw]
    if not isinstance(raw, list) or not raw:
        raise refuse(
            loc[key] if key in config else loc,
            "providers is required: a list of provider ids or {id, label, config} mappings",
        )
    models: list[ModelSpec] = []
    for index, item in enumerate(raw):
        spec = provider_spec(item, loc[key][index], settings)
        if any(m.name == spec.name for m in models):
            raise refuse(
                loc[key][index], f"two providers are named {spec.name!r}; give one of them a label"
            )
        models.append(spec)
    return models
