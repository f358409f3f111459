"""Shown like kubectl: a service's addresses in ``get`` (every type, ``-A``,
``-o wide``, YAML and JSON, ``--watch``), ``create --cluster-ip``, manifests that carry
``clusterIP``, ``nodePort`` and ``status``, and ``describe``. New processes against a real
server, as a user runs them; the cells themselves are also checked without one."""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import random
import re
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from cli.render import (
    event_changes,
    external_ip_cell,
    ports_cell,
    service_object,
    service_row,
    spec_cells,
)
from events import (
    Ingress,
    LoadBalancerStatus,
    Origin,
    Port,
    Protocol,
    Service,
    ServiceCreated,
    ServiceStatus,
    ServiceType,
    ServiceUpdated,
    encode,
)
from events.status import ServiceStatusSet
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.services.projection import ServiceRecord
from tests.helpers import Lines, last_seq, skyctl

# kubectl's columns, with ENDPOINTS ready/total before AGE.
HEADER = ["NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "ENDPOINTS", "AGE"]
WIDE = [*HEADER, "TARGET-PORTS", "SELECTOR", "CLUSTER", "REVISION", "CREATED-BY", "PROOF"]
SERVICE_CIDR = ipaddress.IPv4Network("10.96.0.0/12")
INGRESS = ("192.0.2.10", "192.0.2.11")
NODE_PORT = re.compile(r"^(\d+):(\d+)/(TCP|UDP)$")


def in_service_cidr(text: str) -> bool:
    return ipaddress.IPv4Address(text) in SERVICE_CIDR


def set_ingress(url: str, ns: str, name: str, *ips: str) -> None:
    """What a load-balancer controller does: report the addresses it gave the service."""
    status = ServiceStatus(
        load_balancer=LoadBalancerStatus(ingress=tuple(Ingress(ip=ip) for ip in ips))
    )

    async def go() -> None:
        async with await Registry.connect(url) as registry:
            await registry.set_status(ns, name, status)

    asyncio.run(go())


def rows(url: str, *args: str) -> dict[str, list[str]]:
    """A table's rows by NAME (every cell of these tables is one word)."""
    result = skyctl("get", "svc", *args, url=url)
    assert result.code == 0, result.err
    header = result.lines[0].split()
    at = header.index("NAME")
    return {line.split()[at]: line.split() for line in result.lines[1:]}


def get_object(url: str, ns: str, name: str, fmt: str = "yaml") -> dict[str, Any]:
    result = skyctl("get", "svc", name, "-n", ns, "-o", fmt, url=url)
    assert result.code == 0, result.err
    obj: dict[str, Any] = yaml.safe_load(result.out) if fmt == "yaml" else json.loads(result.out)
    return obj


def free_cluster_ip() -> str:
    """An address in the default range that the registry is unlikely to have chosen."""
    return str(SERVICE_CIDR[random.randrange(2**19, 2**20 - 2)])


@pytest.fixture
def kinds(url: str, ns: str) -> str:
    """One service of each kind, made the way a user makes them."""
    for args in (
        ["cip", "-s", "app=a", "-p", "80:8080", "-c", "eu-1"],
        ["headless", "--cluster-ip", "None", "-s", "app=db", "-p", "5432"],
        ["np", "-t", "NodePort", "-p", "80:8080,443:8443"],
        ["lb", "-t", "LoadBalancer", "-p", "443:8443", "-s", "app=web"],
        ["ext", "-t", "ExternalName", "--external-name", "ext.example.com", "-p", "80"],
    ):
        made = skyctl("create", "service", *args, "-n", ns, url=url)
        assert made.code == 0, made.err
    return ns


def test_columns_of_each_type(url: str, kinds: str) -> None:
    ns = kinds
    listed = skyctl("get", "svc", "-n", ns, url=url)
    assert listed.lines[0].split() == HEADER
    got = rows(url, "-n", ns)
    assert sorted(got) == ["cip", "ext", "headless", "lb", "np"]
    assert got["cip"][1] == "ClusterIP" and in_service_cidr(got["cip"][2])
    assert got["cip"][3:5] == ["<none>", "80/TCP"]
    assert got["headless"][1:5] == ["ClusterIP", "None", "<none>", "5432/TCP"]
    assert got["ext"][1:5] == ["ExternalName", "<none>", "ext.example.com", "80/TCP"]
    assert got["np"][1] == "NodePort" and got["np"][3] == "<none>"
    assert got["lb"][1] == "LoadBalancer" and got["lb"][3] == "<pending>"
    addresses = {got[name][2] for name in ("cip", "np", "lb")}
    assert len(addresses) == 3 and all(in_service_cidr(a) for a in addresses)
    # PORT(S) as kubectl: port:nodePort/protocol, the node ports those YAML shows.
    for name in ("np", "lb"):
        shown = [NODE_PORT.match(cell) for cell in got[name][4].split(",")]
        assert all(shown), got[name][4]
        node_ports = [p["nodePort"] for p in get_object(url, ns, name)["spec"]["ports"]]
        assert [int(m[2]) for m in shown if m] == node_ports
        assert all(30000 <= n <= 32767 for n in node_ports)
    assert [m[1] for m in map(NODE_PORT.match, got["np"][4].split(",")) if m] == ["80", "443"]

    before = last_seq(url)
    set_ingress(url, ns, "lb", *INGRESS)
    assert last_seq(url) == before + 1
    assert rows(url, "-n", ns)["lb"][3] == ",".join(INGRESS)
    single = skyctl("get", "svc", "lb", "-n", ns, url=url)
    assert single.code == 0, single.err
    assert single.lines[1].split()[3] == ",".join(INGRESS)
    assert single.lines[1].split()[:3] == got["lb"][:3]  # the status changed, not the service


def test_all_namespaces_and_wide(url: str, kinds: str) -> None:
    ns = kinds
    every = skyctl("get", "svc", "-A", url=url)
    assert every.lines[0].split() == ["NAMESPACE", *HEADER]
    mine = {line.split()[1]: line.split() for line in every.lines[1:] if line.startswith(ns + " ")}
    assert sorted(mine) == ["cip", "ext", "headless", "lb", "np"]
    alone = rows(url, "-n", ns)
    assert all(mine[name] == [ns, *alone[name][:-1], mine[name][-1]] for name in alone)

    wide = skyctl("get", "svc", "-n", ns, "-o", "wide", url=url)
    assert wide.lines[0].split() == WIDE
    cells = {line.split()[0]: dict(zip(WIDE, line.split(), strict=True)) for line in wide.lines[1:]}
    assert cells["cip"]["TARGET-PORTS"] == "8080"  # the 8080 of -p 80:8080
    assert cells["np"]["TARGET-PORTS"] == "8080,8443"
    assert cells["headless"]["TARGET-PORTS"] == "5432"
    assert cells["cip"]["SELECTOR"] == "app=a" and cells["cip"]["CLUSTER"] == "eu-1"
    assert cells["np"]["SELECTOR"] == "<none>" and cells["np"]["CLUSTER"] == "<none>"
    version = get_object(url, ns, "np")["metadata"]["resourceVersion"]
    assert cells["np"]["REVISION"] == version and cells["np"]["PROOF"] == "-"
    assert cells["np"]["CREATED-BY"] == get_object(url, ns, "np")["metadata"]["createdBy"]
    assert cells["np"]["CLUSTER-IP"] == alone["np"][2]

    every_wide = skyctl("get", "svc", "-A", "-o", "wide", "--show-labels", url=url)
    assert every_wide.lines[0].split() == ["NAMESPACE", *WIDE, "LABELS"]


def test_yaml_and_json_fields(url: str, kinds: str) -> None:
    ns = kinds
    cip = get_object(url, ns, "cip")
    assert list(cip) == ["apiVersion", "kind", "metadata", "spec", "status"]
    assert list(cip["metadata"])[:2] == ["name", "namespace"]
    assert in_service_cidr(cip["spec"]["clusterIP"])
    assert cip["spec"]["ports"] == [{"port": 80, "targetPort": 8080, "protocol": "TCP"}]
    assert cip["status"] == {"loadBalancer": {}}  # as kubectl prints it
    assert get_object(url, ns, "headless", "json")["spec"]["clusterIP"] == "None"
    ext = get_object(url, ns, "ext", "json")
    assert "clusterIP" not in ext["spec"] and ext["status"] == {"loadBalancer": {}}
    np = get_object(url, ns, "np", "json")
    assert [sorted(p) for p in np["spec"]["ports"]] == [
        ["nodePort", "port", "protocol", "targetPort"]
    ] * 2
    lb = get_object(url, ns, "lb")
    assert lb["status"] == {"loadBalancer": {}}
    set_ingress(url, ns, "lb", INGRESS[0])
    lb = get_object(url, ns, "lb")
    assert lb["status"] == {"loadBalancer": {"ingress": [{"ip": INGRESS[0]}]}}
    listing = json.loads(skyctl("get", "svc", "-n", ns, "-o", "json", url=url).out)
    assert [i["status"] for i in listing["items"] if i["metadata"]["name"] == "lb"] == [
        lb["status"]
    ]
    # Paths into the new fields work wherever paths do.
    template = '{range .items[*]}{.metadata.name}={.spec.clusterIP}{"\\n"}{end}'
    out = skyctl("get", "svc", "-n", ns, "-o", f"jsonpath={template}", url=url).out
    assert "headless=None\n" in out and "ext=\n" in out
    columns = "NAME:.metadata.name,LB:.status.loadBalancer.ingress[*].ip"
    custom = skyctl("get", "svc", "-n", ns, "-o", f"custom-columns={columns}", url=url)
    assert [line.split() for line in custom.lines if line.startswith(("lb", "np"))] == [
        ["lb", INGRESS[0]],
        ["np", "<none>"],
    ]
    by_ip = skyctl("get", "svc", "-n", ns, "--sort-by", ".spec.clusterIP", "-o", "name", url=url)
    assert by_ip.lines[0] == "service/ext"  # the one without sorts first, as kubectl


def test_create_cluster_ip(url: str, ns: str) -> None:
    address = free_cluster_ip()
    made = skyctl(
        "create", "svc", "fixed", "-n", ns, "--cluster-ip", address, "-p", "80", "-o", "yaml",
        url=url,
    )  # fmt: skip
    assert made.code == 0, made.err
    assert yaml.safe_load(made.out)["spec"]["clusterIP"] == address
    assert rows(url, "-n", ns)["fixed"][2] == address

    before = last_seq(url)
    taken = skyctl("create", "svc", "other", "-n", ns, "--cluster-ip", address, url=url)
    assert taken.code == 1 and taken.err.count("\n") == 1, taken.err
    assert f"{ns}/fixed" in taken.err and address in taken.err
    outside = skyctl("create", "svc", "other", "-n", ns, "--cluster-ip", "192.0.2.1", url=url)
    assert outside.code == 2 and outside.err.count("\n") == 1, outside.err
    assert "192.0.2.1" in outside.err and "10.96.0.0/12" in outside.err
    assert last_seq(url) == before

    for bad, reason in [
        ("10.96.0.256", "must be an IPv4 address"),
        ("010.96.0.1", "must be an IPv4 address"),
        ("::1", "must be an IPv4 address"),
        ("none", "capital N"),
    ]:
        # An unreachable server would be exit 3: exit 2 proves nothing was sent.
        result = skyctl("create", "svc", "x", "--cluster-ip", bad, url="nats://127.0.0.1:1")
        assert result.code == 2 and result.err.count("\n") == 1, result.err
        assert result.err.startswith(f'error: invalid cluster IP "{bad}"') and reason in result.err
    for kind, reason in [("NodePort", "cannot be headless"), ("ExternalName", "no cluster IP")]:
        value = "None" if kind == "NodePort" else address
        result = skyctl(
            "create", "svc", "x", "-t", kind, "--cluster-ip", value, url="nats://127.0.0.1:1"
        )
        assert result.code == 2 and reason in result.err and result.err.count("\n") == 1

    headless = skyctl("create", "svc", "hl", "-n", ns, "--clusterip", "None", url=url)
    assert headless.code == 0, headless.err
    assert rows(url, "-n", ns)["hl"][2] == "None"
    chosen = skyctl(
        "create", "svc", "np", "-n", ns, "-t", "NodePort", "-p", "80", "-o", "wide", url=url
    )
    # (create prints the service it wrote, without reading tasks: no ENDPOINTS)
    assert chosen.lines[0].split() == [c for c in WIDE if c != "ENDPOINTS"]
    cells = chosen.lines[1].split()
    assert in_service_cidr(cells[2]) and NODE_PORT.match(cells[4])
    before = last_seq(url)
    dry = skyctl(
        "create",
        "svc",
        "dry",
        "-n",
        ns,
        "-t",
        "LoadBalancer",
        "-p",
        "80",
        "--dry-run",
        "-o",
        "json",
        url=url,
    )
    shown = json.loads(dry.out)
    assert in_service_cidr(shown["spec"]["clusterIP"]) and "nodePort" in shown["spec"]["ports"][0]
    assert last_seq(url) == before


def manifest(name: str, **spec: Any) -> str:
    status = spec.pop("status", None)
    doc: dict[str, Any] = {
        "apiVersion": "skyflow.io/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": "shop"},
        "spec": {"type": "NodePort", "ports": [{"port": 80, "targetPort": 8080}], **spec},
    }
    if status is not None:
        doc["status"] = status
    return yaml.safe_dump(doc)


def test_manifests_with_addresses(fresh_server: NatsServer, tmp_path: Path) -> None:
    """On a server of its own, so the node ports asked for are free."""
    url = fresh_server.url
    path = tmp_path / "shop.yaml"
    lb_status = {"loadBalancer": {"ingress": [{"ip": "203.0.113.9"}]}}
    path.write_text(
        manifest(
            "web",
            clusterIP="10.96.0.50",
            ports=[{"port": 80, "targetPort": 8080, "nodePort": 30080}],
            status=lb_status,  # what controllers report: ignored, as kubectl apply does
        )
        + "---\n"
        + manifest("lb", type="LoadBalancer", status=lb_status)
        + "---\n"
        + manifest("db", type="ClusterIP", clusterIP="None", ports=[{"port": 5432}])
    )
    applied = skyctl("apply", "-f", str(path), url=url)
    assert applied.lines == ["service/web created", "service/lb created", "service/db created"]
    got = rows(url, "-n", "shop")
    assert got["web"][2:5] == ["10.96.0.50", "<none>", "80:30080/TCP"]
    assert got["lb"][3] == "<pending>"  # the status block wrote nothing
    assert got["db"][2] == "None"
    before = last_seq(url)
    again = skyctl("apply", "-f", str(path), url=url)
    assert again.lines == [f"service/{n} unchanged" for n in ("web", "lb", "db")]
    assert last_seq(url) == before

    moved = tmp_path / "moved.yaml"
    moved.write_text(manifest("web", clusterIP="10.96.0.51"))
    immutable = skyctl("apply", "-f", str(moved), url=url)
    assert immutable.code == 2 and immutable.err.count("\n") == 1, immutable.err
    assert "immutable" in immutable.err and "10.96.0.50" in immutable.err
    taken = tmp_path / "taken.yaml"
    taken.write_text(manifest("api", ports=[{"port": 80, "nodePort": 30080}]))
    held = skyctl("apply", "-f", str(taken), url=url)
    assert held.code == 1 and "shop/web" in held.err and held.err.count("\n") == 1
    outside = tmp_path / "outside.yaml"
    outside.write_text(manifest("api", ports=[{"port": 80, "nodePort": 80}]))
    refused = skyctl("apply", "-f", str(outside), url=url)
    assert refused.code == 2 and "30000-32767" in refused.err
    assert last_seq(url) == before
    # A node port asked for in place of the one held is a change like any other.
    port = tmp_path / "port.yaml"
    port.write_text(manifest("web", ports=[{"port": 80, "targetPort": 8080, "nodePort": 30081}]))
    assert skyctl("apply", "-f", str(port), url=url).lines == ["service/web configured"]
    assert rows(url, "-n", "shop")["web"][2:5] == ["10.96.0.50", "<none>", "80:30081/TCP"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"clusterIP": "10.96.0.999"}, "spec.clusterIP: '10.96.0.999': must be an IPv4"),
        ({"clusterIP": "none"}, "spec.clusterIP: 'none': write None"),
        ({"clusterIP": 42}, "spec.clusterIP: Input should be a valid string"),
        ({"ports": [{"port": 80, "nodePort": 70000}]}, "spec.ports[0].nodePort: Input"),
        ({"ports": [{"port": 80}, {"port": 81, "nodePort": "x"}]}, "spec.ports[1].nodePort"),
        ({"clusterIP": "None"}, "spec: a NodePort service cannot be headless"),
        (
            {"type": "ClusterIP", "ports": [{"port": 80, "nodePort": 30000}]},
            "spec: a ClusterIP service has no node ports",
        ),
    ],
    ids=["bad-ip", "lower-none", "not-text", "port-range", "not-a-number", "headless-np", "np-cip"],
)
def test_a_bad_address_in_a_manifest_is_one_line_naming_file_document_and_field(
    url: str, tmp_path: Path, spec: dict[str, Any], message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(manifest("fine", type="ClusterIP") + "---\n" + manifest("bad", **spec))
    before = last_seq(url)
    result = skyctl("apply", "-f", str(path), url=url)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert f'invalid manifest "{path}, document 2": {message}' in result.err
    assert last_seq(url) == before


def test_get_yaml_applied_back_writes_nothing(url: str, kinds: str, tmp_path: Path) -> None:
    ns = kinds
    set_ingress(url, ns, "lb", *INGRESS)
    before = last_seq(url)
    listing = skyctl("get", "svc", "-n", ns, "-o", "yaml", url=url).out
    (tmp_path / "all.yaml").write_text(listing)
    result = skyctl("apply", "-f", str(tmp_path / "all.yaml"), url=url)
    assert result.code == 0, result.err
    assert result.lines == [
        f"service/{n} unchanged" for n in ("cip", "ext", "headless", "lb", "np")
    ]
    for name in ("lb", "np"):
        (tmp_path / f"{name}.json").write_text(
            skyctl("get", "svc", name, "-n", ns, "-o", "json", url=url).out
        )
        assert skyctl("apply", "-f", str(tmp_path / f"{name}.json"), url=url).lines == [
            f"service/{name} unchanged"
        ]
    # Without the addresses (a hand-written manifest), the ones held are kept: unchanged.
    bare = get_object(url, ns, "np")
    del bare["spec"]["clusterIP"], bare["metadata"]["resourceVersion"], bare["status"]
    for port in bare["spec"]["ports"]:
        del port["nodePort"]
    (tmp_path / "bare.yaml").write_text(yaml.safe_dump(bare))
    assert skyctl("apply", "-f", str(tmp_path / "bare.yaml"), url=url).lines == [
        "service/np unchanged"
    ]
    assert last_seq(url) == before
    assert rows(url, "-n", ns)["lb"][3] == ",".join(INGRESS)  # the status stays


def test_describe_shows_addresses(url: str, kinds: str) -> None:
    ns = kinds

    def describe(name: str) -> dict[str, list[str]]:
        result = skyctl("describe", "svc", name, "-n", ns, url=url)
        assert result.code == 0, result.err
        fields: dict[str, list[str]] = {}
        for line in result.lines[: result.lines.index("Events:")]:
            label, _, value = line.partition(":  ")
            fields.setdefault(label.strip(), []).append(value.strip())
        return fields

    np = describe("np")
    node_ports = [p["nodePort"] for p in get_object(url, ns, "np")["spec"]["ports"]]
    cluster_ip = get_object(url, ns, "np")["spec"]["clusterIP"]
    assert np["IP"] == [cluster_ip] and np["IPs"] == [cluster_ip]
    assert np["Port"] == ["<unset>  80/TCP", "<unset>  443/TCP"]
    assert np["TargetPort"] == ["8080/TCP", "8443/TCP"]
    assert np["NodePort"] == [f"<unset>  {n}/TCP" for n in node_ports]
    assert "LoadBalancer Ingress" not in np
    assert describe("headless")["IP"] == ["None"]
    ext = describe("ext")
    assert ext["IP"] == ["<none>"] and "IPs" not in ext and "NodePort" not in ext
    assert describe("lb")["LoadBalancer Ingress"] == ["<pending>"]
    set_ingress(url, ns, "lb", *INGRESS)
    assert describe("lb")["LoadBalancer Ingress"] == [", ".join(INGRESS)]
    set_ingress(url, ns, "lb")  # the load balancer is gone
    assert describe("lb")["LoadBalancer Ingress"] == ["<pending>"]


def test_history_and_events_show_node_ports(url: str, kinds: str) -> None:
    ns = kinds
    node_ports = [p["nodePort"] for p in get_object(url, ns, "np")["spec"]["ports"]]
    spec = f"80:8080/TCP(nodePort={node_ports[0]}),443:8443/TCP(nodePort={node_ports[1]})"
    history = skyctl("history", "svc", "np", "-n", ns, url=url)
    assert spec in history.lines[1].split()
    events = skyctl("events", "-n", ns, "--for", "service/np", url=url)
    assert f"ports={spec}" in events.lines[1].split()


def test_watch_prints_modified_when_the_status_arrives(url: str, ns: str) -> None:
    assert (
        skyctl("create", "svc", "lb", "-n", ns, "-t", "LoadBalancer", "-p", "80", url=url).code == 0
    )
    watcher = subprocess.Popen(
        [sys.executable, "-m", "cli", "get", "svc", "-w", "-n", ns],
        env={**os.environ, "NATS_URL": url},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines = Lines(watcher)
    try:
        assert lines.next().split() == ["EVENT", *HEADER]
        added = lines.next().split()
        assert added[:2] == ["ADDED", "lb"] and added[4] == "<pending>"
        set_ingress(url, ns, "lb", INGRESS[0])
        modified = lines.next().split()
        assert modified[:4] == ["MODIFIED", "lb", "LoadBalancer", added[3]]
        assert modified[4:6] == [INGRESS[0], added[5]]
    finally:
        watcher.send_signal(signal.SIGINT)
        _, err = watcher.communicate(timeout=10)
    assert watcher.returncode == 0 and err == ""


# -- the cells, without a server ----------------------------------------------------------

ORIGIN = Origin(id="u1", time=datetime(2026, 11, 25, tzinfo=UTC), actor="ops")


def record_of(service: Service, status: ServiceStatus | None = None) -> ServiceRecord:
    event = ServiceCreated(id="u1", time=ORIGIN.time, actor="ops", service=service)
    record = ServiceRecord.from_event(7, event, encode(event))
    if status is None:
        return record
    report = ServiceStatusSet(
        id="u2",
        time=ORIGIN.time,
        actor="lb",
        namespace=service.namespace,
        name=service.name,
        uid="u1",
        revision=7,
        status=status,
    )
    return record.with_status(report)


def test_cells_without_a_server() -> None:
    lb = Service(
        namespace="shop",
        name="web",
        type=ServiceType.LOAD_BALANCER,
        cluster_ip="10.96.0.10",
        ports=(
            Port(port=80, target_port=8080, node_port=30080),
            Port(port=53, target_port=5353, protocol=Protocol.UDP, node_port=30053),
        ),
    )
    assert ports_cell(lb) == "80:30080/TCP,53:30053/UDP"
    assert spec_cells(lb)[2] == "80:8080/TCP(nodePort=30080),53:5353/UDP(nodePort=30053)"
    assert external_ip_cell(lb, None) == "<pending>"
    status = ServiceStatus(load_balancer=LoadBalancerStatus(ingress=(Ingress(ip="192.0.2.1"),)))
    now = datetime(2026, 11, 25, 0, 5, tzinfo=UTC)
    assert service_row(record_of(lb, status), all_namespaces=True, now=now) == [
        "shop",
        "web",
        "LoadBalancer",
        "10.96.0.10",
        "192.0.2.1",
        "80:30080/TCP,53:30053/UDP",
        "5m",
    ]
    assert service_object(record_of(lb, status))["status"] == {
        "loadBalancer": {"ingress": [{"ip": "192.0.2.1"}]}
    }
    bare = Service(name="old", ports=(Port(port=80, target_port=80),))  # from before addresses
    assert service_row(record_of(bare), now=now)[1:5] == ["ClusterIP", "<none>", "<none>", "80/TCP"]
    assert "clusterIP" not in service_object(record_of(bare))["spec"]
    # An update that leaves a LoadBalancer also drops what its controller reported.
    cip = lb.model_copy(
        update={"type": ServiceType.CLUSTER_IP, "ports": (Port(port=80, target_port=8080),)}
    )
    update = ServiceUpdated(id="u3", time=now, actor="ops", service=cip, created=ORIGIN)
    assert event_changes(update, lb, status)[0] == "type: LoadBalancer -> ClusterIP"
    assert event_changes(update, lb, status)[-1] == "status: 192.0.2.1 -> <none>"


async def test_describe_shows_each_ports_ready_endpoints(url: str, ns: str) -> None:
    """kubectl's ``Endpoints:`` line under each port: ready ``address:targetPort``."""
    from events import Port, Service
    from events.task import Task

    def endpoints_lines() -> list[str]:
        result = skyctl("describe", "svc", "web", "-n", ns, url=url)
        assert result.code == 0, result.err
        return [
            line.split(":", 1)[1].strip() for line in result.lines if line.startswith("Endpoints:")
        ]

    async with await Registry.connect(url) as registry:
        ports = (Port(port=80, target_port=8080), Port(port=443, target_port=8443))
        await registry.create(
            Service(namespace=ns, name="web", selector={"app": "web"}, ports=ports)
        )
        assert await asyncio.to_thread(endpoints_lines) == ["<none>", "<none>"]
        tasks = [
            Task(namespace=ns, name="w1", labels={"app": "web"}, address="10.9.0.1"),
            Task(namespace=ns, name="w2", labels={"app": "web"}, address="10.9.0.2"),
            Task(namespace=ns, name="w3", labels={"app": "web"}, address="10.9.0.3", ready=False),
        ]
        await (await registry.announcer()).announce(tasks, ttl=30)
        assert await asyncio.to_thread(endpoints_lines) == [
            "10.9.0.1:8080,10.9.0.2:8080",
            "10.9.0.1:8443,10.9.0.2:8443",
        ]
