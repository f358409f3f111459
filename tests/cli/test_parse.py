"""Flag parsing, with no server: every bad value is named in a one-line message."""

from __future__ import annotations

import pytest

from cli.parse import parse_ports, parse_selector, parse_service, parse_type
from events import Port, Protocol, ServiceType
from registry.errors import InvalidInput


def test_seed_example() -> None:
    service = parse_service(
        "myService",
        namespace="default",
        service_type="ClusterIP",
        selectors=["app=myApp"],
        ports=["80:8080"],
        cluster="myCluster",
    )
    assert service.name == "myService"
    assert service.type is ServiceType.CLUSTER_IP
    assert service.selector == {"app": "myApp"}
    assert service.ports == (Port(port=80, target_port=8080, protocol=Protocol.TCP),)
    assert service.cluster == "myCluster"


def test_repeated_flags_and_comma_lists_mean_the_same() -> None:
    assert parse_selector(["a=1", "b=2"]) == parse_selector(["a=1,b=2"]) == {"a": "1", "b": "2"}
    assert parse_ports(["80", "53/udp"]) == parse_ports(["80,53/UDP"])


def test_port_forms() -> None:
    assert parse_ports(["80"]) == [Port(port=80, target_port=80)]
    assert parse_ports(["443:8443/TCP", "53:5353/udp"]) == [
        Port(port=443, target_port=8443),
        Port(port=53, target_port=5353, protocol=Protocol.UDP),
    ]


@pytest.mark.parametrize("text", ["nodeport", "NODEPORT", "NodePort"])
def test_type_any_case(text: str) -> None:
    assert parse_type(text) is ServiceType.NODE_PORT


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["0"], 'invalid port "0": port 0 is outside 1-65535'),
        (["65536"], 'invalid port "65536": port 65536 is outside 1-65535'),
        (["80:70000"], 'invalid port "80:70000": target 70000 is outside 1-65535'),
        (["http"], "invalid port \"http\": port 'http' is not a number"),
        (["80:"], "invalid port \"80:\": target '' is not a number"),
        (["-1"], "invalid port \"-1\": port '-1' is not a number"),
        (["80/SCTP"], 'invalid port "80/SCTP": protocol must be TCP or UDP'),
        (
            ["80:1:2"],
            'invalid port "80:1:2": must be [NAME=]PORT[:TARGET][/TCP|UDP], TARGET a number '
            "or a task's port name",
        ),
        (
            [""],
            'invalid port "": must be [NAME=]PORT[:TARGET][/TCP|UDP], TARGET a number '
            "or a task's port name",
        ),
        (["80", "80:81"], 'invalid port "80:81": port 80/TCP is given twice'),
    ],
)
def test_bad_ports(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_ports(values)
    assert str(info.value).startswith(message)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (["app"], 'invalid selector "app": must be key=value'),
        (["=x"], 'invalid selector "=x": must be key=value'),
        (["app = x"], 'invalid selector "app = x": must not contain spaces'),
        (["app =x"], 'invalid selector "app =x": must not contain spaces'),
        (["a=1", "a=2"], "invalid selector \"a=2\": a is already set to '1'"),
        (["a=b=c"], "invalid selector \"a=b=c\": label value 'b=c'"),
        (["-a=b"], "invalid selector \"-a=b\": label key '-a'"),
    ],
)
def test_bad_selectors(values: list[str], message: str) -> None:
    with pytest.raises(InvalidInput) as info:
        parse_selector(values)
    assert str(info.value).startswith(message)


def test_bad_type_lists_the_choices() -> None:
    with pytest.raises(
        InvalidInput,
        match='invalid service type "Headless": must be one of '
        "ClusterIP, NodePort, LoadBalancer, ExternalName",
    ):
        parse_type("Headless")


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("name", "my_service", 'invalid name "my_service": may hold only letters'),
        ("name", "x" * 64, f'invalid name "{"x" * 64}": must be at most 63 characters'),
        ("namespace", "Prod.", 'invalid namespace "Prod.": may hold only'),
        ("cluster", "-c", 'invalid cluster "-c": may hold only'),
    ],
)
def test_bad_names(field: str, value: str, message: str) -> None:
    args = {"name": "ok", "namespace": "default", "cluster": None}
    args[field] = value
    with pytest.raises(InvalidInput) as info:
        parse_service(
            args["name"] or "",
            namespace=args["namespace"] or "",
            service_type="ClusterIP",
            selectors=[],
            ports=[],
            cluster=args["cluster"],
        )
    assert str(info.value).startswith(message)
