"""``skyctl`` as a user runs it: new processes against a real server."""

from __future__ import annotations

import ipaddress
import json
import time

import pytest
import yaml

from tests.helpers import last_seq, skyctl

SEED = [
    "create",
    "service",
    "myService",
    "-t",
    "ClusterIP",
    "-s",
    "app=myApp",
    "-p",
    "80:8080",
    "-c",
    "myCluster",
]


def test_seed_example_verbatim(url: str, ns: str) -> None:
    created = skyctl(*SEED, "--namespace", ns, url=url)
    assert (created.code, created.out, created.err) == (0, "service/myService created\n", "")

    got = skyctl("get", "service", "myService", "--namespace", ns, url=url)
    assert got.code == 0, got.err
    header, row = got.lines
    # kubectl's columns, and ENDPOINTS ready/total; the selector,
    # target port and cluster are in -o wide.
    assert header.split() == [
        "NAME",
        "TYPE",
        "CLUSTER-IP",
        "EXTERNAL-IP",
        "PORT(S)",
        "ENDPOINTS",
        "AGE",
    ]
    name, kind, cluster_ip, external_ip, ports, endpoints, _ = row.split()
    assert (name, kind, external_ip, ports) == ("myService", "ClusterIP", "<none>", "80/TCP")
    assert endpoints == "0/0"  # ready/total: no task with app=myApp is announced
    assert ipaddress.IPv4Address(cluster_ip) in ipaddress.IPv4Network("10.96.0.0/12")
    wide = skyctl("get", "service", "myService", "--namespace", ns, "-o", "wide", url=url)
    assert wide.lines[1].split()[7:10] == ["8080", "app=myApp", "myCluster"]

    deleted = skyctl("delete", "service", "myService", "--namespace", ns, url=url)
    assert (deleted.code, deleted.out) == (0, "service/myService deleted\n")
    gone = skyctl("get", "service", "myService", "--namespace", ns, url=url)
    assert gone.code == 1
    assert gone.err == f'error: service "myService" not found in namespace "{ns}"\n'


def test_seed_example_in_the_default_namespace(url: str) -> None:
    """The seed's lines exactly as printed, with no --namespace at all."""
    assert skyctl(*SEED, url=url).out == "service/myService created\n"
    assert "myService" in skyctl("get", "service", "myService", url=url).out
    assert "myService" in skyctl("get", "service", url=url).out
    assert skyctl("delete", "service", "myService", url=url).out == "service/myService deleted\n"


def test_aliases_and_listing(url: str, ns: str) -> None:
    for noun, name in [("service", "a"), ("services", "b"), ("svc", "c")]:
        assert skyctl("create", noun, name, "-n", ns, "-p", "80", url=url).code == 0
    listed = skyctl("get", "svc", "-n", ns, url=url)
    assert [line.split()[0] for line in listed.lines[1:]] == ["a", "b", "c"]
    assert skyctl("get", "services", "-n", ns, "-o", "name", url=url).lines == [
        "service/a",
        "service/b",
        "service/c",
    ]
    assert skyctl("delete", "svc", "a", "b", "-n", ns, url=url).lines == [
        "service/a deleted",
        "service/b deleted",
    ]


def test_repeatable_and_comma_separated_flags(url: str, ns: str) -> None:
    made = skyctl(
        "create",
        "service",
        "multi",
        "--namespace",
        ns,
        "-s",
        "app=web,tier=front",
        "-s",
        "env=prod",
        "-p",
        "80:8080",
        "-p",
        "443:8443/tcp,53/UDP",
        "--service_type",
        "nodeport",
        url=url,
    )
    assert made.code == 0, made.err
    obj = json.loads(skyctl("get", "svc", "multi", "-n", ns, "-o", "json", url=url).out)
    assert obj["kind"] == "Service"
    assert obj["metadata"]["name"] == "multi" and obj["metadata"]["namespace"] == ns
    assert obj["spec"]["type"] == "NodePort"
    assert obj["spec"]["selector"] == {"app": "web", "env": "prod", "tier": "front"}
    node_ports = [port.pop("nodePort") for port in obj["spec"]["ports"]]
    assert obj["spec"]["ports"] == [
        {"port": 80, "targetPort": 8080, "protocol": "TCP"},
        {"port": 443, "targetPort": 8443, "protocol": "TCP"},
        {"port": 53, "targetPort": 53, "protocol": "UDP"},
    ]
    assert len(set(node_ports)) == 3 and all(30000 <= n <= 32767 for n in node_ports)


def test_output_formats(url: str, ns: str) -> None:
    skyctl("create", "svc", "web", "-n", ns, "-p", "80", url=url)
    listing = yaml.safe_load(skyctl("get", "svc", "-n", ns, "-o", "yaml", url=url).out)
    assert listing["kind"] == "List"
    assert [i["metadata"]["name"] for i in listing["items"]] == ["web"]
    wide = skyctl("get", "svc", "-n", ns, "-o", "wide", url=url).lines
    assert wide[0].split()[-6:] == [
        "TARGET-PORTS",
        "SELECTOR",
        "CLUSTER",
        "REVISION",
        "CREATED-BY",
        "PROOF",
    ]
    assert "@" in wide[1].split()[-2] and wide[1].split()[-1] == "-"  # nothing signed: no error
    created = skyctl("create", "svc", "api", "-n", ns, "-o", "json", url=url)
    assert json.loads(created.out)["metadata"]["name"] == "api"


def test_all_namespaces(url: str, ns: str) -> None:
    other = ns + "-b"
    skyctl("create", "svc", "x", "-n", ns, url=url)
    skyctl("create", "svc", "y", "-n", other, url=url)
    listed = skyctl("get", "svc", "-A", url=url).lines
    assert listed[0].split()[:3] == ["NAMESPACE", "NAME", "TYPE"]  # kubectl's -A
    rows = [line.split()[:2] for line in listed[1:]]
    assert [ns, "x"] in rows and [other, "y"] in rows
    assert skyctl("get", "svc", "x", "-A", url=url).code == 2


def test_empty_namespace_says_so(url: str, ns: str) -> None:
    result = skyctl("get", "svc", "-n", ns, url=url)
    assert (result.code, result.out) == (0, "")
    assert result.err == f"No resources found in {ns} namespace.\n"
    assert json.loads(skyctl("get", "svc", "-n", ns, "-o", "json", url=url).out)["items"] == []


def test_name_can_be_recreated_after_delete(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "again", "-n", ns, "-p", "80", url=url).code == 0
    assert skyctl("delete", "svc", "again", "-n", ns, url=url).code == 0
    assert skyctl("create", "svc", "again", "-n", ns, "-p", "81", url=url).code == 0
    assert " 81/TCP " in skyctl("get", "svc", "again", "-n", ns, url=url).out


def test_ignore_not_found(url: str, ns: str) -> None:
    result = skyctl("delete", "svc", "ghost", "-n", ns, "--ignore-not-found", url=url)
    assert (result.code, result.out, result.err) == (0, "", "")


BAD_INPUT = [
    (["create", "svc", "myService"], 1, 'service "myService" already exists in namespace'),
    (["delete", "svc", "ghost"], 1, 'service "ghost" not found in namespace'),
    (["get", "svc", "ghost"], 1, 'service "ghost" not found in namespace'),
    (["create", "svc", "x", "-t", "Headless"], 2, 'invalid service type "Headless"'),
    (["create", "svc", "x", "-p", "0"], 2, 'invalid port "0"'),
    (["create", "svc", "x", "-p", "70000"], 2, 'invalid port "70000"'),
    (["create", "svc", "x", "-p", "http"], 2, 'invalid port "http"'),
    (["create", "svc", "x", "-p", "80:99999"], 2, 'invalid port "80:99999"'),
    (["create", "svc", "x", "-s", "app"], 2, 'invalid selector "app"'),
    (["create", "svc", "x", "-s", "app = web"], 2, 'invalid selector "app = web"'),
    (["create", "svc", "my_service"], 2, 'invalid name "my_service"'),
    (["create", "svc", "a" * 64], 2, f'invalid name "{"a" * 64}"'),
    (["create", "svc", "x", "--namespace", "bad.ns"], 2, 'invalid namespace "bad.ns"'),
    (["create", "svc", "x", "-c", "my cluster"], 2, 'invalid cluster "my cluster"'),
    (["get", "svc", "-o", "xml"], 2, "'xml' is not one of"),
    (["create", "svc"], 2, "Missing argument"),
    (["create", "svc", "x", "--bogus"], 2, "No such option: --bogus"),
]


@pytest.mark.parametrize(
    ("args", "code", "message"), BAD_INPUT, ids=[" ".join(a) for a, _, _ in BAD_INPUT]
)
def test_bad_input_is_one_line_and_writes_nothing(
    url: str, ns: str, args: list[str], code: int, message: str
) -> None:
    skyctl("create", "svc", "myService", "-n", ns, url=url)
    before = last_seq(url)
    if "--namespace" not in args:
        args = [*args, "-n", ns]
    result = skyctl(*args, url=url)
    assert result.code == code
    assert result.out == ""
    assert result.err.startswith("error: ") and message in result.err
    assert result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    assert last_seq(url) == before


def test_unreachable_server_fails_fast_naming_the_url() -> None:
    dead = "nats://127.0.0.1:1"
    for args in (SEED, ["get", "svc"], ["delete", "svc", "x"], ["get", "svc", "-w"]):
        started = time.monotonic()
        result = skyctl(*args, url=None, env={"NATS_URL": dead})
        assert time.monotonic() - started < 5
        assert result.code == 3
        assert result.err.startswith(f"error: cannot reach NATS at {dead}")
        assert result.err.count("\n") == 1 and "Traceback" not in result.err


def test_server_flag_beats_environment(url: str, ns: str) -> None:
    result = skyctl(
        "get", "svc", "-n", ns, "--server", url, url=None, env={"NATS_URL": "nats://127.0.0.1:1"}
    )
    assert result.code == 0, result.err


def test_help_shows_the_seed_options() -> None:
    out = skyctl("create", "service", "--help", url=None).out
    for option in [
        "--namespace",
        "--service_type",
        "--selector",
        "--ports",
        "--cluster",
        "-t",
        "-s",
        "-p",
        "-c",
        "NAME",
    ]:
        assert option in out
    get_help = skyctl("get", "service", "--help", url=None).out
    assert "--watch" in get_help and "--namespace" in get_help
    assert "--namespace" in skyctl("delete", "service", "--help", url=None).out
