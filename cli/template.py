"""kubectl's JSONPath templates (``-o jsonpath``, ``--sort-by``, ``-o custom-columns``).

Paths are evaluated by python-jsonpath (RFC 9535 with extensions); what kubectl adds
around them is here: the template language (literal text, ``{path}`` actions,
``{"\\n"}`` string literals, ``{range path}...{end}``), paths written without ``$``
and relative to the current object, dotted names with escaped dots
(``.metadata.labels.app\\.kubernetes\\.io/name``), and kubectl's way of printing a
result (strings bare, maps and lists as JSON, several results separated by a space).

Every template is compiled before the command talks to the server, so a bad one is a
one-line error (exit 2) and costs no round trip. This module imports the library, so only
the commands that print or sort through a path import it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import jsonpath

from cli.terminal import safe
from registry.errors import InvalidInput

__all__ = [
    "Path",
    "Template",
    "compile_path",
    "relaxed_path",
    "sort_key",
    "text_of",
]


class _Environment(jsonpath.JSONPathEnvironment):
    """python-jsonpath without regular expressions (``=~``, ``match()``, ``search()``):
    Python's engine backtracks, so their cost over text a writer chose (an actor, a
    label) could be exponential; kubectl's JSONPath has none either."""

    def setup_function_extensions(self) -> None:
        super().setup_function_extensions()
        for name in _REGEX_FUNCTIONS:
            self.function_extensions.pop(name, None)


_REGEX_FUNCTIONS = ("match", "search")
_ENV = _Environment()

# A member name RFC 9535 accepts after a dot; anything else is written as ['...'].
_SHORTHAND = re.compile(r"[A-Za-z_\u0080-\U0010ffff][A-Za-z0-9_\u0080-\U0010ffff]*")
# What ends a dotted name in kubectl's lexer (plus the filter operators it splits on);
# a backslash makes the next character part of the name.
_NAME_ENDS = frozenset(" \t\r\n.,[]$@{}()=!<>&|'\"*")


def _reason(exc: Exception) -> str:
    """The library's message without its multi-line pointer at the query we built."""
    text = str(exc.args[0]) if exc.args else str(exc)
    return text.splitlines()[0] if text else type(exc).__name__


def _quote(name: str) -> str:
    return "'" + name.replace("\\", "\\\\").replace("'", "\\'") + "'"


class _Translator:
    """kubectl path syntax to RFC 9535: root made explicit, odd names bracketed.

    Quoted strings and numbers are copied as they are; a ``.`` begins a member name only
    right after a path step (``$``, ``@``, a name, ``*`` or a ``]``), so ``1.5`` in a
    filter stays a number.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.at = 0
        self.out: list[str] = []

    def run(self) -> str:
        self.out.append("$")
        if self.text[:1] in ("$", "@"):
            self.at = 1
        self.path_steps()
        self.expression(stop="")
        return "".join(self.out)

    def peek(self, offset: int = 0) -> str:
        index = self.at + offset
        return self.text[index] if index < len(self.text) else ""

    def path_steps(self) -> None:
        """Steps after a root (``$``/``@``): ``.name``, ``..name``, ``.*``, ``[...]``."""
        while True:
            char = self.peek()
            if char == "." and self.peek(1) == ".":
                self.at += 2
                self.out.append("..")
                self.member(after_descent=True)
            elif char == ".":
                self.at += 1
                self.member(after_descent=False)
            elif char == "[":
                self.bracket()
            else:
                return

    def member(self, *, after_descent: bool) -> None:
        if self.peek() == "*":
            self.at += 1
            self.out.append("*" if after_descent else ".*")
            return
        if self.peek() == "[":  # `.[0]`, `..[0]`: the bracket is the step
            if not after_descent:
                return
            self.bracket()
            return
        name: list[str] = []
        while (char := self.peek()) and char not in _NAME_ENDS:
            if char == "\\" and self.peek(1):
                self.at += 1
                char = self.peek()
            name.append(char)
            self.at += 1
        if not name:
            raise ValueError(f"expected a name after '.' at position {self.at + 1}")
        text = "".join(name)
        if _SHORTHAND.fullmatch(text):
            self.out.append(text if after_descent else f".{text}")
        else:
            self.out.append(f"[{_quote(text)}]")

    def bracket(self) -> None:
        self.at += 1
        self.out.append("[")
        self.expression(stop="]")
        if self.peek() != "]":
            raise ValueError("missing ']'")
        self.at += 1
        self.out.append("]")

    def expression(self, stop: str) -> None:
        """Selectors and filter expressions: copied, except the paths inside them."""
        depth = 0
        while char := self.peek():
            if char in ("'", '"'):
                self.string(char)
            elif char in ("@", "$"):
                self.at += 1
                self.out.append(char)
                self.path_steps()
            elif char in "([":
                depth += 1
                self.at += 1
                self.out.append(char)
            elif char in ")]":
                if depth == 0:
                    if char == stop:
                        return
                    raise ValueError(f"unexpected '{char}' at position {self.at + 1}")
                depth -= 1
                self.at += 1
                self.out.append(char)
            else:
                if not stop:  # the top level holds one path and nothing after it
                    raise ValueError(f"unexpected {char!r} at position {self.at + 1}")
                self.at += 1
                self.out.append(char)
        if depth:
            raise ValueError("unbalanced brackets")

    def string(self, quote: str) -> None:
        start = self.at
        self.at += 1
        while (char := self.peek()) and char != quote:
            self.at += 2 if char == "\\" else 1
        if not self.peek():
            raise ValueError(f"unterminated string starting at position {start + 1}")
        self.at += 1
        self.out.append(self.text[start : self.at])


@dataclass(frozen=True)
class Path:
    """One compiled path: ``source`` as the user wrote it, evaluated relative to an object."""

    source: str
    query: jsonpath.JSONPath | jsonpath.CompoundJSONPath

    def find(self, obj: Any) -> list[Any]:
        try:
            return list(self.query.findall(obj))
        except jsonpath.JSONPathError as exc:  # a comparison the data makes invalid
            raise InvalidInput("jsonpath", self.source, _reason(exc)) from None


def compile_path(source: str) -> Path:
    """A kubectl path (``.a.b``, ``$.a``, ``@``, ``.items[?(@.x=="y")].z``)."""
    text = source.strip()
    if text in ("", "."):
        text = "$"
    try:
        translated = _Translator(text).run()
        _refuse_regex(translated)
        query = _ENV.compile(translated)
    except ValueError as exc:  # the library's syntax errors are ValueErrors too
        raise InvalidInput("jsonpath", source, _reason(exc)) from None
    except jsonpath.JSONPathError as exc:
        raise InvalidInput("jsonpath", source, _reason(exc)) from None
    return Path(source, query)


def _refuse_regex(path: str) -> None:
    for token in _ENV.lexer.tokenize(path):
        if token.kind == "TOKEN_RE" or (
            token.kind == "TOKEN_FUNCTION" and token.value in _REGEX_FUNCTIONS
        ):
            raise ValueError(
                f"{token.value!r}: regular expressions are not supported (their cost would "
                "depend on the data; kubectl's JSONPath has none)"
            )


_RELAXED = re.compile(r"^\{\.?([^{}]+)\}$|^\.?([^{}]+)$")


def relaxed_path(expression: str) -> Path:
    """A path as ``--sort-by`` and custom columns take it: kubectl's relaxed form, where
    ``name1.name2``, ``.name1.name2``, ``{name1.name2}`` and ``{.name1.name2}`` are one."""
    match = _RELAXED.fullmatch(expression.strip())
    if match is None:
        raise InvalidInput(
            "jsonpath",
            expression,
            "expected a path such as .metadata.name or {.metadata.name}",
        )
    field = match[1] or match[2]
    return compile_path(field if field.startswith("[") else f".{field}")


def text_of(value: Any) -> str:
    """A result as kubectl prints it: strings bare, maps and lists as compact JSON.

    What came from the log is made harmless for the terminal (``cli/terminal.py``)."""
    if isinstance(value, str):
        return safe(value)
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return safe(json.dumps(value, separators=(",", ":")))


# -- templates ---------------------------------------------------------------------------

_ESCAPES = {
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "\\": "\\",
    '"': '"',
    "'": "'",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
    "0": "\0",
}
_ESCAPE = re.compile(r"\\(?:u([0-9A-Fa-f]{4})|x([0-9A-Fa-f]{2})|(.))", re.S)


def _unquote(literal: str) -> str:
    """A template's string literal (``"\\n"``, ``'\\t'``), with Go's common escapes."""

    def escape(match: re.Match[str]) -> str:
        if match[1] or match[2]:
            return chr(int(match[1] or match[2], 16))
        if match[3] not in _ESCAPES:
            raise ValueError(f"unknown escape \\{match[3]} in {literal}")
        return _ESCAPES[match[3]]

    return _ESCAPE.sub(escape, literal[1:-1])


@dataclass(frozen=True)
class _Text:
    text: str


@dataclass(frozen=True)
class _Action:
    path: Path


@dataclass(frozen=True)
class _Range:
    path: Path
    body: tuple[_Node, ...]


_Node = _Text | _Action | _Range


def _actions(template: str) -> list[tuple[bool, str]]:
    """The template cut into (is_action, text) pieces; a ``}`` inside a quoted string or a
    filter does not end its action."""
    pieces: list[tuple[bool, str]] = []
    at = 0
    while at < len(template):
        start = template.find("{", at)
        if start < 0:
            pieces.append((False, template[at:]))
            break
        if start > at:
            pieces.append((False, template[at:start]))
        position, quote = start + 1, ""
        while position < len(template):
            char = template[position]
            if quote:
                if char == "\\":
                    position += 1
                elif char == quote:
                    quote = ""
            elif char in ("'", '"'):
                quote = char
            elif char == "}":
                break
            position += 1
        else:
            raise ValueError(f"unclosed action starting at position {start + 1}")
        pieces.append((True, template[start + 1 : position]))
        at = position + 1
    return pieces


class Template:
    """A parsed ``-o jsonpath=TEMPLATE``, applied to each object as kubectl applies it."""

    def __init__(self, source: str) -> None:
        self.source = source
        try:
            self.nodes = self._parse(source)
        except ValueError as exc:
            raise InvalidInput("jsonpath template", source, str(exc)) from None

    @staticmethod
    def _parse(source: str) -> tuple[_Node, ...]:
        stack: list[tuple[Path | None, list[_Node]]] = [(None, [])]
        for is_action, text in _actions(source):
            body = stack[-1][1]
            if not is_action:
                body.append(_Text(text))
                continue
            action = text.strip()
            if not action:
                raise ValueError("empty action {}")
            if action[0] in ("'", '"'):
                if len(action) < 2 or action[-1] != action[0]:
                    raise ValueError(f"unterminated string {action}")
                body.append(_Text(_unquote(action)))
            elif action == "end":
                if len(stack) == 1:
                    raise ValueError("{end} without a {range}")
                path, nodes = stack.pop()
                assert path is not None
                stack[-1][1].append(_Range(path, tuple(nodes)))
            elif action.split(None, 1)[0] == "range":
                words = action.split(None, 1)
                if len(words) < 2:
                    raise ValueError("{range} needs a path, as in {range .items[*]}")
                stack.append((_path(words[1]), []))
            else:
                body.append(_Action(_path(action)))
        if len(stack) > 1:
            opened = stack[-1][0]
            assert opened is not None
            raise ValueError(f"{{range {opened.source}}} is not closed by {{end}}")
        return tuple(stack[0][1])

    def render(self, obj: Any) -> str:
        out: list[str] = []
        self._walk(self.nodes, obj, out.append)
        return "".join(out)

    def _walk(self, nodes: Sequence[_Node], current: Any, write: Callable[[str], None]) -> None:
        for node in nodes:
            match node:
                case _Text(text):
                    write(text)
                case _Action(path):
                    write(" ".join(text_of(value) for value in path.find(current)))
                case _Range(path, body):
                    for value in path.find(current):
                        self._walk(body, value, write)


def _path(source: str) -> Path:
    try:
        return compile_path(source)
    except InvalidInput as exc:
        raise ValueError(f"{source}: {exc.reason}") from None


# -- sorting -----------------------------------------------------------------------------

_DIGITS = re.compile(r"([0-9]+)")


def _natural(text: str) -> tuple[tuple[int, int, str], ...]:
    """kubectl's NaturalLess: runs of ASCII digits compare as numbers (``svc2`` before
    ``svc10``), by their length without leading zeros and then their digits, so a run of
    any length (a writer's 50,000-digit actor) costs what reading it costs."""
    key: list[tuple[int, int, str]] = []
    for part in _DIGITS.split(text):
        if not part:
            continue
        if part[0] in "0123456789":
            digits = part.lstrip("0")
            key.append((0, len(digits), digits))
        else:
            key.append((1, 0, part))
    return tuple(key)


def sort_key(values: list[Any]) -> tuple[int, Any]:
    """Orders the first value a ``--sort-by`` path found: missing first (as kubectl), then
    false before true, numbers by value, strings naturally, anything else by its JSON."""
    if not values or values[0] is None:
        return (0, 0)
    value = values[0]
    if isinstance(value, bool):
        return (1, int(value))
    if isinstance(value, int | float):
        return (2, value)
    if isinstance(value, str):
        return (3, _natural(value))
    return (4, json.dumps(value, sort_keys=True))
