"""The provider prefixes litellm knows (``openai`` in ``openai/gpt-4o-mini``), without
importing litellm (the import costs seconds).

A copy of litellm's own list at the version pinned in constraints.txt: its ``provider_list``
and the OpenAI-compatible providers it configures from JSON. tests/test_providers.py checks
that the copy equals litellm's; update it when litellm is upgraded.
"""

from __future__ import annotations

import difflib

# fmt: off
LITELLM_PROVIDERS: frozenset[str] = frozenset((
    "a2a", "a2a_agent", "abliteration", "ai21", "ai21_chat", "aiand", "aihubmix", "aiml",
    "aiohttp_openai", "amazon_nova", "anthropic", "anthropic_text", "apertis", "assemblyai",
    "auto_router", "aws_polly", "aws_textract", "azure", "azure_ai", "azure_speech",
    "azure_text", "baseten", "bedrock", "bedrock_mantle", "bespoke", "bigmodel",
    "black_forest_labs", "bytez", "cerebras", "charity_engine", "chatgpt", "chutes", "clarifai",
    "clf_ai_gateway", "cloudflare", "codestral", "cognition", "cohere", "cohere_chat",
    "cometapi", "compactifai", "coralbricks", "cortecs", "crusoe", "cursor", "custom",
    "custom_openai", "darkbloom", "dashscope", "databricks", "databricks_agent", "datarobot",
    "deepgram", "deepinfra", "deepseek", "docker_model_runner", "dotprompt", "edenai",
    "elevenlabs", "empiriolabs", "empower", "eu_jev", "fal_ai", "featherless_ai",
    "fireworks_ai", "friendliai", "galadriel", "gdc", "gemini", "gigachat", "github",
    "github_copilot", "gmi", "gradient_ai", "groq", "helicone", "heroku", "hosted_vllm",
    "hostinger_router", "huggingface", "humanloop", "hyperbolic", "inception", "inferenceapis",
    "infinity", "jina_ai", "kyma", "lambda_ai", "langflow", "langfuse", "langgraph", "laya",
    "lemonade", "libertai", "litellm_agent", "litellm_proxy", "llamafile", "llamagate",
    "lm_studio", "manus", "maritalk", "meta", "meta_llama", "microsoft_365_copilot", "milvus",
    "minimax", "mistral", "modelscope", "mongodb", "moonshot", "morph", "nace", "nadir",
    "nano-gpt", "nebius", "neosantara", "nlp_cloud", "novita", "nscale", "nvidia_nim",
    "nvidia_riva", "oci", "ollama", "ollama_chat", "oobabooga", "openai", "openai_like",
    "opencode_go", "openinfer", "openrouter", "opensearch", "ovhcloud", "parallel_ai",
    "parasail", "perplexity", "petals", "pg_vector", "pinstripes", "poe", "predibase", "prism",
    "publicai", "qwen_ai_platform", "qwencloud", "ragflow", "recraft", "reducto", "refuseless",
    "reka", "replicate", "runwayml", "s3_vectors", "sagemaker", "sagemaker_chat",
    "sagemaker_nova", "sail", "sambanova", "sap", "sarvam", "scaledown", "scaleway", "scx-ai",
    "snowflake", "soniox", "stability", "strands_decider", "streamlake", "synthetic", "tencent",
    "tensormesh", "text-completion-codestral", "text-completion-inception",
    "text-completion-openai", "together_ai", "topaz", "transcribe", "triton", "typesafe", "v0",
    "valkey", "veniceai", "vercel_ai_gateway", "vertex_ai", "vertex_ai_beta", "vllm",
    "volcengine", "voyage", "wally", "wandb", "watsonx", "watsonx_text", "xai", "xiaomi_mimo",
    "xinference", "zai", "zerogpu",
))
# fmt: on


def unknown_provider(model_id: str) -> str | None:
    """None when ``model_id``'s prefix is a provider litellm knows, else what is wrong,
    with the nearest provider names."""
    prefix = model_id.split("/", 1)[0]
    if prefix in LITELLM_PROVIDERS:
        return None
    near = difflib.get_close_matches(prefix.lower(), sorted(LITELLM_PROVIDERS), n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(near)}?)" if near else ""
    return (
        f"unknown provider {prefix!r} in model id {model_id!r}{hint}: a model id starts with "
        "one of litellm's providers (openai/, anthropic/, ollama_chat/, ...; see "
        "https://docs.litellm.ai/docs/providers), or names a server of your own with an "
        "api_base (openai/MODEL for an OpenAI-compatible one)"
    )
