"""``skyctl --help`` grouped as kubectl's, and every group's help clean at 80 columns: each
command a line of its own, with a one-line summary."""

from __future__ import annotations

import re

import typer.main

from cli.main import app
from tests.helpers import skyctl

PANELS = ["Basic Commands", "Discovery", "Audit and history", "Server and set-up"]
ROW = re.compile(r"^│ (\S*)\s+(.*?)\s*│$")


def panels(text: str) -> dict[str, list[tuple[str, str]]]:
    """Each boxed panel of a help screen: its rows as (first cell, the rest)."""
    found: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] | None = None
    for line in text.splitlines():
        if line.startswith("╭─ "):
            title = line.removeprefix("╭─ ").split(" ─")[0]
            current = found.setdefault(title, [])
        elif line.startswith("╰"):
            current = None
        elif current is not None and (match := ROW.match(line)):
            current.append((match[1], match[2]))
    return found


def help_text(*args: str) -> str:
    result = skyctl(*args, "--help", url=None, env={"COLUMNS": "80", "TERM": "dumb"})
    assert result.code == 0, result.err
    return result.out


def groups() -> list[list[str]]:
    """Every command group of skyctl, as its words (``[]``: skyctl itself)."""
    found: list[list[str]] = []

    def walk(command: object, path: list[str]) -> None:
        commands = getattr(command, "commands", None)
        if commands is None:
            return
        found.append(path)
        for name, sub in commands.items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_root_help_is_grouped_as_kubectl() -> None:
    text = help_text()
    shown = panels(text)
    titles = [t for t in shown if t not in ("Options", "Commands")]
    assert [next(p for p in PANELS if t.startswith(p)) for t in titles] == PANELS
    listed = {name: title for title, rows in shown.items() for name, _ in rows if name}
    assert listed["create"] == listed["get"] == listed["delete"] == listed["apply"]
    assert listed["get"].startswith("Basic")
    for name in ("announce", "task", "dns", "proxy", "record"):
        assert listed[name].startswith("Discovery"), name
    for name in ("history", "events", "audit"):
        assert listed[name] == "Audit and history", name
    for name in ("server", "init", "config", "version", "completion", "addresses"):
        assert listed[name] == "Server and set-up", name
    # Basic commands in kubectl's order.
    basic = [name for name, _ in shown[listed["create"]]]
    assert basic[:5] == ["create", "get", "describe", "edit", "delete"]


def test_every_help_is_clean_at_80_columns() -> None:
    """No line wider than 80; every command listed on one line (no continuation rows, no
    line breaks from a docstring mid-sentence)."""
    for words in groups():
        text = help_text(*words)
        assert all(len(line) <= 80 for line in text.splitlines()), words
        for title, rows in panels(text).items():
            if title != "Commands" and not any(title.startswith(p) for p in PANELS):
                continue  # options' help may wrap: it is not a list of commands
            for name, summary in rows:
                assert name, (words, title, summary)  # a wrapped summary's second line
                assert summary.endswith(".") or summary.endswith(")"), (words, name, summary)
