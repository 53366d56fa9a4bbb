"""Checked dataclasses for the settings, without pydantic.

The settings are read at every start, before the first screen; pydantic and its schema
building were a fifth of the app's start-up. The few value kinds settings use are
checked here the way pydantic checks them in its lax mode (``"10"`` is a number from an
environment variable; ``true`` is not), with pydantic's wording, every problem at once.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, Field, field, fields, is_dataclass
from typing import Any

class Invalid(Exception):
    """Values that do not fit: ``(location, message)`` pairs, location dotted."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{where}: {what}" for where, what in problems))
        self.problems = problems


def setting(kind: Any, default: Any = MISSING, *, factory: Any = MISSING,
            optional: bool = False, gt: float | None = None, ge: float | None = None,
            le: float | None = None, min_length: int | None = None,
            max_length: int | None = None) -> Any:
    """A dataclass field with what :func:`build` checks: ``kind`` is ``"str"``, ``"int"``,
    ``"float"``, ``"dict"`` (string keys, any values), a section (a dataclass) or
    ``("map", SECTION)`` (names to sections); ``optional`` lets it be None."""
    meta = {"kind": kind, "optional": optional, "gt": gt, "ge": ge, "le": le,
            "min_length": min_length, "max_length": max_length}
    if factory is not MISSING:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def build(cls: type, data: Any, where: str = "") -> Any:
    """An instance of the section ``cls`` from ``data`` (a mapping), every value checked.

    Raises:
        Invalid: every problem found, each with its location.
    """
    problems: list[tuple[str, str]] = []
    value = _section(cls, data, where, problems)
    if problems:
        raise Invalid(problems)
    return value


def dump(section: Any, exclude_defaults: bool = False) -> dict[str, Any]:
    """The section as plain data (nested sections as dicts)."""
    data: dict[str, Any] = {}
    for spec in fields(section):
        value = getattr(section, spec.name)
        if exclude_defaults and value == _default(spec):
            continue
        if is_dataclass(value):
            value = dump(value, exclude_defaults)
        elif isinstance(value, dict):
            value = {k: dump(v, exclude_defaults) if is_dataclass(v) else v
                     for k, v in value.items()}
        data[spec.name] = value
    return data


def _default(spec: Field[Any]) -> Any:
    if spec.default is not MISSING:
        return spec.default
    if spec.default_factory is not MISSING:
        return spec.default_factory()
    return MISSING


def _at(where: str, name: str) -> str:
    return f"{where}.{name}" if where else name


def _section(cls: type, data: Any, where: str, problems: list[tuple[str, str]]) -> Any:
    if is_dataclass(data) and isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        problems.append((where or cls.__name__,
                         f"Input should be a valid dictionary or instance of {cls.__name__}"))
        return None
    start = len(problems)
    known = {spec.name: spec for spec in fields(cls)}
    for key in data:
        if key not in known:
            problems.append((_at(where, str(key)), "Extra inputs are not permitted"))
    values: dict[str, Any] = {}
    for name, spec in known.items():
        if name in data:
            values[name] = _value(spec.metadata, data[name], _at(where, name), problems)
        elif spec.default is MISSING and spec.default_factory is MISSING:
            problems.append((_at(where, name), "Field required"))
    return cls(**values) if len(problems) == start else None


def _value(meta: Any, value: Any, where: str, problems: list[tuple[str, str]]) -> Any:
    kind = meta["kind"]
    if value is None and meta["optional"]:
        return None
    if isinstance(kind, tuple):  # ("map", SECTION)
        if not isinstance(value, dict):
            problems.append((where, "Input should be a valid dictionary"))
            return None
        return {str(k): _section(kind[1], v, _at(where, str(k)), problems)
                for k, v in value.items()}
    if is_dataclass(kind):
        return _section(kind, value, where, problems)
    checked = _scalar(kind, value)
    if isinstance(checked, _Problem):
        problems.append((where, checked.message))
        return None
    for problem in _limits(meta, checked):
        problems.append((where, problem))
    return checked


class _Problem:
    def __init__(self, message: str):
        self.message = message


def _scalar(kind: str, value: Any) -> Any:
    if kind == "str":
        return value if isinstance(value, str) else _Problem("Input should be a valid string")
    if kind == "dict":
        return value if isinstance(value, dict) else _Problem("Input should be a valid dictionary")
    if isinstance(value, bool):
        return _Problem(f"Input should be a valid {'integer' if kind == 'int' else 'number'}")
    if kind == "float":
        try:
            number = float(value.strip()) if isinstance(value, str) else value
        except ValueError:
            number = None
        if not isinstance(number, (int, float)):
            return _Problem("Input should be a valid number, unable to parse string as a number"
                            if isinstance(value, str) else "Input should be a valid number")
        if not math.isfinite(number):
            return _Problem("Input should be a finite number")
        return float(number)
    if kind == "int":
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                return _Problem("Input should be a valid integer, unable to parse string as an "
                                "integer")
        return value if isinstance(value, int) else _Problem("Input should be a valid integer")
    raise TypeError(f"unknown setting kind {kind!r}")


def _limits(meta: Any, value: Any) -> list[str]:
    found = []
    if meta["gt"] is not None and not value > meta["gt"]:
        found.append(f"Input should be greater than {meta['gt']}")
    if meta["ge"] is not None and not value >= meta["ge"]:
        found.append(f"Input should be greater than or equal to {meta['ge']}")
    if meta["le"] is not None and not value <= meta["le"]:
        found.append(f"Input should be less than or equal to {meta['le']}")
    if meta["min_length"] is not None and len(value) < meta["min_length"]:
        found.append(f"String should have at least {meta['min_length']} character"
                     + ("s" if meta["min_length"] != 1 else ""))
    if meta["max_length"] is not None and len(value) > meta["max_length"]:
        found.append(f"String should have at most {meta['max_length']} characters")
    return found
