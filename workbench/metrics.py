"""The figures every run reports, defined once for every backend.

- ``ttft_ms``: from submitting the request to the first non-empty text chunk.
- ``e2e_ms``: from submitting the request to the last chunk.
- ``tpot_ms``: ``(e2e - ttft) / (output_tokens - 1)``, as vLLM and NVIDIA AIPerf define it.
- ``tokens_per_s``: decode rate, ``(output_tokens - 1) / (last chunk - first chunk)``.
- token counts come from the backend (usage or the model's tokenizer), never from
  counting chunks; ``tokens_estimated`` says when they were estimated.
- ``cost_usd`` with ``cost_source``: hosted models from a price list, local runs from a
  configured price per hour of the machine times the run's wall time; None when there
  is no price, never a silent 0.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Metrics:
    """What a run measured. None means unknown (no chunk arrived, no count, no price)."""

    ttft_ms: float | None = None
    e2e_ms: float | None = None
    tpot_ms: float | None = None
    tokens_per_s: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    tokens_estimated: bool = False
    cost_usd: float | None = None
    cost_source: str = "unknown"

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON output and storage."""
        return asdict(self)


def timing(
    submitted: float,
    first_chunk: float | None,
    last_chunk: float | None,
    output_tokens: int | None,
) -> dict[str, float | None]:
    """TTFT, E2E, TPOT and decode rate from clock readings in seconds."""
    if first_chunk is None or last_chunk is None:
        return {"ttft_ms": None, "e2e_ms": None, "tpot_ms": None, "tokens_per_s": None}
    ttft = (first_chunk - submitted) * 1000
    e2e = (last_chunk - submitted) * 1000
    tpot = tokens_per_s = None
    decode_s = last_chunk - first_chunk
    # With one token, or all text in one chunk, there is no decode interval to divide.
    if output_tokens is not None and output_tokens > 1 and decode_s > 0:
        tpot = (e2e - ttft) / (output_tokens - 1)
        tokens_per_s = (output_tokens - 1) / decode_s
    return {"ttft_ms": ttft, "e2e_ms": e2e, "tpot_ms": tpot, "tokens_per_s": tokens_per_s}


def hosted_cost(
    input_tokens: int | None,
    output_tokens: int | None,
    input_price: float | None,
    output_price: float | None,
    source: str,
) -> tuple[float | None, str]:
    """Cost from per-token prices; (None, "unknown") when a price or a count is missing."""
    if input_price is None or output_price is None:
        return None, "unknown"
    if input_tokens is None or output_tokens is None:
        return None, f"{source} (token counts unknown)"
    return input_tokens * input_price + output_tokens * output_price, source


def local_cost(wall_s: float, price_per_hour_usd: float | None) -> tuple[float | None, str]:
    """Cost of a local run: the machine's hourly price times the run's wall time."""
    if price_per_hour_usd is None:
        return None, "local; set local.price_per_hour_usd to cost local runs"
    return price_per_hour_usd * wall_s / 3600, f"local at ${price_per_hour_usd:g}/h of wall time"
