"""Prepared responses: what ``respond`` copies from a prepared rendering is what
``render`` (dnspython, every time) answers the same query, for any zone and query, plain
or hostile; and a change in the zone changes what is copied. No sockets, no NATS."""

from __future__ import annotations

from dataclasses import replace

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import Port, Service
from events.choices import Protocol
from registry.discovery.endpoints import endpoints_for
from registry.discovery.tasks import LiveTask
from registry.dns import responder
from registry.dns.responder import render, respond
from registry.dns.zone import Zone
from tests.dns.zones import big_zone, live, service, zone_with

SHORT = st.text("abcdefgh", min_size=1, max_size=6)
TYPES = (
    st.sampled_from([1, 28, 33, 255, 6, 16, 12, 5, 41, 250, 251, 252, 65]) | st.integers(0, 65535)
).map(dns.rdatatype.RdataType.make)

PORTS = (
    Port(port=80, target_port=8080, name="http"),
    Port(port=53, target_port=5353, protocol=Protocol.UDP),
)


@st.composite
def zones(draw: st.DrawFn) -> tuple[Zone, list[str]]:
    """A zone of a few services (at most 3 tasks each, so every answer is one window)
    and tasks, v4 and v6, ready or not; and names worth asking: each service's, its SRV
    names, each task's, their parents, made-up ones and one outside the domain."""
    namespaces = draw(st.lists(SHORT, min_size=1, max_size=2, unique=True))
    names: list[str] = ["skyflow.", "svc.skyflow.", "task.skyflow.", "example.com.", "x.skyflow."]
    services: list[Service] = []
    tasks: list[LiveTask] = []
    for namespace in namespaces:
        for app in draw(st.lists(SHORT, max_size=2, unique=True)):
            services.append(service(app, namespace, PORTS, {"app": app}))
            service_name = f"{app}.{namespace}.svc.skyflow."
            names += [service_name, "_http._tcp." + service_name, "_53._udp." + service_name]
            names += ["_tcp." + service_name, "_81._tcp." + service_name]
            for i in range(draw(st.integers(0, 3))):
                v6 = draw(st.booleans())
                address = f"fd00::{i + 1}" if v6 else f"10.0.{len(tasks)}.{i + 1}"
                ready = draw(st.booleans())
                task = live(f"{app}{i}", address, ready=ready, namespace=namespace)
                tasks.append(replace(task, labels={"app": app}))
                names.append(f"{app}{i}.{namespace}.task.skyflow.")
        names += [f"{namespace}.svc.skyflow.", f"nope.{namespace}.svc.skyflow."]
    zone = Zone("skyflow.")
    zone.replace([endpoints_for(s, tasks) for s in services], tasks)
    return zone, names


def spelled(draw: st.DrawFn, name: str) -> str:
    """``name`` with each letter in a random case."""
    flips = draw(st.lists(st.booleans(), min_size=len(name), max_size=len(name)))
    return "".join(c.upper() if flip else c for c, flip in zip(name, flips, strict=True))


def same(fast: bytes | None, slow: bytes | None) -> None:
    """Both dropped, or the same message: id, flags, rcode, question as asked (case
    included) and every section (records compared as sets: dnspython shuffles them)."""
    assert (fast is None) == (slow is None)
    if fast is None or slow is None:
        return
    got, want = dns.message.from_wire(fast), dns.message.from_wire(slow)
    assert got == want  # id, flags, and each section's RRsets
    assert got.rcode() == want.rcode() and got.edns == want.edns and got.payload == want.payload
    assert [q.to_text() for q in got.question] == [q.to_text() for q in want.question]
    for section in ("answer", "authority", "additional"):  # owners in the case written
        owners = [rrset.name.to_text() for rrset in getattr(got, section)]
        assert owners == [rrset.name.to_text() for rrset in getattr(want, section)]


@settings(max_examples=300, deadline=None)
@given(zones(), st.data())
def test_prepared_responses_are_what_dnspython_renders(
    zoned: tuple[Zone, list[str]], data: st.DataObject
) -> None:
    """Random zones and queries (any case, id, RD bit, type, with or without EDNS of any
    buffer size, UDP or TCP), each asked several times so the prepared copy is used:
    the same message as ``render`` gives."""
    zone, names = zoned
    for _ in range(data.draw(st.integers(1, 8))):
        name = data.draw(st.sampled_from(names))
        asked = data.draw(st.builds(spelled, st.just(data.draw), st.just(name)))
        edns = data.draw(st.sampled_from([-1, 0]))
        payload = data.draw(st.sampled_from([512, 1231, 1232, 4096]) | st.integers(0, 65535))
        query = dns.message.make_query(asked, data.draw(TYPES), use_edns=edns, payload=payload)
        query.id = data.draw(st.integers(0, 65535))
        query.flags = dns.flags.RD if data.draw(st.booleans()) else 0
        wire = query.to_wire()
        tcp = data.draw(st.booleans())
        for _ in range(3):
            same(respond(zone, wire, tcp=tcp), render(zone, wire, tcp=tcp))


def packet(header: bytes, *rest: bytes) -> bytes:
    return header + b"".join(rest)


QUESTION = b"\x03web\x04shop\x03svc\x07skyflow\x00\x00\x01\x00\x01"
OPT = b"\x00\x00\x29\x04\xd0\x00\x00\x00\x00\x00\x00"
HOSTILE = {
    "truncated header": b"\x12\x34\x01\x00\x00\x01\x00",
    "header only": b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
    "a response": packet(b"\x12\x34\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION),
    "compression loop": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", b"\x03web\xc0\x0c\x00\x01\x00\x01"
    ),
    "pointer forward": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", b"\xc0\x12\x00\x01\x00\x01"
    ),
    "two questions": packet(b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00", QUESTION * 2),
    "count 2, one question": packet(b"\x12\x34\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00", QUESTION),
    "no question": b"\x12\x34\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00",
    "class CH": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-2], b"\x00\x03"
    ),
    "class ANY": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-2], b"\x00\xff"
    ),
    "opcode NOTIFY": packet(b"\x12\x34\x21\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION),
    "opcode UPDATE": packet(b"\x12\x34\x29\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION),
    "label of 64": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
        b"\x40" + b"a" * 64,
        b"\x07skyflow\x00\x00\x01\x00\x01",
    ),
    "name of 256": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
        (b"\x3f" + b"a" * 63) * 3 + b"\x3d" + b"a" * 61 + b"\x00\x00\x01\x00\x01",
    ),
    "name of 255": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00",
        (b"\x3f" + b"a" * 63) * 3 + b"\x3c" + b"a" * 60 + b"\x00\x00\x01\x00\x01",
    ),
    "name without end": packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", b"\x03web"),
    "no type": packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-3]),
    "trailing junk": packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION, b"x"),
    "an answer in a query": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x01\x00\x00\x00\x00", QUESTION, b"\xc0\x0c" + b"\x00" * 10
    ),
    "EDNS version 1": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01", QUESTION, OPT[:6], b"\x01", OPT[7:]
    ),
    "EDNS with a cookie": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01",
        QUESTION,
        OPT[:9],
        b"\x00\x0c\x00\x0a\x00\x08",
        b"c" * 8,
    ),
    "EDNS cut short": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01", QUESTION, OPT[:8]
    ),
    "EDNS length past the end": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01", QUESTION, OPT[:9], b"\x00\x04"
    ),
    "two OPT records": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x02", QUESTION, OPT, OPT
    ),
    "OPT with a name": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01", QUESTION, b"\x01x", OPT
    ),
    "type OPT asked": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-4], b"\x00\x29\x00\x01"
    ),
    "type TSIG asked": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-4], b"\x00\xfa\x00\x01"
    ),
    "AXFR": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION[:-4], b"\x00\xfc\x00\x01"
    ),
    "oversized": packet(
        b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION, b"\x00" * 600
    ),
    "plain": packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00", QUESTION),
    "plain with EDNS": packet(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x01", QUESTION, OPT),
}


@pytest.mark.parametrize("tcp", [False, True])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_packets_get_what_dnspython_answers(name: str, tcp: bool) -> None:
    """Each odd packet, asked before and after the plain query was prepared: dropped,
    or answered as ``render`` answers it (FORMERR, NOTIMP, REFUSED, BADVERS...)."""
    zone = big_zone(3)
    wire = HOSTILE[name]
    same(respond(zone, wire, tcp=tcp), render(zone, wire, tcp=tcp))
    for _ in range(2):
        respond(zone, HOSTILE["plain"], tcp=tcp)
        respond(zone, HOSTILE["plain with EDNS"], tcp=tcp)
        same(respond(zone, wire, tcp=tcp), render(zone, wire, tcp=tcp))


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damage_to_a_prepared_query_gets_what_dnspython_answers(data: st.DataObject) -> None:
    zone = big_zone(3)
    edns = data.draw(st.sampled_from([-1, 0]))
    plain = dns.message.make_query("Web.shop.SVC.skyflow.", "A", use_edns=edns).to_wire()
    tcp = data.draw(st.booleans())
    respond(zone, plain, tcp=tcp)  # prepared
    wire = bytearray(plain)
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    damaged = bytes(wire[:cut]) + data.draw(st.binary(max_size=3))
    for _ in range(2):
        same(respond(zone, damaged, tcp=tcp), render(zone, damaged, tcp=tcp))


def addresses(wire: bytes | None) -> list[str]:
    assert wire is not None
    return [r.to_text() for rrset in dns.message.from_wire(wire).answer for r in rrset]


def test_a_change_in_endpoints_changes_the_prepared_answer() -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1")])
    query = dns.message.make_query("WEB.shop.svc.skyflow.", "A").to_wire()
    missing = dns.message.make_query("gone.shop.svc.skyflow.", "A").to_wire()
    assert addresses(respond(zone, query, tcp=False)) == ["10.0.0.1"]
    serial = dns.message.from_wire(respond(zone, missing, tcp=False) or b"").authority[0]
    assert zone.prepared  # kept: the next query copies it
    after = [live("web-1", "10.0.0.1"), live("web-2", "10.0.0.2")]
    zone.set_service(("shop", "web"), endpoints_for(service(), after))
    assert sorted(addresses(respond(zone, query, tcp=False))) == ["10.0.0.1", "10.0.0.2"]
    zone.set_service(("shop", "web"), None)
    assert dns.message.from_wire(respond(zone, query, tcp=False) or b"").rcode() == (
        dns.rcode.NXDOMAIN
    )
    again = dns.message.from_wire(respond(zone, missing, tcp=False) or b"").authority[0]
    assert again[0].serial == serial[0].serial + 2  # the SOA of a negative answer too


def test_each_record_of_a_prepared_answer_comes_first_in_turn() -> None:
    """Clients that take the first address spread over all of them, as with
    dnspython's shuffle: the prepared renderings put each record first in turn."""
    zone = big_zone(5)
    query = dns.message.make_query("web.shop.svc.skyflow.", "A").to_wire()
    firsts = [addresses(respond(zone, query, tcp=False))[0] for _ in range(10)]
    assert sorted(set(firsts)) == sorted(f"10.1.0.{i}" for i in range(1, 6))
    assert firsts[:5] == firsts[5:]


def test_a_large_service_rotates_through_the_same_windows_as_dnspython() -> None:
    """Prepared or rendered, the windows of a 300-endpoint service are the same sets,
    and together all of it."""
    zone = big_zone(300)
    query = dns.message.make_query("web.shop.svc.skyflow.", "A", use_edns=0).to_wire()
    slow = [frozenset(addresses(render(zone, query, tcp=False))) for _ in range(10)]
    fast = [frozenset(addresses(respond(zone, query, tcp=False))) for _ in range(40)]
    assert set(fast) == set(slow) and len(set(slow)) == 5  # 300 in windows of 64
    assert len(set().union(*fast)) == 300


def test_prepared_responses_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """A client asking made-up names cannot make the prepared responses grow past
    ``MAX_PREPARED``."""
    monkeypatch.setattr(responder, "MAX_PREPARED", 10)
    zone = big_zone(1)
    for i in range(50):
        wire = dns.message.make_query(f"made-up-{i}.shop.svc.skyflow.", "A").to_wire()
        assert dns.message.from_wire(respond(zone, wire, tcp=False) or b"").rcode() == (
            dns.rcode.NXDOMAIN
        )
        assert len(zone.prepared) <= 10
