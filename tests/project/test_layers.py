"""The house by domain: imports run one way, no circle of any length, a documented surface.

The layers are the import-linter contracts in ``pyproject.toml``; this test runs them, and
also walks every import itself (type-checking and function-level imports included) to
fail on a cycle, which a layers contract alone does not forbid inside one layer.
"""

from __future__ import annotations

import ast
import importlib
import subprocess
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("events", "registry", "cli")


def module_files(root: Path, packages: Iterable[str]) -> dict[str, Path]:
    """Every module of ``packages`` under ``root``, by dotted name."""
    found: dict[str, Path] = {}
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


def import_graph(modules: Mapping[str, Path]) -> dict[str, set[str]]:
    """Which of ``modules`` each one imports, wherever the import stands in it."""
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = name.split(".") if is_package else name.split(".")[:-1]
                    base = base[: len(base) - (node.level - 1)]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                else:
                    module = node.module or ""
                targets = [module, *(f"{module}.{alias.name}" for alias in node.names)]
            for target in targets:
                # ``import a.b.c`` imports a, a.b and a.b.c; count the deepest we know.
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                if target and target != name:
                    graph[name].add(target)
    return graph


def cycles(graph: Mapping[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in graph.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_in_a_circle() -> None:
    graph = import_graph(module_files(ROOT, PACKAGES))
    assert len(graph) > 90  # the walk found the tree
    assert cycles(graph) == []


def test_the_cycle_check_finds_a_circle_of_any_length(tmp_path: Path) -> None:
    """A three-module circle closed by a type-checking import is found (the check can fail)."""
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "sub" / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n")
    (package / "sub" / "b.py").write_text("from . import c\n")
    (package / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.a import thing\n"
    )
    (package / "d.py").write_text("import pkg.a\n")
    graph = import_graph(module_files(tmp_path, ["pkg"]))
    assert cycles(graph) == [["pkg.a", "pkg.sub.b", "pkg.sub.c"]]


def test_the_layers_contracts_hold() -> None:
    """``lint-imports`` with the contracts in pyproject.toml (cli -> registry -> events, and
    the domains inside registry)."""
    done = subprocess.run(
        [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    "package",
    [
        "registry",
        "registry.log",
        "registry.addresses",
        "registry.jetstream",
        "registry.services",
        "registry.discovery",
        "registry.dns",
        "registry.agent",
    ],
)
def test_each_domain_says_what_it_holds_and_may_import(package: str) -> None:
    doc = importlib.import_module(package).__doc__ or ""
    assert len(doc.splitlines()) >= 3, package
    if package != "registry":
        assert "May import" in doc, package


def test_the_library_surface_is_importable_from_registry() -> None:
    """What the docs promise programs, from ``registry`` itself, each name loaded on use."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, registry; "
            "print(sorted(m for m in sys.modules if m.startswith('registry.')))",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert done.stdout.strip() == "[]", "import registry alone loads nothing more"
    import registry

    assert sorted(registry.__all__) == [
        "AlreadyExists",
        "Announcer",
        "Conflict",
        "Delivery",
        "InvalidInput",
        "NoEndpoints",
        "NotFound",
        "PermissionDenied",
        "Registry",
        "RegistryError",
        "Resolver",
        "ServerError",
        "ServiceError",
        "Subscription",
        "Unreachable",
    ]
    from registry.client import Registry
    from registry.discovery.resolver import Resolver

    assert registry.Registry is Registry
    assert registry.Resolver is Resolver
    for name in registry.__all__:
        assert getattr(registry, name).__name__ == name
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        _ = registry.nothing


def test_no_cli_verb_imports_another_verb() -> None:
    """``cli/`` is one module per verb; what verbs share (options, views, the ``-f`` path,
    parsing) lives in modules of its own. A verb module is one ``cli.main`` takes a
    command from (named in its table of verbs, loaded when the verb runs)."""
    from cli.main import VERBS

    modules = module_files(ROOT, ["cli"])
    graph = import_graph(modules)
    targets = [verb.target for verb in VERBS.values()]
    targets += [target for verb in VERBS.values() for _, target, _ in verb.nouns]
    verbs = {target.partition(":")[0] for target in targets}
    assert {"cli.get", "cli.apply", "cli.create", "cli.announce"} <= verbs
    crossing = sorted(
        (module, verb)
        for module, imported in graph.items()
        if module != "cli.main"
        for verb in imported & verbs
    )
    assert crossing == []


def test_no_test_module_imports_another_or_conftest() -> None:
    """What tests share lives in support modules (helpers, strategies, servers, cluster,
    creds), never in a test module or conftest, so each test module stands alone."""
    modules = module_files(ROOT, ["tests"])
    graph = import_graph(modules)
    shared_from_tests = sorted(
        (module, imported)
        for module, targets in graph.items()
        for imported in targets
        if imported.rpartition(".")[2].startswith("test_") or imported.endswith(".conftest")
    )
    assert len(graph) > 60
    assert shared_from_tests == []
