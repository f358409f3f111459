"""What a node forwards, planned from services and endpoints (pure: no server, no kernel)."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import Port, Service, ServiceType
from events.choices import Protocol
from registry.discovery.endpoints import EndpointAddress
from registry.proxy.plan import Backend, Change, Frontend, Scope, Table, service_frontends

SCOPE = Scope(
    service_network=ipaddress.IPv4Network("10.96.0.0/12"),
    first_node_port=30000,
    last_node_port=32767,
    node_addresses=("192.0.2.10",),
    reserved=frozenset({"192.0.2.10", "127.0.0.1", "10.96.0.5"}),  # node, NATS
    reserved_ports=frozenset({("192.0.2.10", 30222)}),
)


def svc(
    cluster_ip: str | None = "10.96.0.10",
    kind: ServiceType = ServiceType.CLUSTER_IP,
    ports: tuple[Port, ...] = (Port(port=80, target_port=8080),),
    name: str = "web",
    namespace: str = "shop",
) -> Service:
    return Service(
        namespace=namespace,
        name=name,
        type=kind,
        selector={"app": name},
        ports=ports,
        cluster_ip=cluster_ip,
    )


def at(*addresses: str, **ports: int) -> list[EndpointAddress]:
    """Ready endpoints at ``addresses``, each announcing ``ports`` by name."""
    return [EndpointAddress(a, f"task-{i}", None, True, ports) for i, a in enumerate(addresses)]


def test_a_named_target_port_goes_to_each_tasks_own_port_and_skips_tasks_without_it() -> None:
    ports = (Port(port=80, target_port="http", name="web"), Port(port=81, target_port=9000))
    ready = [
        EndpointAddress("10.1.0.1", "a", None, True, {"http": 8081}),
        EndpointAddress("10.1.0.1", "b", None, True, {"http": 8082}),
        EndpointAddress("10.1.0.2", "c", None, True, {}),
    ]
    plan, problems = service_frontends(svc(ports=ports), ready, SCOPE)
    assert problems == []
    assert plan[Frontend("10.96.0.10", "tcp", 80)] == (
        Backend("10.1.0.1", 8081),
        Backend("10.1.0.1", 8082),
    )
    assert plan[Frontend("10.96.0.10", "tcp", 81)] == (
        Backend("10.1.0.1", 9000),
        Backend("10.1.0.2", 9000),
    )


def test_each_port_of_a_cluster_ip_goes_to_the_ready_endpoints_at_its_target_port() -> None:
    ports = (
        Port(port=80, target_port=8080),
        Port(port=53, target_port=5353, protocol=Protocol.UDP),
    )
    plan, problems = service_frontends(svc(ports=ports), at("10.1.0.2", "10.1.0.1"), SCOPE)
    assert problems == []
    assert plan == {
        Frontend("10.96.0.10", "tcp", 80): (Backend("10.1.0.1", 8080), Backend("10.1.0.2", 8080)),
        Frontend("10.96.0.10", "udp", 53): (Backend("10.1.0.1", 5353), Backend("10.1.0.2", 5353)),
    }


def test_no_ready_endpoint_rejects_and_ipv6_endpoints_are_not_forwarded_to_ipv4() -> None:
    plan, _ = service_frontends(svc(), at("fd00::1", "not-an-address"), SCOPE)
    assert plan == {Frontend("10.96.0.10", "tcp", 80): ()}


def test_node_ports_on_the_nodes_addresses_and_ingress_ips_from_status() -> None:
    ports = (Port(port=80, target_port=8080, node_port=30080),)
    plan, problems = service_frontends(
        svc(kind=ServiceType.LOAD_BALANCER, ports=ports), at("10.1.0.1"), SCOPE, ["203.0.113.7"]
    )
    assert problems == []
    assert set(plan) == {
        Frontend("10.96.0.10", "tcp", 80),
        Frontend("203.0.113.7", "tcp", 80),
        Frontend("192.0.2.10", "tcp", 30080),
    }


@pytest.mark.parametrize(
    ("cluster_ip", "why"),
    [
        ("10.95.255.1", "outside the service range"),
        ("10.96.0.5", "this node's or the NATS server's"),  # the NATS server
        ("127.0.0.1", "loopback"),
        ("0.0.0.0", "loopback, unspecified"),
        ("224.0.0.1", "multicast"),
    ],
)
def test_a_cluster_ip_outside_the_registrys_own_addresses_is_never_forwarded(
    cluster_ip: str, why: str
) -> None:
    plan, problems = service_frontends(svc(cluster_ip=cluster_ip), at("10.1.0.1"), SCOPE)
    assert plan == {}
    assert len(problems) == 1 and why in problems[0] and "shop/web" in problems[0]


@pytest.mark.parametrize("ingress", ["192.0.2.10", "127.0.0.2", "10.96.0.99", "fd00::1"])
def test_an_ingress_ip_on_the_node_loopback_in_the_range_or_not_ipv4_is_refused(
    ingress: str,
) -> None:
    plan, problems = service_frontends(
        svc(kind=ServiceType.LOAD_BALANCER), at("10.1.0.1"), SCOPE, [ingress]
    )
    assert Frontend(ingress, "tcp", 80) not in plan and len(problems) == 1


def test_node_ports_outside_the_range_or_where_nats_listens_are_refused() -> None:
    for node_port, why in ((29999, "outside the node-port range"), (30222, "NATS server")):
        ports = (Port(port=80, target_port=8080, node_port=node_port),)
        plan, problems = service_frontends(
            svc(kind=ServiceType.NODE_PORT, ports=ports), at("10.1.0.1"), SCOPE
        )
        assert set(plan) == {Frontend("10.96.0.10", "tcp", 80)}
        assert len(problems) == 1 and why in problems[0]


def test_headless_and_external_name_services_are_not_proxied() -> None:
    assert service_frontends(svc(cluster_ip="None"), at("10.1.0.1"), SCOPE) == ({}, [])
    external = Service(namespace="shop", name="db", type=ServiceType.EXTERNAL_NAME)
    assert service_frontends(external, at(), SCOPE) == ({}, [])


def test_the_table_changes_only_what_a_service_changed() -> None:
    table = Table()
    a = Frontend("10.96.0.10", "tcp", 80)
    b = Frontend("10.96.0.11", "tcp", 80)
    one, two = (Backend("10.1.0.1", 8080),), (Backend("10.1.0.1", 8080), Backend("10.1.0.2", 8080))
    assert table.update(("shop", "a"), {a: one}) == [Change(a, None, one)]
    assert table.update(("shop", "b"), {b: ()}) == [Change(b, None, ())]
    assert table.update(("shop", "a"), {a: two}) == [Change(a, one, two)]
    assert table.update(("shop", "a"), {a: two}) == []
    assert table.update(("shop", "a"), {}) == [Change(a, two, None)]
    assert table.effective() == {b: ()}


def test_a_frontend_two_services_claim_is_forwarded_for_neither() -> None:
    """Only a write around the allocator gives two live services one address: forwarding
    it to either would let one team take the other's traffic."""
    table = Table()
    a = Frontend("10.96.0.10", "tcp", 80)
    mine, theirs = (Backend("10.1.0.1", 8080),), (Backend("10.6.6.6", 8080),)
    table.update(("shop", "web"), {a: mine})
    assert table.update(("evil", "copy"), {a: theirs}) == [Change(a, mine, None)]
    assert table.effective() == {} and table.conflicts() == {a: [("evil", "copy"), ("shop", "web")]}
    assert table.update(("evil", "copy"), {}) == [Change(a, None, mine)]  # theirs gone: mine again


frontends = st.builds(
    Frontend,
    st.sampled_from(["10.96.0.1", "10.96.0.2", "10.96.0.3"]),
    st.sampled_from(["tcp", "udp"]),
    st.sampled_from([80, 443]),
)
backends = st.lists(
    st.builds(Backend, st.sampled_from(["10.1.0.1", "10.1.0.2"]), st.just(8080)), max_size=2
).map(lambda b: tuple(sorted(set(b))))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]), st.dictionaries(frontends, backends, max_size=3)
        ),
        max_size=12,
    )
)
def test_applying_each_change_ends_where_a_fresh_plan_of_the_last_state_is(
    updates: list[tuple[str, dict[Frontend, tuple[Backend, ...]]]],
) -> None:
    table = Table()
    applied: dict[Frontend, tuple[Backend, ...]] = {}
    last: dict[tuple[str, str], dict[Frontend, tuple[Backend, ...]]] = {}
    for name, plan in updates:
        last[("ns", name)] = plan
        for change in table.update(("ns", name), plan):
            assert applied.get(change.frontend) == change.before
            if change.after is None:
                del applied[change.frontend]
            else:
                applied[change.frontend] = change.after
    fresh = Table()
    fresh.replace(last.items())
    assert applied == fresh.effective() == table.effective()
