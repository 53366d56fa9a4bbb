"""Token counts for when a server reports no usage: an estimate, and marked as one.

The estimate uses OpenAI's ``cl100k_base`` vocabulary through ``tiktoken``. tiktoken
downloads vocabularies on first use, which fails offline; litellm ships a copy of this one
(``litellm_core_utils/tokenizers/<sha1 of its URL>``), so it is read from there, checked
against tiktoken's published SHA-256, without importing litellm (seconds). Where neither is
there, about 4 characters per token (OpenAI's rule of thumb for English) stands in.

Chunks are never counted as tokens: a server may pack several tokens into one chunk.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import math
from pathlib import Path
from typing import Any

_CL100K_URL = "https://openaipublic.blob.core.windows.net/encodings/cl100k_base.tiktoken"
_CL100K_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
# From tiktoken_ext/openai_public.py (cl100k_base): the split pattern and special tokens.
_CL100K_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++"""
    r"""[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
_CL100K_SPECIAL = {
    "<|endoftext|>": 100257,
    "<|fim_prefix|>": 100258,
    "<|fim_middle|>": 100259,
    "<|fim_suffix|>": 100260,
    "<|endofprompt|>": 100276,
}
# OpenAI's accounting for chat formats: each message costs a few tokens of framing
# (role markers) and the reply is primed with a few more.
_PER_MESSAGE = 3
_REPLY_PRIMING = 3


def _bundled_vocabulary() -> Path | None:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return None
    name = hashlib.sha1(_CL100K_URL.encode()).hexdigest()  # tiktoken's cache file name
    for folder in spec.submodule_search_locations:
        path = Path(folder) / "litellm_core_utils" / "tokenizers" / name
        if path.is_file():
            return path
    return None


@functools.cache
def encoding() -> Any | None:
    """The cl100k_base ``tiktoken.Encoding``, or None when it cannot be had offline."""
    path = _bundled_vocabulary()
    if path is None:
        return None
    try:
        import tiktoken

        data = path.read_bytes()
        if hashlib.sha256(data).hexdigest() != _CL100K_SHA256:
            return None
        ranks = {
            base64.b64decode(token): int(rank)
            for token, rank in (line.split() for line in data.splitlines() if line)
        }
        return tiktoken.Encoding(
            "cl100k_base",
            pat_str=_CL100K_PATTERN,
            mergeable_ranks=ranks,
            special_tokens=_CL100K_SPECIAL,
        )
    except (ImportError, OSError, ValueError):
        return None


def count(text: str) -> int:
    """Tokens in ``text``: cl100k_base where available, else ``ceil(len / 4)``."""
    enc = encoding()
    if enc is None:
        return math.ceil(len(text) / 4)
    # Text that looks like a special token is counted as ordinary text, never refused.
    return len(enc.encode(text, disallowed_special=()))


def estimate_tokens(messages: list[dict[str, str]], output: str) -> tuple[int, int]:
    """Estimated ``(input, output)`` tokens of a chat call.

    Args:
        messages: the rendered messages that were sent.
        output: the text that came back.
    """
    prompt = _REPLY_PRIMING + sum(
        _PER_MESSAGE + count(m.get("role", "")) + count(m.get("content") or "") for m in messages
    )
    return prompt, count(output)
