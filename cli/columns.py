"""``-o custom-columns=HEADER:PATH,...`` and ``-o custom-columns-file=FILE``, as kubectl.

Each column is a header and a relaxed path (``.spec.ports[0].port`` or
``{.spec.ports[0].port}``) evaluated over the object ``-o json`` shows. A cell is
``<none>`` where the path finds nothing, and several values are joined with commas.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from cli.template import Path, relaxed_path, text_of
from registry.errors import InvalidInput

__all__ = ["Column", "columns_from_file", "parse_columns", "rows"]

_FORM = "expected HEADER:PATH, as in NAME:.metadata.name"


@dataclass(frozen=True)
class Column:
    header: str
    path: Path

    def cell(self, obj: Any) -> str:
        values = self.path.find(obj)
        if not values:
            return "<none>"
        return ",".join("<none>" if v is None else text_of(v) for v in values)


def _split_specs(spec: str) -> list[str]:
    """Commas between columns, not those inside a bracket or a quoted string (kubectl
    splits on every comma, which breaks a filter or a union that holds one)."""
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for char in spec:
        if quote:
            quote = "" if char == quote else quote
        elif char in ("'", '"'):
            quote = char
        elif char in "[(":
            depth += 1
        elif char in "])":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return parts


def _column(header: str, expression: str, spec: str) -> Column:
    if not header or not expression.strip():
        raise InvalidInput("custom-columns", spec, _FORM)
    try:
        path = relaxed_path(expression)
    except InvalidInput as exc:
        raise InvalidInput("custom-columns", spec, f"{expression}: {exc.reason}") from None
    return Column(header, path)


def parse_columns(spec: str) -> list[Column]:
    if not spec.strip():
        raise InvalidInput("custom-columns", spec, f"no columns given ({_FORM})")
    columns = []
    for part in _split_specs(spec):
        header, colon, expression = part.partition(":")
        if not colon:
            raise InvalidInput("custom-columns", part, _FORM)
        columns.append(_column(header.strip(), expression, part))
    return columns


def columns_from_file(name: str, text: str) -> list[Column]:
    """kubectl's file form: a line of headers, then a line of paths, split on whitespace."""
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) < 2:
        raise InvalidInput(
            "custom-columns-file",
            name,
            "expected a line of headers and a line of paths, separated by whitespace",
        )
    headers, paths = lines[0].split(), lines[1].split()
    if len(headers) != len(paths):
        raise InvalidInput(
            "custom-columns-file",
            name,
            f"{len(headers)} headers but {len(paths)} paths",
        )
    return [_column(h, p, f"{h} {p}") for h, p in zip(headers, paths, strict=True)]


def rows(columns: Sequence[Column], objects: Sequence[Any]) -> list[list[str]]:
    return [[column.cell(obj) for column in columns] for obj in objects]
