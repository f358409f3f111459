"""``get`` read like kubectl's: -l, --show-labels, --no-headers, --sort-by, -o name,
jsonpath, custom-columns; ``-o=json`` everywhere; each command offering only the formats it
prints. New processes against a real server, as a user runs them."""

from __future__ import annotations

import asyncio
import json
import os
import queue
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from events import Service, ServiceUpdated
from events.stamps import new_event_id, utc_now
from registry.client import Registry
from registry.services.decisions import Current
from tests.helpers import Lines, last_seq, skyctl


def make(ns: str, name: str, kind: str, ports: list[int], labels: dict[str, str]) -> Service:
    return Service.model_validate(
        {
            "namespace": ns,
            "name": name,
            "type": kind,
            "selector": {"app": name},
            "ports": [{"port": p, "target_port": p + 8000} for p in ports],
            "labels": labels,
        }
    )


def seed(url: str, *services: Service) -> None:
    async def go() -> None:
        async with await Registry.connect(url) as registry:
            for service in services:
                await registry.create(service)

    asyncio.run(go())


def relabel(url: str, ns: str, name: str, labels: dict[str, str]) -> None:
    """A ServiceUpdated that changes only the labels (what `skyctl label` writes)."""

    def decide(current: Current) -> ServiceUpdated:
        record = current.record()
        assert record is not None
        service = Service.model_validate(
            {**record.service.model_dump(), "labels": dict(sorted(labels.items()))}
        )
        return ServiceUpdated(
            id=new_event_id(),
            time=utc_now(),
            actor="tester",
            prev=current.prev,
            service=service,
            created=record.origin,
        )

    async def go() -> None:
        async with await Registry.connect(url) as registry:
            await registry.write(ns, name, decide)

    asyncio.run(go())


def delete(url: str, ns: str, name: str) -> None:
    async def go() -> None:
        async with await Registry.connect(url) as registry:
            await registry.delete(ns, name)

    asyncio.run(go())


@pytest.fixture
def shop(url: str, ns: str) -> str:
    """Five services: three labelled, two not; names that sort differently by text and by
    nature (svc2 before svc10)."""
    seed(
        url,
        make(ns, "web", "NodePort", [80], {"tier": "front", "env": "prod"}),
        make(ns, "api", "ClusterIP", [443, 9090], {"tier": "back", "env": "prod"}),
        make(ns, "db", "ClusterIP", [5432], {"tier": "back", "env": "staging"}),
        make(ns, "svc10", "ClusterIP", [10], {}),
        make(ns, "svc2", "ClusterIP", [2], {}),
    )
    return ns


def names(url: str, ns: str, *args: str) -> list[str]:
    result = skyctl("get", "svc", "-n", ns, "-o", "name", *args, url=url)
    assert result.code == 0, result.err
    return [line.removeprefix("service/") for line in result.lines]


@pytest.mark.parametrize(
    ("selector", "expected"),
    [
        ("tier=back", ["api", "db"]),
        ("tier==back,env=prod", ["api"]),
        ("env!=prod", ["db", "svc10", "svc2"]),
        ("tier", ["api", "db", "web"]),
        ("!tier", ["svc10", "svc2"]),
        ("env in (prod,staging),tier notin (front)", ["api", "db"]),
        ("tier=nothing", []),
    ],
)
def test_label_selector(url: str, shop: str, selector: str, expected: list[str]) -> None:
    assert names(url, shop, "-l", selector) == expected
    assert names(url, shop, f"--selector={selector}") == expected


def test_selector_with_tables_json_and_the_past(url: str, shop: str) -> None:
    table = skyctl("get", "svc", "-n", shop, "-l", "tier=front", url=url)
    assert [line.split()[0] for line in table.lines] == ["NAME", "web"]
    listing = json.loads(skyctl("get", "svc", "-n", shop, "-l", "tier", "-o", "json", url=url).out)
    assert [item["metadata"]["name"] for item in listing["items"]] == ["api", "db", "web"]
    assert listing["items"][2]["metadata"]["labels"] == {"env": "prod", "tier": "front"}
    assert list(listing["items"][2]["metadata"])[:3] == ["name", "namespace", "labels"]
    past = skyctl("get", "svc", "-n", shop, "-l", "env=prod", "--at", str(last_seq(url)), url=url)
    assert [line.split()[0] for line in past.lines[1:]] == ["api", "web"]
    none = skyctl("get", "svc", "-n", shop, "-l", "tier=nothing", url=url)
    assert (none.code, none.out, none.err) == (0, "", f"No resources found in {shop} namespace.\n")


BAD = [
    (["-l", "a=b=c"], 'invalid label selector "a=b=c"'),
    (["-l", "tier in ()"], "needs at least one value"),
    (["web", "-l", "tier"], "cannot be combined with a NAME"),
    (["-o", "jsonpath={.items[0"], 'invalid jsonpath template "{.items[0"'),
    (["-o", "jsonpath={range .items[*]}"], "is not closed by {end}"),
    (["-o", "jsonpath"], "jsonpath needs an argument"),
    (["-o", "custom-columns=NAME"], "expected HEADER:PATH"),
    (["-o", "jsonpath-file=/nonexistent/t"], 'invalid jsonpath-file "/nonexistent/t"'),
    (["-o", "custom-columns-file=/nonexistent/c"], "No such file"),
    (["--sort-by", "{.a}{.b}"], "expected a path"),
    (["--sort-by", ".items["], "missing ']'"),
    (["-o", "go-template={{.x}}"], "'go-template={{.x}}' is not one of"),
]


@pytest.mark.parametrize(("args", "message"), BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_flags_are_refused_before_the_server_is_asked(
    url: str, ns: str, args: list[str], message: str
) -> None:
    before = last_seq(url)
    # An unreachable server would be exit 3: exit 2 proves nothing was sent.
    result = skyctl("get", "svc", *args, "-n", ns, url="nats://127.0.0.1:1")
    assert result.code == 2, result.err
    assert result.out == ""
    assert result.err.startswith("error: ") and message in result.err
    assert result.err.count("\n") == 1 and "Traceback" not in result.err
    assert last_seq(url) == before


def test_sort_by_a_path_that_no_service_has(url: str, shop: str) -> None:
    result = skyctl("get", "svc", "-n", shop, "--sort-by", ".spec.nothing", url=url)
    assert result.code == 2 and result.err.count("\n") == 1
    assert 'invalid --sort-by ".spec.nothing"' in result.err


def test_show_labels_and_no_headers(url: str, shop: str) -> None:
    shown = skyctl("get", "svc", "-n", shop, "--show-labels", url=url).lines
    assert shown[0].split()[-2:] == ["AGE", "LABELS"]
    labels = {line.split()[0]: line.split()[-1] for line in shown[1:]}
    assert labels == {
        "api": "env=prod,tier=back",
        "db": "env=staging,tier=back",
        "svc10": "<none>",
        "svc2": "<none>",
        "web": "env=prod,tier=front",
    }
    wide = skyctl("get", "svc", "-n", shop, "-o", "wide", "--show-labels", url=url).lines
    assert wide[0].split()[-2:] == ["PROOF", "LABELS"]
    bare = skyctl("get", "svc", "-n", shop, "--no-headers", "-l", "tier", url=url).lines
    assert [line.split()[0] for line in bare] == ["api", "db", "web"]
    # Widths come from the rows alone, as kubectl's: "CLUSTER-IP" does not widen column 3.
    assert bare[0].startswith("api   ClusterIP   10.")
    assert bare[0].split()[4] == "443/TCP,9090/TCP"
    every = skyctl("get", "svc", "-A", "--no-headers", "-l", "tier", url=url).lines
    assert [line.split()[:2] for line in every if shop in line] == [
        [shop, "api"],
        [shop, "db"],
        [shop, "web"],
    ]


def test_sort_by(url: str, shop: str) -> None:
    assert names(url, shop, "--sort-by", ".metadata.name") == ["api", "db", "svc2", "svc10", "web"]
    assert names(url, shop, "--sort-by={.spec.ports[0].port}") == [
        "svc2",
        "svc10",
        "web",
        "api",
        "db",
    ]
    # Services without the label sort first, as kubectl puts missing values.
    assert names(url, shop, "--sort-by", "metadata.labels.tier")[2:] == ["api", "db", "web"]
    listing = skyctl("get", "svc", "-n", shop, "--sort-by", "{.spec.type}", "-o", "json", url=url)
    assert [i["spec"]["type"] for i in json.loads(listing.out)["items"]][-1] == "NodePort"
    table = skyctl("get", "svc", "-n", shop, "--sort-by", ".spec.ports[0].port", url=url)
    assert [line.split()[0] for line in table.lines] == [
        "NAME",
        "svc2",
        "svc10",
        "web",
        "api",
        "db",
    ]


def test_jsonpath(url: str, shop: str, tmp_path: Path) -> None:
    def jsonpath(*args: str) -> str:
        result = skyctl("get", "svc", "-n", shop, *args, url=url)
        assert result.code == 0, result.err
        return result.out

    assert jsonpath("-o", "jsonpath={.items[*].metadata.name}") == "api db svc10 svc2 web"
    template = '{range .items[*]}{.metadata.name}{"\\t"}{.spec.ports[0].port}{"\\n"}{end}'
    assert jsonpath("-o", f"jsonpath={template}", "-l", "tier") == "api\t443\ndb\t5432\nweb\t80\n"
    node_ports = '{.items[?(@.spec.type=="NodePort")].metadata.name}'
    assert jsonpath(f"-o=jsonpath={node_ports}") == "web"
    assert jsonpath("web", "-o", "jsonpath={.metadata.labels.tier}") == "front"
    node_port = json.loads(jsonpath("web", "--output=jsonpath={.spec.ports[0]}"))
    assert node_port.pop("nodePort") in range(30000, 32768)  # web is a NodePort
    assert node_port == {"port": 80, "targetPort": 8080, "protocol": "TCP"}
    assert jsonpath("db", "-o", "jsonpath={.spec.ports[0]}") == (
        '{"port":5432,"targetPort":13432,"protocol":"TCP"}'
    )
    file = tmp_path / "names.tmpl"
    file.write_text('{range .items[*]}{.metadata.name}{"\\n"}{end}')
    assert jsonpath("-o", f"jsonpath-file={file}", "--sort-by", ".spec.ports[0].port") == (
        "svc2\nsvc10\nweb\napi\ndb\n"
    )


def test_custom_columns(url: str, shop: str, tmp_path: Path) -> None:
    spec = (
        "NAME:.metadata.name,PORT:.spec.ports[0].port,PORTS:{.spec.ports[*].port},"
        "TIER:.metadata.labels.tier"
    )
    lines = skyctl("get", "svc", "-n", shop, "-o", f"custom-columns={spec}", url=url).lines
    assert [line.split() for line in lines] == [
        ["NAME", "PORT", "PORTS", "TIER"],
        ["api", "443", "443,9090", "back"],
        ["db", "5432", "5432", "back"],
        ["svc10", "10", "10", "<none>"],
        ["svc2", "2", "2", "<none>"],
        ["web", "80", "80", "front"],
    ]
    file = tmp_path / "columns.txt"
    file.write_text("NAME    TYPE\n.metadata.name    {.spec.type}\n")
    bare = skyctl(
        "get", "svc", "-n", shop, "-o", f"custom-columns-file={file}", "--no-headers", "-l",
        "env=prod", url=url,
    ).lines  # fmt: skip
    assert [line.split() for line in bare] == [["api", "ClusterIP"], ["web", "NodePort"]]


@pytest.mark.parametrize("form", [["-o=json"], ["--output=json"], ["-ojson"]])
def test_equals_forms_of_output_work_everywhere(url: str, shop: str, form: list[str]) -> None:
    """click reads `-o=json` as the value "=json"; kubectl's flags read "json"."""
    fresh = f"fresh{len(form[0])}"
    for args in (
        ["get", "svc", "web", "-n", shop],
        ["get", "svc", "-n", shop],
        ["create", "svc", fresh, "-n", shop],
        ["history", "svc", "web", "-n", shop],
        ["version"],
    ):
        result = skyctl(*args, *form, url=url)
        assert result.code == 0, (args, form, result.err)
        json.loads(result.out)
    events = skyctl("events", "-n", shop, *form, url=url)
    assert events.code == 0, events.err
    assert [json.loads(line)["event"]["type"] for line in events.lines] == ["ServiceCreated"] * 6


@pytest.mark.parametrize(
    ("command", "offered", "refused"),
    [
        (["history", "svc", "x"], ["table", "json", "yaml"], ["wide", "name", "jsonpath={.a}"]),
        (["events"], ["table", "json"], ["yaml", "wide"]),
        (["version"], ["table", "json", "yaml"], ["wide"]),
        (["get", "svc"], ["table", "wide", "json", "yaml", "name", "jsonpath="], ["xml"]),
    ],
)
def test_each_command_offers_only_the_formats_it_prints(
    command: list[str], offered: list[str], refused: list[str]
) -> None:
    help_text = skyctl(*command[:2], "--help", url=None).out
    output_help = " ".join(help_text.split())
    for value in offered:
        assert value in output_help
    assert "wide" not in output_help or "wide" in offered
    for value in refused:
        result = skyctl(*command, "-o", value, url="nats://127.0.0.1:1")
        assert result.code == 2, (value, result.err)
        assert "is not one of" in result.err and result.err.count("\n") == 1


def test_watch_with_a_selector_follows_services_in_and_out_of_it(url: str, shop: str) -> None:
    """A label change that moves a service into the selection is ADDED, out of it DELETED,
    as a label-selected watch in Kubernetes; changes to services outside print nothing."""
    template = '{.type} {.object.metadata.name}{"\\n"}'
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "get", "svc", "-w", "-l", "tier=front", "-n", shop,
         "-o", f"jsonpath={template}"],
        env={**os.environ, "NATS_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines = Lines(watcher)
    try:
        assert lines.next() == "ADDED web\n"
        seed(url, make(shop, "cache", "ClusterIP", [6379], {"tier": "back"}))
        relabel(url, shop, "db", {"tier": "front"})
        assert lines.next() == "ADDED db\n"
        relabel(url, shop, "web", {"tier": "back"})
        assert lines.next() == "DELETED web\n"
        relabel(url, shop, "db", {"tier": "front", "x": "1"})
        assert lines.next() == "MODIFIED db\n"
        delete(url, shop, "cache")
        delete(url, shop, "db")
        assert lines.next() == "DELETED db\n"
    finally:
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=10)
    assert watcher.returncode == 0 and err == ""
    with pytest.raises(queue.Empty):
        lines.next(timeout=0.5)


def test_watch_table_with_labels_and_no_headers(url: str, shop: str) -> None:
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "get", "svc", "-w", "-n", shop, "-l", "env=prod",
         "--show-labels", "--no-headers"],
        env={**os.environ, "NATS_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    lines = Lines(watcher)
    try:
        first: list[Any] = [lines.next().split() for _ in range(2)]
        assert [(row[0], row[1], row[-1]) for row in first] == [
            ("ADDED", "api", "env=prod,tier=back"),
            ("ADDED", "web", "env=prod,tier=front"),
        ]
    finally:
        watcher.send_signal(signal.SIGINT)
        watcher.communicate(timeout=10)
