"""The documents stay true: links and anchors lead somewhere, paths name files that exist,
Python compiles, every `skyctl` line names real commands and options, the CLI reference
is what `--help` prints, and the README stays a page a newcomer reads."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from cli.main import app

ROOT = Path(__file__).resolve().parents[2]
DOCUMENTS = [
    ROOT / "README.md",
    ROOT / "cluster" / "README.md",
    *sorted((ROOT / "docs").glob("*.md")),
]
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH_IN_CODE = re.compile(
    r"`((?:events|registry|cli|tests|benchmarks|examples|cluster|scripts|docs)/[\w./-]+)`"
)
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)


def ids(path: Path) -> str:
    return str(path.relative_to(ROOT))


def slug(heading: str) -> str:
    """A heading's anchor as GitHub makes it."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(document: Path) -> set[str]:
    text = FENCE.sub("", document.read_text())
    return {slug(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def broken_links(document: Path) -> list[str]:
    """Every relative link or code path of ``document`` that leads nowhere."""
    text = document.read_text()
    broken = []
    for target in LINK.findall(FENCE.sub("", text)):
        if "://" in target or target.startswith("mailto:"):
            continue
        path, _, anchor = target.partition("#")
        where = (document.parent / path).resolve() if path else document
        if not where.exists() or (
            anchor and where.suffix == ".md" and anchor not in anchors(where)
        ):
            broken.append(target)
    for path in PATH_IN_CODE.findall(text):
        if not (ROOT / path).exists():
            broken.append(path)
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_links_anchors_and_paths_lead_somewhere(document: Path) -> None:
    assert broken_links(document) == []
    assert "notes/" not in document.read_text()  # the team's notes are not in the repository


def test_a_broken_link_or_anchor_is_caught(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading, here\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](there.md) [ok](there.md#a-heading-here) [gone](nowhere.md) "
        "[bad anchor](there.md#elsewhere) `registry/nothing.py`\n"
    )
    assert broken_links(doc) == ["nowhere.md", "there.md#elsewhere", "registry/nothing.py"]


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_python_examples_compile(document: Path) -> None:
    for index, (language, block) in enumerate(FENCE.findall(document.read_text())):
        if language == "python":
            compile(block, f"{document.name} python block {index + 1}", "exec")


def skyctl_lines(text: str) -> Iterator[str]:
    """The ``skyctl ...`` command lines of a document's shell blocks."""
    for language, block in FENCE.findall(text):
        if language not in ("sh", "shell", "console", "bash"):
            continue
        for line in block.splitlines():
            line = line.strip()
            if language == "console":  # commands after the prompt; the rest is output
                if not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
            if line.startswith("skyctl "):
                yield line


def unknown_in(line: str) -> str | None:
    """What of one ``skyctl`` line is not a command or option skyctl has, or None."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        words = list(lexer)
    except ValueError as exc:
        return f"cannot split: {exc}"
    ends = [i for i, word in enumerate(words) if word and set(word) <= set("|&;<>()")]
    words = words[: ends[0]] if ends else words
    command: Any = typer.main.get_command(app)
    for word in words[1:]:
        group = getattr(command, "commands", None)
        if group is None or word.startswith("-"):
            break
        found = command.get_command(None, word)
        if found is None:
            return f"no command {word!r}"
        command = found
    known = {"--help", "-h"}
    for param in command.params:
        known.update(param.opts, param.secondary_opts)
    for word in words[1:]:
        if word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            if flag not in known and not (len(flag) > 2 and flag[:2] in known and flag[1] != "-"):
                return f"no option {flag!r} for {command.name}"
    return None


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_every_skyctl_line_names_real_commands_and_options(document: Path) -> None:
    wrong = {line: why for line in skyctl_lines(document.read_text()) if (why := unknown_in(line))}
    assert wrong == {}


def test_the_skyctl_check_can_fail() -> None:
    assert unknown_in("skyctl get svc web -o yaml") is None
    assert unknown_in("skyctl get svc -ojson") is None
    assert (
        unknown_in("skyctl create service x --frobnicate") == "no option '--frobnicate' for service"
    )
    assert unknown_in("skyctl fly service x") == "no command 'fly'"


def test_the_cli_reference_is_what_help_prints() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    assert (ROOT / "docs" / "cli.md").read_text() == generated, (
        "docs/cli.md is out of date: .venv/bin/python scripts/cli_reference.py > docs/cli.md"
    )


def test_the_readme_is_a_page_a_newcomer_reads() -> None:
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 250, len(lines)
    for page in ("docs/cli.md", "docs/discovery.md", "docs/dns.md", "docs/security.md"):
        assert f"({page}" in "\n".join(lines), page


def test_no_issue_numbers_or_internal_history() -> None:
    """Docs and code say why, not which ticket: no issue numbers anywhere a user reads."""
    tracked = subprocess.run(
        ["git", "ls-files", "*.md", "*.py", "*.toml", "*.conf", "*.mjs"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    ).stdout.split()
    numbered = [
        f"{name}:{number}"
        for name in tracked
        if (ROOT / name).exists()
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if re.search(r"\bissues? \d+\b|\(issue \d", line, re.I)
    ]
    assert numbered == []
