"""The documents stay true: links and anchors lead somewhere, paths and modules they name
exist, Python compiles and imports what it names, every `skyctl` line parses as a real
command, the CLI reference is what `--help` prints, and the README stays a page a newcomer
reads and leads to every page of docs/."""

from __future__ import annotations

import ast
import importlib
import importlib.util
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
PAGES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [ROOT / "README.md", ROOT / "cluster" / "README.md", *PAGES]
REFERENCE = ROOT / "docs" / "cli.md"
REGENERATE = ".venv/bin/python scripts/cli_reference.py > docs/cli.md"
OURS = r"(?:events|registry|cli|tests|benchmarks|examples|cluster|scripts|docs)"
LINK = re.compile(r"\]\(([^)\s]+)\)")
PATH_IN_CODE = re.compile(rf"`({OURS}/[\w./-]+)`")
PATH_IN_SHELL = re.compile(rf"^(?:\./)?({OURS}/[\w./-]*\w)$")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
INLINE = re.compile(r"`(skyctl [^`]+)`")
SHELL = ("sh", "shell", "console", "bash")
TICKET = re.compile(r"\b(issues?|stops?|tickets?|PR)\s?#?\d+\b|\(#\d+\)", re.I)
ROOT_COMMAND: Any = typer.main.get_command(app)


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


def shell_blocks(text: str) -> Iterator[tuple[str, str]]:
    """(language, block) of every shell or console block."""
    for language, block in FENCE.findall(text):
        if language in SHELL:
            yield language, block


def shell_lines(text: str) -> Iterator[str]:
    """The command lines of a document's shell blocks: in a console block only what follows
    the prompt (the rest is output); a line ending in a backslash goes on on the next."""
    for language, block in shell_blocks(text):
        pending = ""
        for line in block.splitlines():
            line = line.strip()
            if language == "console" and not pending:
                if not line.startswith("$ "):
                    continue
                line = line.removeprefix("$ ")
            if line.endswith("\\"):
                pending += line[:-1] + " "
                continue
            yield pending + line
            pending = ""


def words_of(line: str) -> list[str] | None:
    """A shell line as the shell splits it (operators apart, comments gone), or None."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    try:
        return list(lexer)
    except ValueError:
        return None


def simple_commands(line: str) -> Iterator[list[str]]:
    """Each command of a pipeline or list (``a | b && c; d &``, ``<(e)``), without the
    ``VAR=value`` assignments in front of it."""
    words = words_of(line)
    if words is None:
        yield ["<unsplittable>", line]
        return
    command: list[str] = []
    for word in [*words, ";"]:
        if word and set(word) <= set("|&;<>()"):
            while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                command.pop(0)
            if command:
                yield command
            command = []
        else:
            command.append(word)


def broken_links(document: Path) -> list[str]:
    """Every relative link, code path or ``python -m`` module of ``document`` that leads
    nowhere."""
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
    mentioned = PATH_IN_CODE.findall(text)
    modules = re.findall(r"python -m ([\w.]+)", text)
    for line in shell_lines(text):
        for words in simple_commands(line):
            mentioned += [m.group(1) for word in words if (m := PATH_IN_SHELL.match(word))]
    for path in mentioned:
        if not (ROOT / path).exists():
            broken.append(path)
    for module in modules:
        if importlib.util.find_spec(module) is None:
            broken.append(f"python -m {module}")
    return broken


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_links_anchors_paths_and_modules_lead_somewhere(document: Path) -> None:
    assert broken_links(document) == []
    assert "notes/" not in document.read_text()  # the team's notes are not in the repository


def test_a_broken_link_anchor_path_or_module_is_caught(tmp_path: Path) -> None:
    (tmp_path / "there.md").write_text("# A heading, here\n")
    doc = tmp_path / "doc.md"
    doc.write_text(
        "[ok](there.md) [ok](there.md#a-heading-here) [gone](nowhere.md) "
        "[bad anchor](there.md#elsewhere) `registry/nothing.py` `python -m benchmarks`\n"
        "`python -m benchmarks.nothing`\n\n"
        "```console\n$ python examples/lb_config.py --help\n$ python examples/gone.py\n"
        "examples/output-not-a-command.py\n```\n"
    )
    assert broken_links(doc) == [
        "nowhere.md",
        "there.md#elsewhere",
        "registry/nothing.py",
        "examples/gone.py",
        "python -m benchmarks.nothing",
    ]


def project_imports(tree: ast.AST) -> Iterator[tuple[str, str | None]]:
    """(module, name) of every import of one of our packages in ``tree``."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from ((alias.name, None) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            yield from ((node.module, alias.name) for alias in node.names)


def missing_imports(source: str, where: str) -> list[str]:
    """What a Python block imports from this project that does not exist (it compiles
    first: a syntax error fails here)."""
    missing = []
    for module, name in project_imports(compile(source, where, "exec", ast.PyCF_ONLY_AST)):
        if not re.match(r"(events|registry|cli|benchmarks)(\.|$)", module):
            continue
        try:
            imported = importlib.import_module(module)
        except ImportError:
            missing.append(module)
            continue
        if name is not None and not hasattr(imported, name):
            try:
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"{module}.{name}")
    return missing


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_python_examples_compile_and_import_what_exists(document: Path) -> None:
    for index, (language, block) in enumerate(FENCE.findall(document.read_text())):
        if language == "python":
            assert missing_imports(block, f"{document.name} block {index + 1}") == []


def test_a_python_example_that_names_nothing_is_caught() -> None:
    assert missing_imports("from registry import Registry, Resolver\nimport events\n", "ok") == []
    assert missing_imports("from registry import Nothing\nimport registry.gone\n", "x") == [
        "registry.Nothing",
        "registry.gone",
    ]
    with pytest.raises(SyntaxError):
        missing_imports("async def f(:\n", "bad")


def resolve(words: list[str]) -> tuple[Any, list[str], list[str]] | str:
    """The command ``words`` (``skyctl ...``) names, its path, and the words left for it;
    or what is not a command."""
    command, path, rest = ROOT_COMMAND, ["skyctl"], words[1:]
    while rest and getattr(command, "commands", None) and not rest[0].startswith("-"):
        found = command.get_command(None, rest[0])
        if found is None:
            return f"{' '.join(path)}: no command {rest[0]!r}"
        command, path, rest = found, [*path, rest[0]], rest[1:]
    return command, path, rest


def unknown_option(words: list[str]) -> str | None:
    """The first option of ``words`` that its command does not have, or None: for a
    ``skyctl`` mentioned in a sentence, where option values may be left out."""
    resolved = resolve(words)
    if isinstance(resolved, str):
        return resolved
    command, path, rest = resolved
    known = {"--help", "-h"}
    for param in command.params:
        known.update(param.opts, param.secondary_opts)
    for word in rest:
        if word.startswith("-") and word != "-":
            flag = word.split("=", 1)[0]
            if flag not in known and not (len(flag) > 2 and flag[:2] in known and flag[1] != "-"):
                return f"{' '.join(path)}: no option {flag!r}"
    return None


def misparsed(line: str) -> str | None:
    """Why a shell line's ``skyctl`` commands would not parse (an unknown command or
    option, an option without its value, an argument missing or too many), or None."""
    for words in simple_commands(line):
        if not (words[0] == "skyctl" or words[0].endswith("/skyctl")):
            continue
        resolved = resolve(words)
        if isinstance(resolved, str):
            return resolved
        command, path, rest = resolved
        where = " ".join(path)
        context = command.context_class(command, info_name=path[-1])
        try:  # click's own parser: no callbacks run, nothing is converted
            values, extra, _ = command.make_parser(context).parse_args(list(rest))
        except Exception as exc:  # click's UsageError (typer's own copy in some releases)
            return f"{where}: {getattr(exc, 'format_message', exc.__str__)()}"
        if extra:
            return f"{where}: unexpected argument {extra[0]!r}"
        if "help" in values:
            continue
        for param in command.params:
            missing = values.get(param.name) in (None, ())
            if param.param_type_name == "argument" and param.required and missing:
                return f"{where}: missing argument {param.human_readable_name}"
    return None


def synopsis(text: str) -> bool:
    """``skyctl get tasks [-n NS | -A]``: a usage line, not a command."""
    return any(mark in text for mark in ("[", "|", "...", "…"))


@pytest.mark.parametrize("document", DOCUMENTS, ids=ids)
def test_every_skyctl_line_parses_as_a_real_command(document: Path) -> None:
    text = document.read_text()
    wrong = {line: why for line in shell_lines(text) if (why := misparsed(line))}
    for span in INLINE.findall(FENCE.sub("", text)):
        words = words_of(span)
        if not synopsis(span) and words and (why := unknown_option(words)):
            wrong[span] = why
    assert wrong == {}


def test_the_skyctl_check_can_fail() -> None:
    assert misparsed("skyctl get svc web -o yaml") is None
    assert misparsed("skyctl get svc -ojson -n shop | grep web") is None
    assert misparsed("skyctl get svc web -n shop -o yaml | skyctl apply -f -") is None
    assert misparsed("SKYFLOW_EDITOR=true .venv/bin/skyctl edit service dns -n shop") is None
    assert misparsed("skyctl label svc cart tier=back team- --overwrite") is None
    assert misparsed("skyctl fly service x") == "skyctl: no command 'fly'"
    assert (
        misparsed("skyctl create service x --frobnicate")
        == "skyctl create service: No such option: --frobnicate"
    )
    assert misparsed("echo ok && skyctl get svc -n") == (
        "skyctl get svc: Option '-n' requires an argument."
    )
    assert misparsed("skyctl create service") == "skyctl create service: missing argument NAME"
    assert misparsed("skyctl history svc a b") == "skyctl history svc: unexpected argument 'b'"
    assert unknown_option(["skyctl", "init", "--replicas"]) is None
    assert unknown_option(["skyctl", "init", "--replica"]) == "skyctl init: no option '--replica'"
    lines = list(shell_lines("```console\n$ skyctl get svc \\\n  -n shop\nNAME\n```\n"))
    assert lines == ["skyctl get svc  -n shop"]


def reference_sections(text: str) -> dict[str, str]:
    """docs/cli.md by command: ``skyctl get service`` -> its section."""
    parts = re.split(r"^## `(skyctl[^`]*)`$", text, flags=re.M)
    return dict(zip(parts[1::2], parts[2::2], strict=True))


def reference_differences(written: str, generated: str) -> list[str]:
    """Which commands' sections of the reference differ from what the generator prints."""
    have, want = reference_sections(written), reference_sections(generated)
    differ = [
        f"{command}: {'missing' if command not in have else '--help changed'}"
        for command in want
        if have.get(command) != want[command]
    ]
    differ += [f"{command}: no such command now" for command in have if command not in want]
    if not differ and written != generated:
        differ.append("the text around the commands")
    return differ


def test_the_cli_reference_is_what_help_prints() -> None:
    generated = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "cli_reference.py")],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    ).stdout
    differ = reference_differences(REFERENCE.read_text(), generated)
    assert not differ, f"docs/cli.md is out of date ({'; '.join(differ)}); run: {REGENERATE}"


def test_a_stale_cli_reference_names_the_command() -> None:
    now = "# CLI reference\n\n## `skyctl`\n\nA\n\n## `skyctl get`\n\nB\n"
    assert reference_differences(now, now) == []
    assert reference_differences(now.replace("B", "C"), now) == ["skyctl get: --help changed"]
    assert reference_differences(now.replace("`skyctl get`", "`skyctl got`"), now) == [
        "skyctl get: missing",
        "skyctl got: no such command now",
    ]


def test_the_reference_has_every_command() -> None:
    def paths(command: Any, path: tuple[str, ...]) -> Iterator[str]:
        yield " ".join(path)
        for name, sub in getattr(command, "commands", {}).items():
            yield from paths(sub, (*path, name))

    assert set(reference_sections(REFERENCE.read_text())) == set(paths(ROOT_COMMAND, ("skyctl",)))


def test_the_readme_is_a_page_a_newcomer_reads() -> None:
    text = (ROOT / "README.md").read_text()
    assert len(text.splitlines()) <= 250, len(text.splitlines())
    assert [page.name for page in PAGES if f"(docs/{page.name})" not in text] == []
    for command in ("./scripts/demo", "./scripts/test"):  # CI runs the second
        assert f"\n{command} " in text, command


def test_no_issue_numbers_or_internal_history() -> None:
    """Docs and code say why, not which ticket: no issue numbers anywhere a user reads.
    (A bug of another project, ``nats.py#352``, is a reason and may be named.)"""
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
        if (ROOT / name).exists() and ROOT / name != Path(__file__)
        for number, line in enumerate((ROOT / name).read_text().splitlines(), 1)
        if TICKET.search(line)
    ]
    assert numbered == []


def test_an_issue_number_is_caught() -> None:
    for line in ("since issue 8 there is", "(issue 11)", "# stop 3: retry", "PR #306", "(#12)"):
        assert TICKET.search(line), line
    for line in ("(nats.py#352)", "invalid service #1 name", "if _KEY.fullmatch(issuer)"):
        assert not TICKET.search(line), line
