"""Jinja2 templates for chat messages, rendered in a sandbox with limits.

Every failure is a :class:`TemplateError` naming where it happened (which message,
which line) and what went wrong (the missing variable, the bad syntax), so the CLI
and the app can show it as is. Undefined variables are errors, never empty strings.

Limits: the sandbox blocks access to Python internals; output is capped in size;
compiling and rendering run under a watchdog that stops them after a time limit;
operators (``*``, ``**``, ``+``, ``%``, ``~``), string methods and the filters that
pad, join, replace or stringify refuse results larger than the output cap before
allocating them, and integers past 65,536 bits (whose arithmetic runs in C, where
the watchdog cannot reach) are refused.
"""

from __future__ import annotations

import ctypes
import functools
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Any, TypeVar

import jinja2
from jinja2 import meta, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.sandbox import SandboxedEnvironment, SecurityError

from workbench.errors import ValidationError

T = TypeVar("T")

_TEMPLATE_FILENAME = "<template>"


@dataclass(frozen=True)
class Limits:
    """Caps on one render."""

    max_source_chars: int = 500_000
    max_output_chars: int = 1_000_000
    timeout_s: float = 2.0
    compile_timeout_s: float = 5.0


DEFAULT_LIMITS = Limits()


class TemplateError(ValidationError):
    """A template cannot be compiled or rendered.

    Attributes:
        where: which template, e.g. ``message 2 (user)``; None when unknown.
        line: the line within the template, 1-based; None when unknown.
        detail: what went wrong.
    """

    def __init__(self, detail: str, *, where: str | None = None, line: int | None = None):
        self.detail = detail
        self.where = where
        self.line = line
        super().__init__(self._text())

    def _text(self) -> str:
        place = ", ".join(
            p for p in (self.where, f"line {self.line}" if self.line else None) if p
        )
        return f"{place}: {self.detail}" if place else self.detail

    def located(self, where: str) -> TemplateError:
        """This error with ``where`` filled in (when it was not known yet)."""
        if self.where is None:
            self.where = where
            self.args = (self._text(),)
        return self


class TemplateSyntaxError(TemplateError):
    """The template does not parse, or uses an unknown filter or test."""


class UndefinedVariableError(TemplateError):
    """A variable (or an attribute or key of one) the template needs has no value.

    Attributes:
        variable: the name that was missing.
    """

    def __init__(
        self, detail: str, *, variable: str, where: str | None = None, line: int | None = None
    ):
        self.variable = variable
        super().__init__(detail, where=where, line=line)


class TemplateSecurityError(TemplateError):
    """The template tried to reach something the sandbox forbids."""


class RenderLimitError(TemplateError):
    """The template or its output is too large, or rendering took too long."""


class TemplateRenderError(TemplateError):
    """Any other failure while evaluating the template (a type error, division by zero)."""


class _Interrupted(BaseException):
    """Raised inside a render thread by the watchdog; never escapes this module."""


_INT_BITS = 64 * 1024  # integers past this many bits cost real CPU in C, uninterruptibly


class _Generator(CodeGenerator):
    """Jinja's code generator, with ``~`` routed through a size check."""

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.checked_concat((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(SandboxedEnvironment):
    """Jinja's sandbox, plus checks that refuse results larger than the output cap
    before they are allocated: operators, ``~``, string methods and the filters that
    pad, join, replace or stringify."""

    code_generator_class = _Generator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, max_chars: int):
        super().__init__(
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            finalize=self._finalize,
        )
        self.max_chars = max_chars
        del self.globals["lipsum"]  # generates text on demand; nothing a prompt needs
        for name in ("center", "indent", "wordwrap", "truncate"):
            self.filters[name] = _width_checked(self.filters[name], max_chars)
        for name in ("string", "tojson", "pprint", "join", "list"):
            self.filters[name] = self._value_checked(self.filters[name])
        self.filters["format"] = self._checked_format(self.filters["format"])
        self.filters["replace"] = self._checked_replace(self.filters["replace"])

    def _refuse_if_large(self, *values: Any, extra: int = 0) -> None:
        if _size_exceeds(values, self.max_chars - extra):
            raise SecurityError("the result would be larger than the output limit")

    def _finalize(self, value: Any) -> Any:
        if not isinstance(value, str):
            self._refuse_if_large(value)
        return value

    def checked_concat(self, parts: tuple[Any, ...]) -> str:
        """What ``a ~ b`` compiles to: the parts joined, if the result fits."""
        self._refuse_if_large(*parts)
        return "".join(str(p) for p in parts)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        ints = isinstance(left, int) and isinstance(right, int)
        if operator == "*":
            if ints and left.bit_length() + right.bit_length() > _INT_BITS:
                raise SecurityError("integer result too large")
            for seq, times in ((left, right), (right, left)):
                if hasattr(seq, "__len__") and isinstance(times, int) and times > 0:
                    if _size_exceeds(seq, self.max_chars // times):
                        raise SecurityError("repetition result is larger than the output limit")
        elif operator == "**":
            if ints and right > 0 and abs(left) > 1 and left.bit_length() * right > _INT_BITS:
                raise SecurityError("integer result too large")
        elif operator == "+" and not ints:
            self._refuse_if_large(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf_widths(left, self.max_chars)
            self._refuse_if_large(left, right)
        return super().call_binop(context, operator, left, right)

    def call(self, context: Any, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        owner = getattr(obj, "__self__", None)
        if isinstance(owner, str | bytes | list | tuple | dict):
            self._check_method(owner, getattr(obj, "__name__", ""), args, kwargs)
        return super().call(context, obj, *args, **kwargs)

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        # Jinja hands templates a wrapper for str.format at attribute access; check it too.
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        owner, name = value.__self__, value.__name__

        def checked(*args: Any, **kwargs: Any) -> str:
            self._check_method(owner, name, args, kwargs)
            return wrapped(*args, **kwargs)

        return checked

    def _check_method(self, owner: Any, name: str, args: tuple, kwargs: dict) -> None:
        values = (*args, *kwargs.values())
        for value in values:
            if isinstance(value, int) and not isinstance(value, bool) and value > self.max_chars:
                raise SecurityError(f"{name}: argument larger than the output limit")
        if isinstance(owner, str):
            if name in ("format", "format_map"):
                _check_printf_widths(owner, self.max_chars, brace=True)
                self._refuse_if_large(owner, *values)
            elif name == "join":
                self._refuse_if_large(*values, extra=len(owner) * _length(values[0] if values else ()))
            elif name == "replace" and len(args) >= 2:
                self._check_replace(owner, args[0], args[1])

    def _check_replace(self, text: Any, old: Any, new: Any) -> None:
        if isinstance(text, str) and isinstance(old, str) and isinstance(new, str):
            count = text.count(old) if old else len(text) + 1
            if len(text) + count * max(len(new) - len(old), 0) > self.max_chars:
                raise SecurityError("replace: the result would be larger than the output limit")

    def _value_checked(self, original: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(original)
        def checked(*args: Any, **kwargs: Any) -> Any:
            self._refuse_if_large(*args[-2:], *kwargs.values())
            return original(*args, **kwargs)

        return checked

    def _checked_format(self, original: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(original)
        def checked(value: str, *args: Any, **kwargs: Any) -> str:
            _check_printf_widths(str(value), self.max_chars)
            self._refuse_if_large(value, args, kwargs)
            return original(value, *args, **kwargs)

        return checked

    def _checked_replace(self, original: Callable[..., str]) -> Callable[..., str]:
        @functools.wraps(original)
        def checked(eval_ctx: Any, text: Any, old: Any, new: Any, *rest: Any) -> str:
            self._check_replace(str(text), str(old), str(new))
            return original(eval_ctx, text, old, new, *rest)

        return checked


def _length(value: Any) -> int:
    try:
        return len(value)
    except TypeError:
        return 0


def _size_exceeds(value: Any, limit: int) -> bool:
    """Whether ``str(value)`` could be longer than ``limit``, found without building it.

    Every node visited counts at least one character, so the walk stops after at most
    ``limit`` steps even on structures that share themselves exponentially.
    """
    budget = limit
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str | bytes):
            budget -= len(item)
        elif isinstance(item, dict):
            budget -= 2 + 4 * len(item)
            if budget >= 0:
                stack.extend(item.keys())
                stack.extend(item.values())
        elif isinstance(item, list | tuple | set | frozenset):
            budget -= 2 + 2 * len(item)
            if budget >= 0:
                stack.extend(item)
        elif isinstance(item, int) and not isinstance(item, bool):
            budget -= 1 + item.bit_length() // 3  # decimal digits, roughly
        else:
            budget -= 1
        if budget < 0:
            return True
    return False


_PRINTF_WIDTH = re.compile(r"%(?:\([^)]*\))?[-+ #0]*(\*|\d+)?(?:\.(\*|\d+))?")
_BRACE_NUMBER = re.compile(r"\{[^{}]*?(\d{7,})[^{}]*\}")


def _check_printf_widths(fmt: str, max_chars: int, brace: bool = False) -> None:
    for width, precision in _PRINTF_WIDTH.findall(fmt):
        for number in (width, precision):
            if number == "*" or (number and int(number) > max_chars):
                raise SecurityError("format width larger than the output limit")
    if brace:
        for number in _BRACE_NUMBER.findall(fmt):
            if int(number) > max_chars:
                raise SecurityError("format width larger than the output limit")


def _width_checked(filter_func: Callable[..., Any], max_chars: int) -> Callable[..., Any]:
    @functools.wraps(filter_func)
    def checked(*args: Any, **kwargs: Any) -> Any:
        for value in (*args[1:], *kwargs.values()):
            if isinstance(value, int) and not isinstance(value, bool) and value > max_chars:
                raise SecurityError("width larger than the output limit")
        return filter_func(*args, **kwargs)

    return checked


@dataclass(frozen=True)
class _Compiled:
    template: jinja2.Template
    variables: frozenset[str]
    bounded: bool = False
    """Only names, constants, item access and size-checked operators: no loop, no call,
    no filter, so rendering is quick and needs no watchdog thread."""


# Node types whose evaluation is bounded by the size of the data (operators are
# size-checked by the sandbox). Anything else (loops, macros, calls, filters) renders
# under the watchdog.
_BOUNDED_NODES = (
    nodes.Output, nodes.TemplateData, nodes.Name, nodes.Const, nodes.Getattr, nodes.Getitem,
    nodes.Slice, nodes.Concat, nodes.BinExpr, nodes.UnaryExpr, nodes.Compare, nodes.Operand,
    nodes.CondExpr, nodes.Tuple, nodes.List, nodes.Dict, nodes.Pair,
)
_CACHE: dict[tuple[str, int], _Compiled] = {}
_CACHE_SIZE = 512


@functools.cache
def _environment(max_chars: int) -> _Sandbox:
    return _Sandbox(max_chars)


def _compile(source: str, max_chars: int) -> _Compiled:
    env = _environment(max_chars)
    ast = env.parse(source)
    template = env.from_string(ast)
    bounded = all(isinstance(node, _BOUNDED_NODES) for node in ast.find_all(nodes.Node))
    return _Compiled(template, frozenset(meta.find_undeclared_variables(ast)), bounded)


def compile_template(
    source: str, *, where: str | None = None, limits: Limits = DEFAULT_LIMITS
) -> _Compiled:
    """Check and compile a template (cached by source).

    Raises:
        TemplateError: NUL bytes, an oversized source, or a syntax error (with its line).
    """
    if "\x00" in source:
        line = source.count("\n", 0, source.index("\x00")) + 1
        raise TemplateSyntaxError(
            "contains a NUL byte (\\x00), which cannot be stored", where=where, line=line
        )
    if len(source) > limits.max_source_chars:
        raise RenderLimitError(
            f"template is {len(source):,} characters; the limit is {limits.max_source_chars:,}",
            where=where,
        )
    key = (source, limits.max_output_chars)
    found = _CACHE.get(key)
    if found is not None:
        return found
    try:
        compiled = _with_watchdog(
            lambda: _compile(source, limits.max_output_chars), limits.compile_timeout_s
        )
    except jinja2.TemplateSyntaxError as exc:  # includes unknown filters and tests
        raise TemplateSyntaxError(exc.message or str(exc), where=where, line=exc.lineno) from None
    except (RecursionError, SyntaxError, MemoryError):
        # Python itself refuses code nested this deeply ("too many statically nested blocks").
        raise RenderLimitError("template is nested too deeply", where=where) from None
    except _Interrupted:
        raise RenderLimitError(
            f"compiling took longer than {limits.compile_timeout_s:g} s", where=where
        ) from None
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))  # the oldest
    _CACHE[key] = compiled
    return compiled


def variables(source: str) -> set[str]:
    """The names a template reads from its context (loop variables and ``set`` excluded).

    Raises:
        TemplateError: the template does not compile.
    """
    return set(compile_template(source).variables)


def render(
    source: str,
    values: Mapping[str, Any],
    *,
    where: str | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> str:
    """Render one template.

    Raises:
        TemplateError: a typed subclass for every way it can fail; nothing else escapes.
    """
    compiled = compile_template(source, where=where, limits=limits)

    def run() -> str:
        parts: list[str] = []
        size = 0
        for chunk in compiled.template.generate(dict(values)):
            size += len(chunk)
            if size > limits.max_output_chars:
                raise RenderLimitError(
                    f"output is longer than {limits.max_output_chars:,} characters"
                )
            parts.append(chunk)
        return "".join(parts)

    try:
        if compiled.bounded:
            return run()  # quick by construction: a watchdog thread costs ~0.2 ms
        return _with_watchdog(run, limits.timeout_s)
    except _Interrupted:
        raise RenderLimitError(
            f"rendering took longer than {limits.timeout_s:g} s", where=where
        ) from None
    except TemplateError as exc:
        raise exc.located(where) if where else exc from None
    except Exception as exc:  # every other failure becomes a typed error with its line
        raise _translate(exc, where) from None


def _translate(exc: Exception, where: str | None) -> TemplateError:
    line = _template_line(exc.__traceback__)
    if isinstance(exc, jinja2.UndefinedError):
        message = exc.message or str(exc)
        match = re.match(r"'([^']*)' is undefined", message)
        variable = match.group(1) if match else message
        detail = f"variable {variable!r} is undefined" if match else message
        return UndefinedVariableError(detail, variable=variable, where=where, line=line)
    if isinstance(exc, SecurityError):
        return TemplateSecurityError(f"not allowed: {exc}", where=where, line=line)
    if isinstance(exc, jinja2.TemplateSyntaxError):
        return TemplateSyntaxError(exc.message or str(exc), where=where, line=exc.lineno)
    if isinstance(exc, RecursionError | MemoryError | OverflowError):
        return RenderLimitError(f"too large to render ({type(exc).__name__})", where=where)
    return TemplateRenderError(f"{type(exc).__name__}: {exc}", where=where, line=line)


def _template_line(tb: TracebackType | None) -> int | None:
    # Jinja rewrites tracebacks so template frames carry the template's own line numbers.
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == _TEMPLATE_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _with_watchdog(func: Callable[[], T], timeout_s: float) -> T:
    """Run ``func`` in a thread; past ``timeout_s`` raise :class:`_Interrupted` inside it.

    Rendered templates are pure Python bytecode, so an asynchronous exception stops a
    runaway loop at its next instruction.
    """
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = func()
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target, name="workbench-render", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive() and thread.ident is not None:
        ctypes.pythonapi.PyThreadState_SetAsyncExc(
            ctypes.c_ulong(thread.ident), ctypes.py_object(_Interrupted)
        )
        thread.join(5.0)  # a thread stuck inside C code is left behind (daemon)
        raise _Interrupted
    if "error" in box:
        raise box["error"]
    return box["value"]


def render_messages(
    messages: Sequence[Any],
    values: Mapping[str, Any],
    defaults: Mapping[str, Any] | None = None,
    *,
    limits: Limits = DEFAULT_LIMITS,
) -> list[dict[str, str]]:
    """Render chat messages (objects with ``role`` and ``content``).

    ``defaults`` are the declared variables; a default of None means the variable is
    required. ``values`` override defaults.
    """
    context = {k: v for k, v in (defaults or {}).items() if v is not None}
    context.update(values)
    return [
        {
            "role": m.role,
            "content": render(m.content, context, where=message_label(i, m.role), limits=limits),
        }
        for i, m in enumerate(messages)
    ]


def message_label(index: int, role: str) -> str:
    """How errors name a message: ``message 2 (user)`` for index 1."""
    return f"message {index + 1} ({role})"
