"""Prices per token of hosted models, from the price list litellm ships in its package.

Read from ``model_prices_and_context_window_backup.json`` inside the installed litellm,
without importing litellm (seconds, and a network fetch unless told otherwise). A model
that is not listed has an unknown price, never a price of 0.
"""

from __future__ import annotations

import functools
import importlib.util
import json
from pathlib import Path
from typing import Any

PRICE_FILE = "model_prices_and_context_window_backup.json"
SOURCE = "litellm-bundled-prices"
UNKNOWN = "unknown"


@functools.cache
def bundled_prices() -> dict[str, Any]:
    """litellm's bundled price list (model id to facts); empty when litellm is missing."""
    spec = importlib.util.find_spec("litellm")
    for folder in (spec.submodule_search_locations or []) if spec else []:
        path = Path(folder) / PRICE_FILE
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            return data if isinstance(data, dict) else {}
    return {}


def _cost(entry: dict[str, Any], key: str) -> float | None:
    value = entry.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def price_for(model_id: str) -> tuple[float | None, float | None, str]:
    """Cost per input token, cost per output token, and where they came from.

    The id is looked up as given (``openai/gpt-4o-mini``), then without its provider
    prefix (``gpt-4o-mini``).

    Returns:
        ``(input, output, "litellm-bundled-prices")`` for a listed model (a price the list
        lacks is None), else ``(None, None, "unknown")``.
    """
    prices = bundled_prices()
    candidates = [model_id]
    if "/" in model_id:
        candidates.append(model_id.split("/", 1)[1])
    for candidate in candidates:
        entry = prices.get(candidate)
        if isinstance(entry, dict) and candidate != "sample_spec":
            costs = _cost(entry, "input_cost_per_token"), _cost(entry, "output_cost_per_token")
            return *costs, SOURCE
    return None, None, UNKNOWN
