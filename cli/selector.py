"""``get -l``: kubectl's label selectors over a service's own labels.

The grammar is Kubernetes' (``k8s.io/apimachinery/pkg/labels``), so a selector that works
with ``kubectl get -l`` works here unchanged: ``k=v``, ``k==v``, ``k!=v``, ``k`` (has the
label), ``!k`` (has not), ``k in (a,b)``, ``k notin (a,b)``, joined by commas (and).
Like kubectl, ``k!=v`` and ``k notin (...)`` also match a service without the label.
Pure: no I/O, so it can be tested exhaustively.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum

from events.names import check_label_key, check_label_value
from registry.errors import InvalidInput

__all__ = ["Operator", "Requirement", "Selector", "parse_label_selector"]


class Operator(StrEnum):
    EQUALS = "="
    NOT_EQUALS = "!="
    IN = "in"
    NOT_IN = "notin"
    EXISTS = "exists"
    NOT_EXISTS = "!"


@dataclass(frozen=True, slots=True)
class Requirement:
    key: str
    operator: Operator
    values: frozenset[str] = frozenset()

    def matches(self, labels: Mapping[str, str]) -> bool:
        value = labels.get(self.key)
        match self.operator:
            case Operator.EXISTS:
                return value is not None
            case Operator.NOT_EXISTS:
                return value is None
            case Operator.EQUALS | Operator.IN:
                return value is not None and value in self.values
            case Operator.NOT_EQUALS | Operator.NOT_IN:
                return value is None or value not in self.values

    def __str__(self) -> str:
        match self.operator:
            case Operator.EXISTS:
                return self.key
            case Operator.NOT_EXISTS:
                return f"!{self.key}"
            case Operator.EQUALS | Operator.NOT_EQUALS:
                (value,) = self.values
                return f"{self.key}{self.operator.value}{value}"
            case Operator.IN | Operator.NOT_IN:
                return f"{self.key} {self.operator.value} ({','.join(sorted(self.values))})"


@dataclass(frozen=True, slots=True)
class Selector:
    """Every requirement must hold; the empty selector matches everything, as kubectl's."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(requirement.matches(labels) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


# Tokens as apimachinery's lexer cuts them: operators and punctuation, else a run of
# anything else up to whitespace or one of those characters.
_TOKEN = re.compile(r"\s*(?:(?P<op>==|!=|=|!|\(|\)|,)|(?P<word>[^\s=!(),]+))")


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:  # only whitespace is left
            break
        tokens.append(match["op"] or match["word"])
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = _tokens(text)
        self.at = 0

    def fail(self, reason: str) -> InvalidInput:
        return InvalidInput("label selector", self.text, reason)

    def peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def take(self) -> str | None:
        token = self.peek()
        self.at += 1
        return token

    def word(self, what: str) -> str:
        token = self.take()
        if token is None or token in _PUNCTUATION:
            found = "the end" if token is None else f"'{token}'"
            raise self.fail(f"expected {what}, found {found}")
        return token

    def key(self) -> str:
        key = self.word("a label key")
        try:
            return check_label_key(key)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def value(self, token: str) -> str:
        try:
            return check_label_value(token)
        except ValueError as exc:
            raise self.fail(str(exc)) from None

    def selector(self) -> Selector:
        if self.peek() is None:
            return Selector()
        requirements = [self.requirement()]
        while (token := self.take()) is not None:
            if token != ",":
                raise self.fail(f"expected ',' between requirements, found '{token}'")
            requirements.append(self.requirement())
        return Selector(tuple(requirements))

    def requirement(self) -> Requirement:
        if self.peek() == "!":
            self.take()
            return Requirement(self.key(), Operator.NOT_EXISTS)
        key = self.key()
        token = self.peek()
        if token is None or token == ",":
            return Requirement(key, Operator.EXISTS)
        self.take()
        if token in ("=", "=="):
            return Requirement(key, Operator.EQUALS, frozenset([self.single_value()]))
        if token == "!=":
            return Requirement(key, Operator.NOT_EQUALS, frozenset([self.single_value()]))
        if token in ("in", "notin"):
            operator = Operator.IN if token == "in" else Operator.NOT_IN
            return Requirement(key, operator, self.value_set(token))
        raise self.fail(f"expected =, ==, !=, in or notin after {key!r}, found '{token}'")

    def single_value(self) -> str:
        # `k=` selects the empty value, as in kubectl.
        token = self.peek()
        if token is None or token == ",":
            return ""
        return self.value(self.word("a value"))

    def value_set(self, operator: str) -> frozenset[str]:
        if self.take() != "(":
            raise self.fail(f"expected '(' after {operator}")
        values: set[str] = set()
        while True:
            token = self.take()
            if token is None:
                raise self.fail("missing ')'")
            if token == ")" and not values:
                raise self.fail(f"{operator} needs at least one value")
            if token in _PUNCTUATION:
                raise self.fail(f"expected a value, found '{token}'")
            values.add(self.value(token))
            token = self.take()
            if token == ")":
                return frozenset(values)
            if token != ",":
                found = "the end" if token is None else f"'{token}'"
                raise self.fail(f"expected ',' or ')' in the {operator} list, found {found}")


_PUNCTUATION = frozenset(["=", "==", "!=", "!", "(", ")", ","])


def parse_label_selector(text: str) -> Selector:
    """The selector ``text`` means, or ``InvalidInput`` naming it and what is wrong."""
    return _Parser(text).selector()
