"""JavaScript's view of values, as promptfoo (Node) sees them: ``String(value)``,
``trim``, ``JSON.parse``, deep equality, ``typeof`` number and ``parseFloat``."""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal
from typing import Any

#: JavaScript's whitespace and line terminators (``\s``, ``String.prototype.trim``).
JS_WHITESPACE = "".join(
    chr(c)
    for c in (
        9,
        10,
        11,
        12,
        13,
        32,
        0xA0,
        0x1680,
        *range(0x2000, 0x200B),
        0x2028,
        0x2029,
        0x202F,
        0x205F,
        0x3000,
        0xFEFF,
    )
)
JS_SPACE_CLASS = r"\t\n\x0b\x0c\r \xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff"


def js_trim(text: str) -> str:
    """``String.prototype.trim``: JavaScript's whitespace (not Python's ``str.strip``)."""
    return text.strip(JS_WHITESPACE)


def js_string(value: Any) -> str:
    """``String(value)`` as JavaScript writes it (``true``, ``1``, ``1e+21``, ``a,b``)."""
    if isinstance(value, str):
        return value
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _js_number(value)
    if isinstance(value, list | tuple):
        return ",".join("" if item is None else js_string(item) for item in value)
    return "[object Object]"


def _js_number(number: float) -> str:
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    if number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    text = repr(number)
    if "e" not in text:
        return text
    mantissa, exponent = text.split("e")
    power = int(exponent)
    if -7 < power < 21:  # JavaScript writes these positionally
        return format(Decimal(text), "f")
    return f"{mantissa}e{'+' if power > 0 else '-'}{abs(power)}"


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def json_parse(text: str) -> Any:
    """``JSON.parse``: strict JSON (no ``NaN`` or ``Infinity``).

    Raises:
        ValueError: the text is not JSON.
    """
    return json.loads(text, parse_constant=_no_constants)


def js_equal(a: Any, b: Any) -> bool:
    """Node's ``util.isDeepStrictEqual`` for JSON data (``true`` is not ``1``)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, int | float) and isinstance(b, int | float):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(js_equal(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(js_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def is_number(value: Any) -> bool:
    """``typeof value === "number"``: an int or a float, not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)


_FLOAT_PREFIX = re.compile(r"[+-]?(?:Infinity|(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?)")


def js_parse_float(text: str) -> float:
    """``parseFloat``: the number the text starts with (after whitespace), else NaN."""
    match = _FLOAT_PREFIX.match(text.lstrip(JS_WHITESPACE))
    return float(match.group(0).replace("Infinity", "inf")) if match else math.nan
