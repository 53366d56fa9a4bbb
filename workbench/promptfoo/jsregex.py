"""JavaScript regular expressions (``new RegExp(pattern)``), translated to Python's re,
and promptfoo's splitting of ``contains-any``/``contains-all`` strings."""

from __future__ import annotations

import functools
import re
import warnings

from workbench.promptfoo.js import JS_SPACE_CLASS, js_trim


class RegexTranslationError(ValueError):
    """A JavaScript pattern that Python cannot match the same way (or that is invalid)."""


_JS_DOT = r"[^\n\r\u2028\u2029]"
_QUANTIFIER = re.compile(r"\{[0-9]+(?:,[0-9]*)?\}")
_HEX = "0123456789abcdefABCDEF"
_SET_LETTERS = "dDwWsS"


def js_regex(pattern: str) -> re.Pattern[str]:
    """Compile ``new RegExp(pattern)`` (no flags) as an equivalent Python pattern.

    JavaScript's semantics are kept: ``$`` matches only at the very end (not before a
    final newline), ``.`` stops at ``\\r`` and ``\\u2028`` too, ``\\d``/``\\w``/``\\b`` are
    ASCII, ``\\s`` is JavaScript's whitespace, ``(?<name>...)`` is a named group, ``[]``
    matches nothing and ``[^]`` anything, and escapes such as ``\\A`` or ``\\Z`` mean the
    letter itself. Backreferences, inline flags and variable-width look-behinds are
    refused.

    Raises:
        RegexTranslationError: invalid in JavaScript, or not translatable.
    """
    translated = _Translator(pattern).run()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            return re.compile(translated, re.ASCII)
        except re.error as exc:
            if "look-behind" in str(exc):
                raise RegexTranslationError(
                    "a look-behind must have a fixed width in Python"
                ) from None
            raise RegexTranslationError(f"invalid regular expression: {exc}") from None


class _Translator:
    """One pass over a JavaScript pattern (non-Unicode mode, Annex B syntax)."""

    def __init__(self, pattern: str):
        self.p = pattern
        self.i = 0
        self.out: list[str] = []

    def run(self) -> str:
        p = self.p
        while self.i < len(p):
            c = p[self.i]
            if c == "\\":
                self.out.append(self.escape(in_class=False))
            elif c == "[":
                self.out.append(self.char_class())
            elif c == "(":
                self.out.append(self.group())
            elif c == ".":
                self.out.append(_JS_DOT)
                self.i += 1
            elif c == "$":
                self.out.append(r"\Z")
                self.i += 1
            elif c == "{" and (m := _QUANTIFIER.match(p, self.i)):
                self.out.append(m.group(0))
                self.i = m.end()
                self.after_quantifier()
            elif c in "{}]":  # not a quantifier: JavaScript reads them as themselves
                self.out.append("\\" + c)
                self.i += 1
            elif c in "*+?":
                self.out.append(c)
                self.i += 1
                self.after_quantifier()
            else:
                if ord(c) > 0xFFFF and p[self.i + 1 : self.i + 2] in ("*", "+", "?", "{"):
                    raise RegexTranslationError(
                        f"a quantifier after {c!r}: JavaScript repeats only half of it"
                    )
                self.out.append(c)
                self.i += 1
        return "".join(self.out)

    def after_quantifier(self) -> None:
        if self.p[self.i : self.i + 1] == "?":
            self.out.append("?")
            self.i += 1
        if self.p[self.i : self.i + 1] == "+":
            raise RegexTranslationError("nothing to repeat (JavaScript has no possessive '+')")

    def group(self) -> str:
        p, i = self.p, self.i
        if not p.startswith("(?", i):
            self.i += 1
            return "("
        for opening in ("(?:", "(?=", "(?!", "(?<=", "(?<!"):
            if p.startswith(opening, i):
                self.i += len(opening)
                return opening
        if p.startswith("(?<", i):
            end = p.find(">", i + 3)
            name = p[i + 3 : end] if end != -1 else ""
            if not name.isidentifier():
                raise RegexTranslationError(f"invalid group name in {p[i : end + 1 or None]!r}")
            self.i = end + 1
            return f"(?P<{name}>"
        raise RegexTranslationError(
            f"{p[i : i + 3]!r} is not JavaScript syntax (no inline flags, atomic groups, "
            "comments or conditionals)"
        )

    def escape(self, *, in_class: bool) -> str:
        """The escape at ``self.i`` (a backslash), as Python pattern text."""
        p, i = self.p, self.i
        if i + 1 >= len(p):
            raise RegexTranslationError("the pattern ends with a backslash")
        e, self.i = p[i + 1], i + 2
        if e in "dDwW" or e in "tnvfr" or (e in "bB" and not in_class):
            return "\\" + e
        if e == "s":
            return JS_SPACE_CLASS if in_class else f"[{JS_SPACE_CLASS}]"
        if e == "S":
            return f"[^{JS_SPACE_CLASS}]"
        if e == "b":  # in a class: backspace
            return r"\x08"
        if e == "0" and not p[self.i : self.i + 1].isdigit():
            return r"\x00"
        if e.isdigit():
            raise RegexTranslationError(
                f"'\\{e}': backreferences and octal escapes are not supported"
            )
        if e == "k" and p[self.i : self.i + 1] == "<":
            raise RegexTranslationError("named backreferences (\\k<name>) are not supported")
        if e == "c":
            letter = p[self.i : self.i + 1]
            if letter.isascii() and (
                letter.isalpha() or (in_class and (letter.isdigit() or letter == "_"))
            ):
                self.i += 1
                return f"\\x{ord(letter) % 32:02x}"
            self.i = i + 1  # a backslash as itself; the 'c' is read next
            return r"\\"
        if e == "x" and len(h := p[self.i : self.i + 2]) == 2 and all(ch in _HEX for ch in h):
            self.i += 2
            return "\\x" + h
        if e == "u" and len(h := p[self.i : self.i + 4]) == 4 and all(ch in _HEX for ch in h):
            if 0xD800 <= int(h, 16) <= 0xDFFF:
                raise RegexTranslationError(
                    f"'\\u{h}': surrogate code units have no Python equivalent"
                )
            self.i += 4
            return "\\u" + h
        if ord(e) > 0xFFFF:
            raise RegexTranslationError(f"{e!r} after a backslash: JavaScript escapes half of it")
        return re.escape(e)  # Annex B: any other escaped character is itself

    def char_class(self) -> str:
        p = self.p
        self.i += 1
        negate = p[self.i : self.i + 1] == "^"
        self.i += negate
        items: list[str] = []
        any_nonspace = False  # \S inside a class
        after_set = False  # the previous item was a set such as \d
        while True:
            if self.i >= len(p):
                raise RegexTranslationError("unterminated character class")
            c = p[self.i]
            if c == "]":
                self.i += 1
                break
            if c == "\\":
                letter = p[self.i + 1 : self.i + 2]
                if letter == "S":
                    any_nonspace, after_set = True, True
                    self.i += 2
                    continue
                is_set = letter != "" and letter in _SET_LETTERS
                if is_set and items and items[-1] == "-" and len(items) > 1:
                    items[-1] = r"\-"  # x-\d: JavaScript reads the dash as itself
                items.append(self.escape(in_class=True))
                after_set = is_set
                continue
            if c == "-":
                # A dash beside a set (\d-x) or after a range's dash is literal.
                next_is_set = p[self.i + 1 : self.i + 2] == "\\" and p[self.i + 2 : self.i + 3] in (
                    tuple(_SET_LETTERS)
                )
                literal = after_set or next_is_set or (items[-1:] == ["-"])
                items.append(r"\-" if literal else "-")
            elif c in "[&~|^":
                items.append("\\" + c)
            elif ord(c) > 0xFFFF:
                raise RegexTranslationError(
                    f"{c!r} in a character class: JavaScript sees two halves of it"
                )
            else:
                items.append(c)
            after_set = False
            self.i += 1
        body = "".join(items)
        if any_nonspace:
            if negate:
                return f"(?:(?![{body}])[{JS_SPACE_CLASS}])" if body else f"[{JS_SPACE_CLASS}]"
            return f"(?:[^{JS_SPACE_CLASS}]|[{body}])" if body else f"[^{JS_SPACE_CLASS}]"
        if not body:
            return r"[\s\S]" if negate else r"[^\s\S]"
        return f"[{'^' if negate else ''}{body}]"


@functools.cache
def _list_splitter() -> re.Pattern[str]:
    # promptfoo's own split of a contains-any string, in JavaScript syntax.
    return js_regex(r'(".*?"|[^,]+)(?=\s*,|\s*$)')


def split_any(value: str) -> list[str]:
    """How ``contains-any`` splits a string: at commas, but not inside ``"quotes"``."""
    return [re.sub(r'^"|"\Z', "", js_trim(m.group(0))) for m in _list_splitter().finditer(value)]


def split_all(value: str) -> list[str]:
    """How ``contains-all`` and the ``icontains-`` forms split a string: at every comma."""
    return [js_trim(part) for part in value.split(",")]
