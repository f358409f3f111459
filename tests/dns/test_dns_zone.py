"""DNS without a server: the zone's names and answers, and the responder's protocol
(EDNS, truncation, FORMERR) on bytes built by dnspython. No sockets, no NATS."""

from __future__ import annotations

import dns.edns
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from events import Port, Service, ServiceType
from events.choices import Protocol
from registry.discovery.endpoints import Endpoints, endpoints_for
from registry.discovery.tasks import LiveTask
from registry.dns.responder import MAX_QUERY_BYTES, UDP_PAYLOAD, respond
from registry.dns.zone import MAX_ANSWER_RECORDS, Answer, Zone, parse_domain
from tests.dns.zones import big_zone, live, service, zone_with

A, AAAA, SRV, SOA, TXT = "A", "AAAA", "SRV", "SOA", "TXT"


def ask(zone: Zone, name: str, rdtype: str) -> Answer:
    return zone.answer(dns.name.from_text(name), dns.rdatatype.from_text(rdtype))


def records(answer: Answer) -> set[str]:
    return {rdata.to_text() for rrset in answer.answer for rdata in rrset}


# -- the zone -----------------------------------------------------------------------------


def test_a_and_aaaa_are_the_ready_endpoints_and_never_the_cluster_ip() -> None:
    tasks = [
        live("web-1", "10.0.0.1"),
        live("web-2", "fd00::2"),
        live("web-3", "10.0.0.3", ready=False),
        live("other", "10.0.0.9", labels={"app": "other"}),
    ]
    zone = zone_with([service()], tasks)
    answer = ask(zone, "web.shop.svc.skyflow.", A)
    assert answer.rcode == dns.rcode.NOERROR
    assert records(answer) == {"10.0.0.1"}
    assert answer.answer[0].ttl == zone.ttl == 5
    assert records(ask(zone, "web.shop.svc.skyflow.", AAAA)) == {"fd00::2"}
    assert records(ask(zone, "web.shop.svc.skyflow.", "ANY")) == {"10.0.0.1", "fd00::2"}


def test_a_service_with_no_ready_endpoint_is_an_empty_noerror_never_servfail() -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1", ready=False)])
    answer = ask(zone, "web.shop.svc.skyflow.", A)
    assert answer.rcode == dns.rcode.NOERROR
    assert answer.answer == ()
    (soa,) = answer.authority  # negative caching for the zone's TTL (RFC 2308)
    assert soa.rdtype == dns.rdatatype.SOA and soa[0].minimum == zone.ttl
    no_selector = zone_with([service(selector={})], [])
    assert ask(no_selector, "web.shop.svc.skyflow.", A).rcode == dns.rcode.NOERROR


def test_names_that_do_not_exist_are_nxdomain_and_their_parents_exist() -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1")])
    for name in (
        "nope.shop.svc.skyflow.",
        "web.other.svc.skyflow.",
        "x.web.shop.svc.skyflow.",
        "a.b.x.web.shop.svc.skyflow.",
        "web.shop.skyflow.",
        "nope.shop.task.skyflow.",
        "x.web-1.shop.task.skyflow.",
        "other.skyflow.",
    ):
        assert ask(zone, name, A).rcode == dns.rcode.NXDOMAIN, name
        assert ask(zone, name, A).authority, name
    for name in ("shop.svc.skyflow.", "svc.skyflow.", "task.skyflow.", "shop.task.skyflow."):
        answer = ask(zone, name, A)
        assert (answer.rcode, answer.answer) == (dns.rcode.NOERROR, ()), name
    assert ask(zone, "skyflow.", SOA).answer[0].rdtype == dns.rdatatype.SOA
    assert ask(zone, "example.com.", A).rcode == dns.rcode.REFUSED
    assert ask(zone, "com.", A).rcode == dns.rcode.REFUSED


def test_srv_per_service_port_carries_the_target_port_and_the_target_address() -> None:
    ports = (
        Port(port=80, target_port=8080),
        Port(port=53, target_port=5353, protocol=Protocol.UDP),
        Port(port=53, target_port=1053, protocol=Protocol.TCP),
    )
    zone = zone_with([service(ports=ports)], [live("web-1", "10.0.0.1"), live("web-2", "fd00::2")])
    answer = ask(zone, "_80._tcp.web.shop.svc.skyflow.", SRV)
    assert records(answer) == {
        "1 1 8080 web-1.shop.task.skyflow.",
        "1 1 8080 web-2.shop.task.skyflow.",
    }
    glue = {(r.name.to_text(), rd.to_text()) for r in answer.additional for rd in r}
    assert glue == {
        ("web-1.shop.task.skyflow.", "10.0.0.1"),
        ("web-2.shop.task.skyflow.", "fd00::2"),
    }
    assert {r.split()[2] for r in records(ask(zone, "_53._udp.web.shop.svc.skyflow.", SRV))} == {
        "5353"
    }
    assert {r.split()[2] for r in records(ask(zone, "_53._tcp.web.shop.svc.skyflow.", SRV))} == {
        "1053"
    }
    everything = records(ask(zone, "web.shop.svc.skyflow.", SRV))
    assert {r.split()[2] for r in everything} == {"8080", "5353", "1053"} and len(everything) == 6
    assert ask(zone, "_80._udp.web.shop.svc.skyflow.", SRV).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "_81._tcp.web.shop.svc.skyflow.", SRV).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "_http._tcp.web.shop.svc.skyflow.", SRV).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "_80._sctp.web.shop.svc.skyflow.", SRV).rcode == dns.rcode.NXDOMAIN
    nodata = ask(zone, "_tcp.web.shop.svc.skyflow.", SRV)  # an empty non-terminal
    assert (nodata.rcode, nodata.answer) == (dns.rcode.NOERROR, ())
    assert ask(zone, "_80._tcp.web.shop.svc.skyflow.", A).answer == ()


def test_tasks_answer_their_address_ready_or_not() -> None:
    zone = zone_with([], [live("web-1", "10.0.0.1", ready=False), live("web-2", "fd00::2")])
    assert records(ask(zone, "web-1.shop.task.skyflow.", A)) == {"10.0.0.1"}
    assert ask(zone, "web-1.shop.task.skyflow.", AAAA).answer == ()
    assert records(ask(zone, "web-2.shop.task.skyflow.", AAAA)) == {"fd00::2"}
    assert ask(zone, "web-2.shop.task.skyflow.", TXT).rcode == dns.rcode.NOERROR


def test_names_match_in_any_case() -> None:
    tasks = [live("a", "10.0.0.1", namespace="Shop"), live("b", "10.0.0.2", namespace="Shop")]
    zone = zone_with([service("myService", "Shop")], tasks)
    assert records(ask(zone, "MYSERVICE.shop.SVC.Skyflow.", A)) == {"10.0.0.1", "10.0.0.2"}
    assert records(ask(zone, "A.SHOP.task.skyflow.", A)) == {"10.0.0.1"}
    assert zone.conflicts == []


def test_a_namespace_differing_only_in_case_never_injects_into_another() -> None:
    """A team owning ``SHOP`` (written before create refused upper case, or forged) gets
    nothing served under ``shop``: not its endpoints, not names shop does not have."""
    tasks = [live("web-1", "10.0.0.1"), live("web-1", "10.6.6.6", namespace="SHOP")]
    tasks += [live("evil", "10.6.6.7", namespace="SHOP", labels={})]
    services = [service(), service("web", "SHOP"), service("api", "SHOP")]
    for order in (services, services[::-1]):
        zone = zone_with(order, tasks)
        assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.0.0.1"}
        assert records(ask(zone, "_80._tcp.web.shop.svc.skyflow.", SRV)) == {
            "1 1 8080 web-1.shop.task.skyflow."
        }
        assert ask(zone, "api.shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN
        assert records(ask(zone, "web-1.shop.task.skyflow.", A)) == {"10.0.0.1"}
        assert ask(zone, "evil.shop.task.skyflow.", A).rcode == dns.rcode.NXDOMAIN
        assert zone.conflicts == [
            "service namespace SHOP, shop differ only in case: only shop is served",
            "task namespace SHOP, shop differ only in case: only shop is served",
        ]
    # The same, one change at a time, whichever comes first.
    zone = zone_with([], [])
    zone.set_service(("SHOP", "web"), endpoints_for(services[1], tasks))
    assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.6.6.6"}  # alone: served
    before = zone.conflicts_changed
    zone.set_service(("shop", "web"), endpoints_for(services[0], tasks))
    assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.0.0.1"}
    assert zone.conflicts_changed > before and len(zone.conflicts) == 1
    zone.set_service(("shop", "web"), None)
    assert zone.conflicts == []
    assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.6.6.6"}


def test_spellings_with_no_lower_case_one_are_none_of_them_served() -> None:
    tasks = [live("a", "10.0.0.1", namespace="Shop"), live("b", "10.0.0.2", namespace="Shop")]
    tasks += [live("A", "10.0.0.3", namespace="Shop", labels={"app": "other"})]
    services = [
        service("myService", "Shop"),
        service("MyService", "Shop", selector={"app": "other"}),
        service("api", "SHOP"),
        service("db", "Db"),
    ]
    zone = zone_with(services, tasks)
    assert ask(zone, "myservice.shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "api.shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN
    assert records(ask(zone, "a.shop.task.skyflow.", A)) == {"10.0.0.1"}  # lower case
    assert ask(zone, "db.db.svc.skyflow.", A).rcode == dns.rcode.NOERROR  # alone: served
    assert zone.conflicts == [
        "service namespace SHOP, Shop differ only in case: none is served (none is lower case)",
        "services in Shop MyService, myService differ only in case: none is served (none "
        "is lower case)",
        "tasks in Shop A, a differ only in case: only a is served",
    ]
    zone.set_service(("SHOP", "api"), None)
    zone.set_service(("Shop", "MyService"), None)
    zone.set_task(("Shop", "A"), None)
    assert records(ask(zone, "myservice.shop.svc.skyflow.", A)) == {"10.0.0.1", "10.0.0.2"}
    assert records(ask(zone, "a.shop.task.skyflow.", A)) == {"10.0.0.1"}
    assert zone.conflicts == []


def test_changes_replace_the_answers_built_before_them() -> None:
    web = service()
    tasks = [live("web-1", "10.0.0.1")]
    zone = zone_with([web], tasks)
    assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.0.0.1"}
    serial = zone.serial
    tasks.append(live("web-2", "10.0.0.2"))
    zone.set_service(web_key := ("shop", "web"), endpoints_for(web, tasks))
    zone.set_task(("shop", "web-2"), tasks[1])
    assert records(ask(zone, "web.shop.svc.skyflow.", A)) == {"10.0.0.1", "10.0.0.2"}
    assert records(ask(zone, "web-2.shop.task.skyflow.", A)) == {"10.0.0.2"}
    assert zone.serial == serial + 2
    zone.set_task(("shop", "web-2"), live("web-2", "10.0.0.2"))  # a renewal
    zone.set_service(web_key, endpoints_for(web, tasks))  # the same endpoints
    assert zone.serial == serial + 2
    zone.set_service(web_key, None)
    assert ask(zone, "web.shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN
    assert ask(zone, "shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN  # no service left
    assert ask(zone, "shop.task.skyflow.", A).rcode == dns.rcode.NOERROR  # tasks are
    zone.set_task(("shop", "web-1"), None)
    zone.set_task(("shop", "web-2"), None)
    zone.set_task(("shop", "never"), None)
    assert ask(zone, "shop.task.skyflow.", A).rcode == dns.rcode.NXDOMAIN


def test_made_up_names_and_types_are_not_kept() -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1")])
    for i in range(1, 200):
        ask(zone, f"_{i}._tcp.web.shop.svc.skyflow.", SRV)
        zone.answer(dns.name.from_text("web.shop.svc.skyflow."), 1000 + i)
    node = zone._services.nodes[(b"shop", b"web")]
    assert len(node.answers) == 0  # a service's records are built when it changes
    assert [len(pool.windows) for pool in node.pools[("shop", "web")].srv.values()] == [1, 0]


@pytest.mark.parametrize(
    ("text", "expected"),
    [("skyflow", "skyflow."), ("SkyFlow.", "skyflow."), ("cluster.local", "cluster.local.")],
)
def test_domains(text: str, expected: str) -> None:
    assert parse_domain(text).to_text() == expected


@pytest.mark.parametrize(
    "text",
    [".", "", "  ", "a..b", "under_score.", "-lead.", "x" * 64 + ".", "a." * 60, "a b.", "a/b."],
)
def test_bad_domains(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        parse_domain(text)


NAMES = st.sampled_from(["web", "Web", "api", "db-1", "x"])
ADDRESSES = st.one_of(
    st.integers(1, 254).map(lambda i: f"10.0.0.{i}"),
    st.integers(1, 0xFFFF).map(lambda i: f"fd00::{i:x}"),
)
TASKS = st.lists(
    st.builds(
        live,
        st.sampled_from(["t1", "t2", "T1", "t3"]),
        ADDRESSES,
        ready=st.booleans(),
        namespace=st.sampled_from(["shop", "Shop", "db"]),
        labels=st.sampled_from([{"app": "web"}, {"app": "api"}, {}]),
    ),
    max_size=8,
    unique_by=lambda t: t.key,
)
SERVICES = st.lists(
    st.builds(
        service,
        NAMES,
        st.sampled_from(["shop", "Shop", "db"]),
        selector=st.sampled_from([{"app": "web"}, {"app": "api"}, {}]),
    ),
    max_size=6,
    unique_by=lambda s: (s.namespace, s.name),
)


@settings(max_examples=200, deadline=None)
@given(SERVICES, TASKS, TASKS)
def test_changes_one_by_one_end_where_a_fresh_read_does(
    services: list[Service], before: list[LiveTask], after: list[LiveTask]
) -> None:
    """The feed applies changes one at a time; whatever their order, the zone answers as
    one built from the state they lead to."""
    incremental = zone_with(services, before)
    for name in ("web.shop.svc.skyflow.", "t1.shop.task.skyflow."):
        ask(incremental, name, A)  # build (and keep) answers the changes must replace
    for key in {t.key for t in before} | {t.key for t in after}:
        incremental.set_task(key, next((t for t in after if t.key == key), None))
    for s in services:
        incremental.set_service((s.namespace, s.name), endpoints_for(s, after))
    fresh = zone_with(services, after)
    for s in services:
        for rdtype in (A, AAAA, SRV):
            name = f"{s.name}.{s.namespace}.svc.skyflow."
            got, want = ask(incremental, name, rdtype), ask(fresh, name, rdtype)
            assert (got.rcode, records(got)) == (want.rcode, records(want))
    for t in before + after:
        name = f"{t.name}.{t.namespace}.task.skyflow."
        got, want = ask(incremental, name, A), ask(fresh, name, A)
        assert (got.rcode, records(got)) == (want.rcode, records(want))

    def ready(service: Service) -> set[str]:
        return {
            a.address
            for a in endpoints_for(service, after).addresses
            if a.ready and ":" not in a.address
        }

    for s in services:  # exactly one service's ready endpoints, or nothing: never merged
        got = ask(fresh, f"{s.name}.{s.namespace}.svc.skyflow.", A)
        if got.rcode == dns.rcode.NOERROR and records(got):
            assert any(records(got) == ready(o) for o in services)


LABELS = st.lists(
    st.one_of(
        st.sampled_from(["web", "shop", "svc", "task", "_80", "_tcp", "_udp", "_0", "_99999"]),
        st.binary(min_size=1, max_size=10),
    ),
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(LABELS, st.integers(0, 65535))
def test_any_name_and_type_gets_an_answer(labels: list[bytes | str], rdtype: int) -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1")])
    raw = tuple(label.encode() if isinstance(label, str) else label for label in labels)
    name = dns.name.Name((*raw, b"skyflow", b""))
    answer = zone.answer(name, rdtype)
    assert answer.rcode in (dns.rcode.NOERROR, dns.rcode.NXDOMAIN)


# -- the responder --------------------------------------------------------------------------


def reply(
    zone: Zone, query: dns.message.Message | bytes, *, tcp: bool = False
) -> dns.message.Message:
    wire = query if isinstance(query, bytes) else query.to_wire()
    out = respond(zone, wire, tcp=tcp)
    assert out is not None
    return dns.message.from_wire(out)


def test_answers_echo_the_question_and_are_authoritative() -> None:
    zone = zone_with([service()], [live("web-1", "10.0.0.1")])
    query = dns.message.make_query("Web.Shop.svc.skyflow.", A)
    response = reply(zone, query)
    assert response.id == query.id and response.question == query.question
    assert response.flags & dns.flags.AA and response.flags & dns.flags.RD
    assert not response.flags & dns.flags.RA  # not a recursive resolver
    assert [r.to_text() for r in response.answer[0]] == ["10.0.0.1"]
    assert response.answer[0].name == dns.name.from_text("web.shop.svc.skyflow.")
    outside = reply(zone, dns.message.make_query("example.com.", A))
    assert outside.rcode() == dns.rcode.REFUSED and not outside.flags & dns.flags.AA


def windows(zone: Zone, query: dns.message.Message, *, tcp: bool = False) -> list[set[str]]:
    """The records of successive answers to ``query`` until they repeat, each checked to
    fit and to be whole (no TC, never empty)."""
    seen: list[set[str]] = []
    limit = 65535 if tcp else (UDP_PAYLOAD if query.edns >= 0 else 512)
    while True:
        wire = respond(zone, query.to_wire(), tcp=tcp)
        assert wire is not None and len(wire) <= limit
        response = dns.message.from_wire(wire)
        assert not response.flags & dns.flags.TC and response.answer
        got = {r.to_text() for rrset in response.answer for r in rrset}
        got |= {r.to_text() for rrset in response.additional for r in rrset}
        if seen and got == seen[0]:
            return seen
        seen.append(got)


@pytest.mark.parametrize("count", [300, 4_100])
def test_a_large_service_is_answered_a_window_that_fits_rotating_over_all(count: int) -> None:
    """Never an empty truncated answer (above about 4,000 endpoints there was one even
    over TCP): each answer is a window of the addresses that fits, without TC (the window
    is the answer), the next query the next window, until every address had its turn."""
    zone = big_zone(count)
    everyone = {f"10.1.{i // 250}.{i % 250 + 1}" for i in range(count)}
    name = "web.shop.svc.skyflow."
    plain = windows(zone, dns.message.make_query(name, A))
    edns = windows(zone, dns.message.make_query(name, A, use_edns=0, payload=4096))
    tcp = windows(zone, dns.message.make_query(name, A), tcp=True)
    for found, most in ((plain, 29), (edns, MAX_ANSWER_RECORDS), (tcp, MAX_ANSWER_RECORDS)):
        assert set().union(*found) == everyone
        assert min(map(len, found)) > 0 and max(map(len, found)) <= most
        assert len(found) == -(-count // max(map(len, found)))  # disjoint windows
    assert max(map(len, plain)) >= 25 and max(map(len, edns)) == MAX_ANSWER_RECORDS
    # SRV: each window's targets come with their addresses, all of it fitting.
    srv = windows(zone, dns.message.make_query("_80._tcp." + name, SRV))
    targets = {r for found in srv for r in found if r.startswith("1 1 8080 ")}
    assert len(targets) == count and all(len(found) % 2 == 0 for found in srv)
    both = windows(zone, dns.message.make_query(name, "ANY", use_edns=0), tcp=True)
    assert set().union(*both) == everyone


def test_a_window_costs_the_same_whatever_the_service_holds() -> None:
    """What a query renders is bounded: the windows of a 20,000-endpoint service are no
    larger than those of one with 300, and are built once, not per query."""
    small, large = big_zone(300), big_zone(20_000)
    query = dns.message.make_query("web.shop.svc.skyflow.", A)
    for zone in (small, large):
        for _ in range(3):
            reply(zone, query)
    pools = [z._services.nodes[(b"shop", b"web")].pools[("shop", "web")] for z in (small, large)]
    assert [len(p.v4.windows) for p in pools] == [3, 3]
    sizes = [{len(w.answer[0]) for w in p.v4.windows.values()} for p in pools]
    assert sizes[0] == sizes[1] == {29}
    reply(large, query)  # the fourth query: a fourth window, kept
    assert len(pools[1].v4.windows) == 4
    zone = big_zone(3)  # small services: one answer, as before
    assert len(reply(zone, query).answer[0]) == 3


def test_what_is_not_a_query_is_dropped() -> None:
    zone = big_zone(1)
    query = dns.message.make_query("web.shop.svc.skyflow.", A)
    assert respond(zone, query.to_wire()[:11], tcp=False) is None
    assert respond(zone, b"", tcp=True) is None
    response = reply(zone, query)
    assert respond(zone, response.to_wire(), tcp=False) is None  # never answer an answer


def formerr(zone: Zone, wire: bytes) -> dns.message.Message:
    out = respond(zone, wire, tcp=False)
    assert out is not None
    response = dns.message.from_wire(out)
    assert response.rcode() == dns.rcode.FORMERR
    assert response.id == int.from_bytes(wire[:2], "big")
    return response


def test_malformed_and_oversized_queries_get_formerr() -> None:
    zone = big_zone(1)
    query = dns.message.make_query("web.shop.svc.skyflow.", A)
    wire = query.to_wire()
    formerr(zone, wire[:-3])  # cut inside the question
    formerr(zone, wire + b"junk")  # trailing bytes
    two = dns.message.make_query("web.shop.svc.skyflow.", A)
    two.question.append(
        dns.rrset.RRset(dns.name.from_text("x.skyflow."), dns.rdataclass.IN, dns.rdatatype.A)
    )
    formerr(zone, two.to_wire())
    none = dns.message.make_query("web.shop.svc.skyflow.", A)
    none.question.clear()
    formerr(zone, none.to_wire())
    padded = dns.message.make_query(
        "web.shop.svc.skyflow.",
        A,
        use_edns=0,
        options=[dns.edns.GenericOption(dns.edns.OptionType.make(65001), b"x" * MAX_QUERY_BYTES)],
    )
    assert formerr(zone, padded.to_wire()).question == []


def test_what_is_not_served_is_refused_or_not_implemented() -> None:
    zone = big_zone(1)
    update = dns.message.make_query("web.shop.svc.skyflow.", A)
    update.set_opcode(dns.opcode.NOTIFY)
    assert reply(zone, update).rcode() == dns.rcode.NOTIMP
    chaos = dns.message.make_query("version.bind.", TXT, rdclass=dns.rdataclass.CH)
    assert reply(zone, chaos).rcode() == dns.rcode.REFUSED
    assert reply(zone, dns.message.make_query("skyflow.", "AXFR")).rcode() == dns.rcode.REFUSED
    future = dns.message.make_query("web.shop.svc.skyflow.", A, use_edns=1)
    assert reply(zone, future).rcode() == dns.rcode.BADVERS
    unread = Zone("skyflow.")
    query = dns.message.make_query("web.shop.svc.skyflow.", A)
    assert reply(unread, query).rcode() == dns.rcode.SERVFAIL  # before the first read only


@settings(max_examples=500, deadline=None)
@given(st.binary(max_size=700))
def test_any_bytes_get_formerr_an_answer_or_nothing(wire: bytes) -> None:
    zone = big_zone(3)
    out = respond(zone, wire, tcp=False)
    if out is not None:
        response = dns.message.from_wire(out)
        assert response.id == int.from_bytes(wire[:2], "big")
        assert response.flags & dns.flags.QR


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_damage_to_a_real_query_gets_formerr_an_answer_or_nothing(data: st.DataObject) -> None:
    zone = big_zone(3)
    wire = bytearray(dns.message.make_query("web.shop.svc.skyflow.", A, use_edns=0).to_wire())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(wire) - 1))
        wire[at] = data.draw(st.integers(0, 255))
    cut = data.draw(st.integers(0, len(wire)))
    out = respond(zone, bytes(wire[:cut]), tcp=data.draw(st.booleans()))
    if out is not None:
        assert dns.message.from_wire(out).flags & dns.flags.QR


def test_endpoints_of_a_deleted_service_leave_with_it() -> None:
    web = service()
    zone = zone_with([web], [live("web-1", "10.0.0.1")])
    empty = Endpoints("shop", "web")
    zone.set_service(("shop", "web"), empty)
    assert ask(zone, "web.shop.svc.skyflow.", A).answer == ()
    zone.set_service(("shop", "web"), None)
    assert ask(zone, "web.shop.svc.skyflow.", A).rcode == dns.rcode.NXDOMAIN


def test_with_cluster_ips_a_service_is_its_cluster_ip_and_headless_its_endpoints() -> None:
    """As CoreDNS answers where a proxy leads cluster IPs to the endpoints."""
    ports = (
        Port(port=80, target_port=8080),
        Port(port=53, target_port=5353, protocol=Protocol.UDP),
    )
    web = service(ports=ports).model_copy(update={"cluster_ip": "10.96.0.10"})
    headless = service("db").model_copy(update={"cluster_ip": "None"})
    tasks = [live("web-1", "10.0.0.1"), live("web-2", "10.0.0.2")]
    zone = zone_with([web, headless], tasks, cluster_ips=True)
    assert records(ask(zone, "web.shop.svc.skyflow.", "A")) == {"10.96.0.10"}
    assert records(ask(zone, "web.shop.svc.skyflow.", "SRV")) == {
        "1 1 53 web.shop.svc.skyflow.",
        "1 1 80 web.shop.svc.skyflow.",
    }
    assert records(ask(zone, "_80._tcp.web.shop.svc.skyflow.", "SRV")) == {
        "1 1 80 web.shop.svc.skyflow."
    }
    assert ask(zone, "_81._tcp.web.shop.svc.skyflow.", "SRV").rcode == dns.rcode.NXDOMAIN
    assert records(ask(zone, "db.shop.svc.skyflow.", "A")) == {"10.0.0.1", "10.0.0.2"}
    # Without the flag, endpoints as before; a service gone takes its address along.
    plain = zone_with([web], tasks)
    assert records(ask(plain, "web.shop.svc.skyflow.", "A")) == {"10.0.0.1", "10.0.0.2"}
    zone.set_service(("shop", "web"), None)
    assert ask(zone, "web.shop.svc.skyflow.", "A").rcode == dns.rcode.NXDOMAIN


def test_an_external_name_service_answers_a_cname_to_its_name() -> None:
    db = Service(
        namespace="shop", name="db", type=ServiceType.EXTERNAL_NAME, external_name="db.example.com"
    )
    zone = Zone("skyflow.")
    zone.replace([endpoints_for(db, [])], [], {}, {("shop", "db"): "db.example.com"})
    for rdtype in ("A", "AAAA", "SRV", "CNAME"):
        answer = ask(zone, "db.shop.svc.skyflow.", rdtype)
        assert records(answer) == {"db.example.com."}, rdtype
        assert answer.answer[0].rdtype == dns.rdatatype.CNAME
    assert ask(zone, "_80._tcp.db.shop.svc.skyflow.", "SRV").rcode == dns.rcode.NXDOMAIN
    zone.set_service(("shop", "db"), endpoints_for(db, []), None, "other.example.org")
    assert records(ask(zone, "db.shop.svc.skyflow.", "A")) == {"other.example.org."}
