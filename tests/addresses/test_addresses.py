"""The pure part: which addresses a service holds, what a change keeps, takes and
gives up, the ranges, and the audit's ledger; no server."""

from __future__ import annotations

import ipaddress
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from events import (
    AddressAllocated,
    AddressReleased,
    Holder,
    Service,
    ServiceCreated,
    ServiceDeleted,
    address_subject,
    encode,
    parse_address_subject,
    utc_now,
)
from registry.addresses.allocator import record_of
from registry.addresses.holdings import (
    Address,
    Ranges,
    carried_over,
    changes,
    fill,
    held_by,
    open_slots,
)
from registry.errors import InvalidInput
from registry.log.entry import read_any
from registry.log.stored import StoredMessage
from registry.services.audit import AddressLedger

IP = "ClusterIP"
NODE = "NodePort"


def svc(**fields: object) -> Service:
    return Service.model_validate({"name": "web", **fields})


def port(number: int, node: int | None = None, protocol: str = "TCP") -> dict[str, object]:
    return {"port": number, "target_port": number, "protocol": protocol, "node_port": node}


def test_what_each_type_holds() -> None:
    assert held_by(svc(cluster_ip="10.96.0.1")) == {Address(IP, "10.96.0.1")}  # type: ignore[arg-type]
    assert held_by(svc(cluster_ip="None")) == set()
    assert held_by(svc(type="ExternalName")) == set()
    assert held_by(
        svc(type="NodePort", cluster_ip="10.96.0.2", ports=[port(80, 30080), port(53, 30053)])
    ) == {Address(IP, "10.96.0.2"), Address(NODE, "30080"), Address(NODE, "30053")}  # type: ignore[arg-type]


def test_the_model_refuses_addresses_a_type_cannot_hold() -> None:
    with pytest.raises(ValueError, match="ExternalName service has no cluster IP"):
        svc(type="ExternalName", cluster_ip="10.0.0.1")
    with pytest.raises(ValueError, match="cannot be headless"):
        svc(type="NodePort", cluster_ip="None")
    with pytest.raises(ValueError, match="has no node ports"):
        svc(ports=[port(80, 30080)])
    with pytest.raises(ValueError, match="node port 30080 is listed twice"):
        svc(type="NodePort", ports=[port(80, 30080), port(81, 30080)])
    with pytest.raises(ValueError, match="pattern"):
        svc(cluster_ip="10.0.0.01")  # one spelling per address, so one subject per address


def test_a_change_keeps_what_was_allocated() -> None:
    before = svc(type="NodePort", cluster_ip="10.96.0.9", ports=[port(80, 30080), port(443, 30443)])
    # A manifest that leaves them open keeps them, port by port.
    after = carried_over(before, svc(type="NodePort", ports=[port(80), port(8443)]))
    assert after.cluster_ip == "10.96.0.9"
    assert [p.node_port for p in after.ports] == [30080, None]
    assert open_slots(after) == [(1, NODE)]
    assert changes(before, after) == ([], [Address(NODE, "30443")])  # type: ignore[arg-type]
    # Asking for the same is no change; asking another IP is refused.
    assert carried_over(before, before) == before
    with pytest.raises(InvalidInput, match="immutable"):
        carried_over(before, svc(type="NodePort", cluster_ip="10.96.0.10"))
    # Back to ClusterIP: the node ports go, the address stays.
    plain = carried_over(before, svc(ports=[port(80)]))
    assert plain.cluster_ip == "10.96.0.9" and plain.ports[0].node_port is None
    assert changes(before, plain)[1] == [Address(NODE, "30080"), Address(NODE, "30443")]  # type: ignore[arg-type]
    # To ExternalName: everything goes.
    gone = carried_over(before, svc(type="ExternalName"))
    assert held_by(gone) == set() and len(changes(before, gone)[1]) == 3
    # Headless stays headless; a service from before addresses gets them on its next change.
    assert carried_over(svc(cluster_ip="None"), svc()).cluster_ip == "None"
    legacy = carried_over(svc(), svc(ports=[port(80)]))
    assert open_slots(legacy) == [(None, IP)]


def test_an_asked_node_port_wins_over_one_carried_to_another_port() -> None:
    before = svc(type="NodePort", cluster_ip="10.96.0.9", ports=[port(80, 30080), port(81, 30081)])
    after = carried_over(before, svc(type="NodePort", ports=[port(80), port(81, 30080)]))
    assert [p.node_port for p in after.ports] == [None, 30080]


def test_fill_puts_each_address_in_its_slot() -> None:
    open_ = svc(type="LoadBalancer", ports=[port(80), port(443, 30443)])
    assert open_slots(open_) == [(None, IP), (0, NODE)]
    done = fill(open_, {None: Address(IP, "10.96.1.1"), 0: Address(NODE, "31000")})  # type: ignore[arg-type]
    assert done.cluster_ip == "10.96.1.1" and [p.node_port for p in done.ports] == [31000, 30443]
    assert open_slots(done) == []


@given(st.integers(min_value=8, max_value=30), st.integers(min_value=0, max_value=2**32 - 1))
def test_random_addresses_are_hosts_of_the_range(prefix: int, seed: int) -> None:
    network = ipaddress.IPv4Network((seed & ~((1 << (32 - prefix)) - 1), prefix))
    ranges = Ranges(network, 30000, 30010)
    rng = random.Random(seed)
    for _ in range(20):
        address = ranges.random(IP, rng)  # type: ignore[arg-type]
        value = ipaddress.IPv4Address(address.value)
        assert value in network and value not in (
            network.network_address,
            network.broadcast_address,
        )
        assert ranges.contains(address)
        assert 30000 <= int(ranges.random(NODE, rng).value) <= 30010  # type: ignore[arg-type]
    if prefix >= 24:
        assert len(list(ranges.every(IP))) == ranges.size(IP) == network.num_addresses - 2  # type: ignore[arg-type]


@given(st.ip_addresses(v=4), st.integers(min_value=1, max_value=65535))
def test_address_subjects_round_trip(ip: ipaddress.IPv4Address, number: int) -> None:
    for kind, value in ((IP, str(ip)), (NODE, str(number))):
        subject = address_subject(kind, value)
        assert subject.count(".") == 3 and "*" not in subject and ">" not in subject
        assert parse_address_subject(subject) == (kind, value)


def stored(seq: int, subject: str, event: object) -> StoredMessage:
    return StoredMessage(seq, subject, encode(event))  # type: ignore[arg-type]


def allocated(
    ip: str, name: str, uid: str, released: bool = False
) -> AddressAllocated | AddressReleased:
    model = AddressReleased if released else AddressAllocated
    return model(
        id=f"r{uid}{ip.replace('.', '')}{int(released)}",
        time=utc_now(),
        actor="a",
        kind=IP,
        address=ip,
        holder=Holder(namespace="default", name=name, uid=uid),
    )


def test_a_record_is_read_only_under_its_own_subject() -> None:
    record = allocated("10.96.0.1", "web", "u1")
    assert record_of(stored(1, address_subject(IP, "10.96.0.1"), record)) == record
    wrong = record_of(stored(2, address_subject(IP, "10.96.0.2"), record))
    assert isinstance(wrong, str) and "another address" in wrong
    garbage = record_of(StoredMessage(3, address_subject(IP, "10.96.0.3"), b"\xc1"))
    assert isinstance(garbage, str) and "unreadable" in garbage
    assert record_of(None) is None
    # A service event on an address subject is not an address record, and the reverse.
    created = ServiceCreated(id="u9", time=utc_now(), actor="a", service=svc())
    assert "does not belong" in str(read_any(stored(4, address_subject(IP, "10.96.0.4"), created)))
    assert "does not belong" in str(read_any(stored(5, "skyflow.svc.default.web", record)))


def test_the_ledger_finds_double_and_dangling_holds() -> None:
    ledger = AddressLedger()
    subject = address_subject(IP, "10.96.0.1")
    web = ServiceCreated(id="u1", time=utc_now(), actor="a", service=svc(cluster_ip="10.96.0.1"))
    ledger.feed(read_any(stored(1, "skyflow.svc.default.web", web)))  # type: ignore[arg-type]
    ledger.feed(read_any(stored(2, subject, allocated("10.96.0.1", "web", "u1"))))  # type: ignore[arg-type]
    assert ledger.problems() == []
    # A second service naming the same address, which the log holds for the first.
    api = ServiceCreated(
        id="u2", time=utc_now(), actor="a", service=svc(name="api", cluster_ip="10.96.0.1")
    )
    ledger.feed(read_any(stored(3, "skyflow.svc.default.api", api)))  # type: ignore[arg-type]
    assert [p.problem for p in ledger.problems()] == [
        "service default/api has cluster IP 10.96.0.1, but the log has it held by default/web "
        "(uid u1)"
    ]
    # The first deleted without a release: its address dangles.
    gone = ServiceDeleted(id="u3", time=utc_now(), actor="a", namespace="default", name="web")
    ledger.feed(read_any(stored(4, "skyflow.svc.default.web", gone)))  # type: ignore[arg-type]
    problems = [p.problem for p in ledger.problems()]
    assert any("held by default/web (uid u1), which is not a live service" in p for p in problems)
