"""Templates: variables, typed errors with places, sandbox and limits, and a fuzz test."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from workbench import templates
from workbench.domain import Message
from workbench.templates import (
    Limits,
    RenderLimitError,
    TemplateError,
    TemplateSecurityError,
    TemplateSyntaxError,
    UndefinedVariableError,
)


def test_render_and_variables() -> None:
    source = "Hello {{ name }}!{% for item in items %} {{ item.title }}{% endfor %}"
    assert templates.variables(source) == {"name", "items"}
    out = templates.render(source, {"name": "Ada", "items": [{"title": "a"}, {"title": "b"}]})
    assert out == "Hello Ada! a b"


def test_values_are_not_markup_or_escaped() -> None:
    assert templates.render("{{ x }}", {"x": "[b]<i>&[/b]"}) == "[b]<i>&[/b]"


def test_undefined_variable_names_message_line_and_variable() -> None:
    messages = [Message(role="system", content="ok"), Message(role="user", content="a\nb {{ who }}")]
    with pytest.raises(UndefinedVariableError) as info:
        templates.render_messages(messages, {})
    err = info.value
    assert err.variable == "who"
    assert err.line == 2
    assert err.where == "message 2 (user)"
    assert str(err) == "message 2 (user), line 2: variable 'who' is undefined"


def test_defaults_fill_in_and_values_override() -> None:
    messages = [Message(role="user", content="{{ a }} {{ b }}")]
    out = templates.render_messages(messages, {"b": "given"}, {"a": "default", "b": "other"})
    assert out == [{"role": "user", "content": "default given"}]
    with pytest.raises(UndefinedVariableError):
        templates.render_messages(messages, {"b": 1}, {"a": None})  # None means required


def test_syntax_error_has_line() -> None:
    with pytest.raises(TemplateSyntaxError) as info:
        templates.render("line one\n{% if x %}\nno end", {"x": 1}, where="message 1 (system)")
    assert info.value.line is not None and info.value.line >= 2
    assert str(info.value).startswith("message 1 (system), line")


def test_unknown_filter_is_a_syntax_error() -> None:
    with pytest.raises(TemplateSyntaxError, match="No filter named 'nope'"):
        templates.render("{{ x | nope }}", {"x": 1})


def test_nul_bytes_refused() -> None:
    with pytest.raises(TemplateSyntaxError, match="NUL"):
        templates.compile_template("a\n\x00")


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__.os.system('touch PWNED') }}",
        "{{ self._TemplateReference__context }}",
        "{{ (1).__class__.__base__ }}",
        "{{ x.__globals__ }}",
    ],
)
def test_sandbox_blocks_python_internals(source: str, tmp_path: Path) -> None:
    os.chdir(tmp_path)
    with pytest.raises(TemplateError):
        templates.render(source, {"x": lambda: None})
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.parametrize(
    "source",
    [
        "{{ 'a' * 100000000 }}",
        "{{ 'x' | center(1000000000) }}",
        "{{ '%999999999d' % 1 }}",
        "{{ 2 ** 100000000 }}",
        "{% for i in range(100) %}{{ 'y' * 20000 }}{% endfor %}",
        # Each of these once allocated hundreds of MB (or ran for minutes) before a check.
        "{{ 'a'.ljust(300000000) }}",
        "{{ 'a'.center(300000000) }}",
        "{{ '{:>300000000}'.format(1) }}",
        "{{ '{:>{w}}'.format(1, w=300000000) }}",
        "{% set a = 'x' * 90000 %}{{ ([a] * 300) | join }}",
        "{{ ('x' * 90000) | replace('x', 'yyyyyyy') }}",
        "{{ ('x' * 90000).replace('x', 'yyyyyyy') }}",
        "{% set a = 'x' * 60000 %}{% set b = a ~ a %}{% set c = b ~ b %}{{ c | length }}",
        "{% set a = [1] %}" + "{% set a = [a, a] %}" * 40 + "{{ a }}",
        "{% set a = [1] %}" + "{% set a = [a, a] %}" * 40 + "{{ a | string | length }}",
        "{% set a = [1] %}" + "{% set a = [a, a] %}" * 40 + "{{ a | tojson | length }}",
        "{% set a = [1] %}" + "{% set a = [a, a] %}" * 40 + "{{ (a ~ '') | length }}",
        "{% set a = 9 ** 1024 %}{% set b = a ** 1024 %}{{ b ** 1024 > 1 }}",
        "{% set b = 9 ** 1024 %}" + "{% set b = b * b %}" * 30 + "{{ 1 }}",
        "{{ '%s%s' % ('x' * 90000, 'x' * 90000) }}",
    ],
)
def test_output_size_is_capped(source: str) -> None:
    with pytest.raises(TemplateError):
        templates.render(source, {}, limits=Limits(max_output_chars=100_000))


def test_render_time_is_capped() -> None:
    source = "{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}"
    started = time.monotonic()
    with pytest.raises(RenderLimitError, match="longer than 0.2 s"):
        templates.render(source, {}, limits=Limits(timeout_s=0.2))
    assert time.monotonic() - started < 10  # stopped, not run to completion


def test_runaway_recursion_is_an_error() -> None:
    with pytest.raises(RenderLimitError):
        templates.render("{% macro f() %}{{ f() }}{% endmacro %}{{ f() }}", {})


def test_security_error_is_typed() -> None:
    with pytest.raises(TemplateSecurityError):
        templates.render("{{ ''.__class__ }}", {})


# --- fuzz -------------------------------------------------------------------------------

FRAGMENTS = [
    "{{", "}}", "{%", "%}", "{#", "#}", "{{ x }}", "{{ y.z }}", "{% if x %}", "{% endif %}",
    "{% for i in items %}", "{% endfor %}", "{% raw %}", "{% endraw %}", "{% set a = 1 %}",
    "{{ a }}", "| upper", "|length", "[0]", "[/]", "[bold red]", "[/bold red]", "\x00",
    "\x1b[31m", "\x1b]8;;http://x\x07", "__class__", ".__globals__", ".__mro__",
    "__subclasses__()", "cycler.__init__", "lipsum", "range(10)", "range(99999999)",
    "'a' * 9999999", "(", ")", "'", '"', "\\", "\n", " ", "{{ missing }}", "{{ 1/0 }}",
    "{% macro m() %}", "{% endmacro %}", "{{ m() }}", "{% include 'x' %}", "{% extends 'y' %}",
    "{{ x|attr('__class__') }}", "{{ ''.format }}", "{% call m() %}", "{% endcall %}",
]

template_text = st.lists(
    st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=20)), max_size=30
).map("".join)
huge_text = st.integers(min_value=10_000, max_value=300_000).map(lambda n: "word " * n)


@settings(
    max_examples=1000,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(source=st.one_of(template_text, huge_text, template_text.map(lambda s: s * 200)))
def test_fuzz_every_template_renders_or_raises_a_typed_error(source: str) -> None:
    limits = Limits(max_output_chars=200_000, timeout_s=0.5, max_source_chars=1_000_000)
    values = {"x": "[0]", "y": {"z": "[/]"}, "items": [1, 2, 3]}
    try:
        out = templates.render(source, values, where="message 1 (user)", limits=limits)
    except TemplateError as exc:
        assert str(exc)  # every error has a message
        assert exc.where == "message 1 (user)"
    else:
        assert isinstance(out, str)
        assert len(out) <= limits.max_output_chars
    assert not Path("PWNED").exists()


@pytest.mark.parametrize(
    "source",
    [
        "{% for i in range(2) %}" * 30 + "{% endfor %}" * 30,
        "{% if 1 %}" * 200 + "{% endif %}" * 200,
    ],
)
def test_deep_nesting_is_a_typed_error(source: str) -> None:
    with pytest.raises(RenderLimitError, match="nested too deeply"):
        templates.render(source, {})


def test_ordinary_operations_still_work() -> None:
    source = (
        "{{ 'x' * 3 ~ 'y' }}|{{ [1, 2] | join(',') }}|{{ 'a-b'.replace('-', '+') }}|"
        "{{ '{:>4}'.format(7) }}|{{ '%05d' % 42 }}|{{ 2 ** 10 }}|{{ {'k': [1]} }}"
    )
    assert templates.render(source, {}) == "xxxy|1,2|a+b|   7|00042|1024|{'k': [1]}"


def test_compile_time_is_capped() -> None:
    with pytest.raises(RenderLimitError, match="compiling took longer"):
        templates.render("{{ a }}" * 20000, {"a": 1}, limits=Limits(compile_timeout_s=0.05))


def test_only_plain_expressions_skip_the_watchdog() -> None:
    assert templates.compile_template("Hi {{ name }}, {{ a.b[0] ~ 'x' }} {{ n * 2 if n else 0 }}").bounded
    for source in ("{{ name|upper }}", "{% for i in x %}{% endfor %}", "{{ range(3) }}",
                   "{{ name.upper() }}"):
        assert not templates.compile_template(source).bounded, source


def test_a_filter_chain_still_has_a_time_limit() -> None:
    slow = "{{ range(100000)|map('string')|map('center', 1000)|join|length }}"
    with pytest.raises(templates.RenderLimitError, match="longer than 0.05 s"):
        templates.render(slow, {}, limits=templates.Limits(timeout_s=0.05))
