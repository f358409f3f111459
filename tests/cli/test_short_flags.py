"""One meaning per short flag, kubectl's where kubectl has one: ``-l`` is a label selector
everywhere (a new object's labels are ``--labels``), ``-c`` the cluster, ``-w`` watching."""

from __future__ import annotations

import json
from collections import defaultdict

import typer.main

from cli.main import app
from tests.helpers import last_seq, skyctl

# Short flags whose long names differ from command to command, on purpose: the same
# meaning, or kubectl's own double meaning.
SHARED = {
    "-f": {"--filename", "--follow", "--watch"},  # kubectl: apply -f; logs -f
    "-p": {"--ports", "--port"},  # a port, or the seed page's port mappings
}


def short_flags() -> dict[str, dict[frozenset[str], list[str]]]:
    """Each short flag of every command: its long names, and where."""
    found: dict[str, dict[frozenset[str], list[str]]] = defaultdict(lambda: defaultdict(list))

    def walk(command: object, path: str) -> None:
        for param in getattr(command, "params", []):
            opts = [*getattr(param, "opts", []), *getattr(param, "secondary_opts", [])]
            longs = frozenset(o for o in opts if o.startswith("--"))
            for short in (o for o in opts if o.startswith("-") and not o.startswith("--")):
                found[short][longs].append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, f"{path} {name}")

    walk(typer.main.get_command(app), "skyctl")
    return found


def test_one_meaning_per_short_flag() -> None:
    for short, meanings in short_flags().items():
        if len(meanings) == 1:
            continue
        names = set().union(*meanings)
        # Several spellings of one meaning share a long name (events: --follow/--watch).
        shared = frozenset.intersection(*meanings)
        assert shared or names <= SHARED.get(short, set()), (short, dict(meanings))
    flags = short_flags()
    assert set(flags["-l"]) == {frozenset({"--selector"})}
    assert set(flags["-c"]) == {frozenset({"--cluster"})}
    assert all("--watch" in longs for longs in flags["-w"])


def test_labels_are_long_and_l_selects(url: str, ns: str) -> None:
    made = skyctl("create", "service", "lab", "-n", ns, "-p", "80", "--labels", "tier=a", url=url)
    assert made.code == 0, made.err
    picked = skyctl("get", "svc", "-n", ns, "-l", "tier=a", "-o", "name", url=url)
    assert picked.out == "service/lab\n"
    before = last_seq(url)
    old = skyctl("create", "service", "old", "-n", ns, "-l", "tier=a", url=url)
    assert old.code == 2 and old.out == ""
    assert "-l is a label selector" in old.err and "--labels" in old.err
    assert last_seq(url) == before  # nothing written
    task = skyctl("announce", "task", "t", "-n", ns, "-a", "10.0.0.1", "-l", "a=b", url=url)
    assert task.code == 2 and "--labels" in task.err
    # The seed page's example, exactly as written, still works.
    seed = "create service myService -t ClusterIP -s app=myApp -p 80:8080 -c myCluster"
    assert skyctl(*seed.split(), "-n", ns, url=url).code == 0
    got = json.loads(skyctl("get", "service", "myService", "-n", ns, "-o", "json", url=url).out)
    assert got["spec"]["cluster"] == "myCluster" and got["spec"]["selector"] == {"app": "myApp"}


def test_events_watch_is_follow() -> None:
    """``events -w`` as kubectl events has it: the same flag as ``-f``."""
    root = typer.main.get_command(app)
    command = getattr(root, "commands", {})["events"]
    (follow,) = [p for p in command.params if "--follow" in getattr(p, "opts", [])]
    assert {"-f", "-w", "--watch"} <= set(follow.opts)
