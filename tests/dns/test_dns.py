"""``skyctl dns`` against a real server, asked by dnspython's resolver and query functions
(a client this project does not write): announce and answer, SIGKILL and gone, SRV ports,
300 endpoints a window at a time, hostile bytes, a NATS outage, bad input, hostile TCP
connections, a 20,000-endpoint service. Task TTLs are 2 s to keep this quick."""

from __future__ import annotations

import asyncio
import re
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from datetime import UTC, datetime

import dns.asyncquery
import dns.asyncresolver
import dns.exception
import dns.flags
import dns.message
import dns.rcode
import dns.resolver
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cli.dataplane import parse_domain_flag, parse_listen
from events import (
    Port,
    Service,
    ServiceCreated,
    ServiceType,
    encode,
    new_event_id,
    subject_for,
    utc_now,
)
from events.choices import Protocol
from events.task import Task
from registry.client import Registry
from registry.dns.zone import MAX_ANSWER_RECORDS
from registry.errors import InvalidInput
from registry.jetstream.server import NatsServer
from tests.helpers import Lines, raw_nats, raw_publish, skyctl, start

DOMAIN = "skyflow."
_SERVING = re.compile(r"^dns: serving \S+ on 127\.0\.0\.1:(\d+) ")


async def start_dns(url: str, *flags: str) -> tuple[subprocess.Popen[str], int]:
    """``skyctl dns`` on a free port; its port once it has read the registry."""
    proc = start("dns", "--listen", "127.0.0.1:0", *flags, url=url)
    lines = Lines(proc)
    try:
        await lines.wait_for(lambda line: _SERVING.match(line) is not None)
    except AssertionError:
        if proc.poll() is None:
            raise  # still reading the registry
        assert proc.stderr is not None
        raise AssertionError(f"skyctl dns exited {proc.returncode}: {proc.stderr.read()}") from None
    (port,) = [int(m.group(1)) for _, line in lines.lines if (m := _SERVING.match(line))]
    return proc, port


def resolver(port: int) -> dns.asyncresolver.Resolver:
    ask = dns.asyncresolver.Resolver(configure=False)
    ask.nameservers = ["127.0.0.1"]
    ask.port = port
    ask.timeout = ask.lifetime = 2.0
    return ask


async def answer(port: int, name: str, rdtype: str = "A") -> set[str] | str:
    """The records' texts, or what the resolver raised instead: NXDOMAIN, NoAnswer, ..."""
    try:
        found = await resolver(port).resolve(name, rdtype)
    except dns.exception.DNSException as exc:
        return type(exc).__name__
    return {rdata.to_text() for rdata in found}


async def until_answer(
    port: int, name: str, wanted: set[str] | str, rdtype: str = "A", timeout: float = 10.0
) -> float:
    """Seconds until ``name`` answers ``wanted``."""
    started = time.monotonic()
    while (got := await answer(port, name, rdtype)) != wanted:
        assert time.monotonic() - started < timeout, f"{name} {rdtype}: {got}, not {wanted}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


def web(ns: str, ports: tuple[Port, ...] = (Port(port=80, target_port=8080),)) -> Service:
    return Service(namespace=ns, name="web", selector={"app": "web"}, ports=ports)


def task(ns: str, name: str, address: str, *, ready: bool = True, app: str = "web") -> Task:
    return Task(namespace=ns, name=name, labels={"app": app}, address=address, ready=ready)


async def test_announce_answer_and_a_killed_task_is_gone_within_ttl_plus_1s(
    url: str, ns: str, report: Callable[[str], None]
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        dns_proc, port = await start_dns(url)
        service, victim = f"web.{ns}.svc.{DOMAIN}", f"victim.{ns}.task.{DOMAIN}"
        assert await answer(port, service) == "NoAnswer"  # live, no endpoint: empty NOERROR
        flags = ["-n", ns, "--labels", "app=web", "--ttl", "2s"]
        killed = start("announce", "task", "victim", "--address", "10.9.0.1", *flags, url=url)
        async with registry.announce(task(ns, "stay", "10.9.0.2"), ttl=10):
            announced = await until_answer(port, service, {"10.9.0.1", "10.9.0.2"})
            assert await answer(port, victim) == {"10.9.0.1"}
            killed.kill()
            gone = await until_answer(port, service, {"10.9.0.2"}, timeout=5)
            assert gone <= 3.0, f"killed task answered for {gone:.2f} s (TTL 2 s)"
            assert await answer(port, victim) == "NXDOMAIN"
        await until_answer(port, service, "NoAnswer", timeout=2)  # withdrawn: at once
        await registry.delete(ns, "web")
        await until_answer(port, service, "NXDOMAIN", timeout=2)
        assert dns_proc.poll() is None
    report(
        f"dns: SIGKILLed announcer (TTL 2 s) gone from the answers {gone:.2f} s after the "
        f"kill; a new task answered {announced:.2f} s after its announcer started"
    )


async def test_srv_carries_each_service_ports_target_port(url: str, ns: str) -> None:
    ports = (
        Port(port=80, target_port=8080),
        Port(port=53, target_port=5353, protocol=Protocol.UDP),
        Port(port=53, target_port=1053, protocol=Protocol.TCP),
    )
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns, ports))
        await registry.create(Service(namespace=ns, name="idle", selector={"app": "idle"}))
        tasks = [
            task(ns, "web-1", "10.8.0.1"),
            task(ns, "web-2", "fd00::8:2"),
            task(ns, "web-3", "10.8.0.3", ready=False),
            task(ns, "idle-1", "10.8.0.9", ready=False, app="idle"),
        ]
        await (await registry.announcer()).announce(tasks, ttl=10)
        _, port = await start_dns(url)
        targets = {f"web-1.{ns}.task.{DOMAIN}", f"web-2.{ns}.task.{DOMAIN}"}
        for label, target_port in (("_80._tcp", 8080), ("_53._udp", 5353), ("_53._tcp", 1053)):
            name = f"{label}.web.{ns}.svc.{DOMAIN}"
            await until_answer(port, name, {f"1 1 {target_port} {t}" for t in targets}, "SRV")
        assert await answer(port, f"_80._udp.web.{ns}.svc.{DOMAIN}", "SRV") == "NXDOMAIN"
        assert await answer(port, f"web-1.{ns}.task.{DOMAIN}") == {"10.8.0.1"}
        assert await answer(port, f"web-2.{ns}.task.{DOMAIN}", "AAAA") == {"fd00::8:2"}
        assert await answer(port, f"web-3.{ns}.task.{DOMAIN}") == {"10.8.0.3"}  # not ready
        assert await answer(port, f"web.{ns}.svc.{DOMAIN}") == {"10.8.0.1"}
        assert await answer(port, f"idle.{ns}.svc.{DOMAIN}") == "NoAnswer"  # never SERVFAIL
        assert await answer(port, f"nope.{ns}.svc.{DOMAIN}") == "NXDOMAIN"
        # The zone is followed live: a service created now answers without a restart.
        await registry.create(Service(namespace=ns, name="late", selector={"app": "web"}))
        await until_answer(port, f"late.{ns}.svc.{DOMAIN}", {"10.8.0.1"}, timeout=3)


async def test_300_endpoints_are_answered_a_window_at_a_time_over_udp_and_tcp(
    url: str, ns: str
) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        tasks = [task(ns, f"web-{i}", f"10.7.{i // 200}.{i % 200 + 1}") for i in range(300)]
        await (await registry.announcer()).announce(tasks, ttl=30)
        _, port = await start_dns(url)
        name = f"web.{ns}.svc.{DOMAIN}"
        expected = {t.address for t in tasks}
        seen: set[str] = set()
        for use_edns, tcp, limit in ((-1, False, 512), (0, False, 1232), (-1, True, 65535)):
            query = dns.message.make_query(name, "A", use_edns=use_edns, payload=4096)
            ask = dns.asyncquery.tcp if tcp else dns.asyncquery.udp
            for _ in range(3):
                response = await ask(query, "127.0.0.1", port=port, timeout=2)
                assert not response.flags & dns.flags.TC and len(response.to_wire()) <= limit
                got = {r.to_text() for r in response.answer[0]}
                assert 25 <= len(got) <= MAX_ANSWER_RECORDS and got <= expected
                seen |= got
        assert len(seen) > 200  # the windows rotate over the endpoints
        # A resolver (which would retry over TCP on TC) takes the window it is given.
        taken = await answer(port, name)
        assert isinstance(taken, set) and taken <= expected and len(taken) >= 25


def exchange_udp(port: int, wire: bytes) -> bytes | None:
    """Send ``wire`` as one datagram; the reply, or None if none comes within 0.3 s."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(0.3)
        sock.sendto(wire, ("127.0.0.1", port))
        try:
            return sock.recv(65535)
        except TimeoutError:
            return None


def exchange_tcp(port: int, framed: bytes) -> bytes:
    """Send bytes on a new TCP connection; everything the server sends back until it
    closes the connection or 1 s passes."""
    with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
        sock.sendall(framed)
        sock.shutdown(socket.SHUT_WR)
        received = b""
        try:
            while chunk := sock.recv(65535):
                received += chunk
        except TimeoutError:
            pass
        return received


def formerr_or_nothing(reply: bytes | None) -> None:
    if reply is not None:
        response = dns.message.from_wire(reply)
        assert response.flags & dns.flags.QR
        assert response.rcode() == dns.rcode.FORMERR


async def test_malformed_and_oversized_queries_get_formerr_or_nothing(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        await (await registry.announcer()).announce([task(ns, "web-1", "10.6.0.1")], ttl=10)
        proc, port = await start_dns(url)
        name = f"web.{ns}.svc.{DOMAIN}"
        good = dns.message.make_query(name, "A").to_wire()
        hostile = [
            b"",
            b"\x00",
            good[:11],
            good[:-3],
            good + b"trailing",
            bytes(range(256)) * 2,
            good[:2] + b"\x01\x00\xff\xff" + good[6:],  # 65535 questions claimed
            good[:12] + b"\x3f" + b"a" * 63 + b"\xc0\x0c" * 10,  # a compression loop
            good[:12] + bytes(4000),  # oversized
        ]
        for wire in hostile:
            formerr_or_nothing(await asyncio.to_thread(exchange_udp, port, wire))
        for framed in (
            len(good[:-3]).to_bytes(2, "big") + good[:-3],
            (65535).to_bytes(2, "big") + bytes(4000),  # longer than sent, then closed
            b"\x00\x02\x00",
            (5000).to_bytes(2, "big") + good[:12] + bytes(4988),
        ):
            replies = await asyncio.to_thread(exchange_tcp, port, framed)
            if replies:
                length = int.from_bytes(replies[:2], "big")
                formerr_or_nothing(replies[2 : 2 + length])
        # Still answering, over both, and still running.
        assert await answer(port, name) == {"10.6.0.1"}
        query = dns.message.make_query(name, "A")
        tcp = await dns.asyncquery.tcp(query, "127.0.0.1", port=port, timeout=2)
        assert [r.to_text() for r in tcp.answer[0]] == ["10.6.0.1"]
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.to_thread(proc.communicate, timeout=10)
        assert proc.returncode == 0 and "Traceback" not in err, err


async def test_answers_keep_the_last_known_endpoints_while_nats_is_away(
    fresh_server: NatsServer, report: Callable[[str], None]
) -> None:
    url, ns = fresh_server.url, "shop"
    name = f"web.{ns}.svc.{DOMAIN}"
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        await (await registry.announcer()).announce([task(ns, "web-1", "10.5.0.1")], ttl=30)
        proc, port = await start_dns(url)
        assert await answer(port, name) == {"10.5.0.1"}
        fresh_server.kill()
        down_at = time.monotonic()
        while time.monotonic() - down_at < 3.0:
            assert await answer(port, name) == {"10.5.0.1"}
            assert await answer(port, f"web-1.{ns}.task.{DOMAIN}") == {"10.5.0.1"}
            await asyncio.sleep(0.1)
        fresh_server.start()
        back_at = time.monotonic()
        async with await Registry.connect(url) as again:
            await (await again.announcer()).announce([task(ns, "web-2", "10.5.0.2")], ttl=30)
            caught_up = await until_answer(port, name, {"10.5.0.1", "10.5.0.2"}, timeout=10)
        assert proc.poll() is None
    report(
        f"dns: NATS down {back_at - down_at:.1f} s, answers kept the last known endpoints; a "
        f"task announced after its return answered {caught_up:.2f} s later"
    )


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (["--listen", "8600"], 'invalid listen "8600"'),
        (["--listen", "localhost:http"], 'invalid listen "localhost:http"'),
        (["--listen", "127.0.0.1:65536"], 'invalid listen "127.0.0.1:65536"'),
        (["--listen", "::1:8600"], 'invalid listen "::1:8600"'),
        (["--listen", "example.com:53"], 'invalid listen "example.com:53"'),
        (["--listen", "192.0.2.1:8600"], 'invalid listen "192.0.2.1:8600": is not a loopback'),
        (["--listen", "0.0.0.0:8600"], 'invalid listen "0.0.0.0:8600": is not a loopback'),
        (["--listen", "[::]:8600"], 'invalid listen "[::]:8600": is not a loopback'),
        (
            ["--listen", "192.0.2.1:8600", "--allow-remote"],
            'invalid listen "192.0.2.1:8600": cannot listen',
        ),
        (["--domain", "."], 'invalid domain "."'),
        (["--domain", "bad_label.local"], 'invalid domain "bad_label.local"'),
        (["--domain", "a..b"], 'invalid domain "a..b"'),
        (["--ttl", "0.5s"], 'invalid ttl "0.5s"'),
    ],
)
def test_bad_input_is_one_line_naming_the_value(flags: list[str], shown: str) -> None:
    got = skyctl("dns", *flags, url="nats://127.0.0.1:1")
    assert got.code == 2, got
    assert got.err.count("\n") == 1 and shown in got.err, got.err


def test_an_unreachable_server_or_a_taken_port_is_one_line() -> None:
    got = skyctl("dns", "--listen", "127.0.0.1:0", url="nats://127.0.0.1:1")
    assert got.code == 3, got
    assert got.err.count("\n") == 1 and "nats://127.0.0.1:1" in got.err, got.err
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        port = taken.getsockname()[1]
        got = skyctl("dns", "--listen", f"127.0.0.1:{port}", url="nats://127.0.0.1:1")
    assert got.code == 2, got
    assert got.err.count("\n") == 1 and f'"127.0.0.1:{port}"' in got.err, got.err


async def test_a_roll_up_is_refused_and_answers_stay(fresh_server: NatsServer) -> None:
    """A roll-up would empty the liveness stream with no marker for anyone; announcers
    write their namespace's intake, which refuses it, so every answer stays, and a crashed
    task still leaves at its TTL."""
    url, ns = fresh_server.url, "shop"
    async with (
        await Registry.connect(url) as registry,
        await Registry.connect(url) as crashed,
    ):
        await registry.create(web(ns))
        await registry.create(web("other"))
        _, port = await start_dns(url)
        name = f"web.{ns}.svc.{DOMAIN}"
        await (await crashed.announcer()).announce([task(ns, "gone", "10.4.0.2")], ttl=2)
        async with (
            registry.announce(task(ns, "stay", "10.4.0.1"), ttl=30),
            registry.announce(task("other", "o-1", "10.5.0.1"), ttl=30),
        ):
            await until_answer(port, name, {"10.4.0.1", "10.4.0.2"})
            await (await crashed.announcer()).close()  # no withdrawal: a crash
            async with raw_nats(url) as nc:
                for subject in (f"skyflow.task.{ns}.bystander.app.other", "skyflow.task.other.x"):
                    reply = await nc.request(subject, b"", headers={"Nats-Rollup": "all"})
                    assert b"rollup not permitted" in reply.data, reply.data
            # (How soon a crashed task goes is measured by the test above; here, only
            # that it does, with deadlines a loaded machine meets.)
            await until_answer(port, f"web.other.svc.{DOMAIN}", {"10.5.0.1"}, timeout=10)
            await until_answer(port, f"gone.{ns}.task.{DOMAIN}", "NXDOMAIN", timeout=15)
            await until_answer(port, name, {"10.4.0.1"}, timeout=10)


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.text(max_size=40),
        st.sampled_from(["[::1]:53", "[::1]", "::1", "[1.2.3.4]:5", ":53", "1.2.3.4:", "²:5"]),
        st.sampled_from(["\\999.", "xn--.", "a" * 64, "ü.", "\\.", "a.\\", "\x00", "-"]),
    )
)
def test_any_listen_or_domain_text_is_taken_or_refused_naming_it(text: str) -> None:
    for what, parse in (("listen", parse_listen), ("domain", parse_domain_flag)):
        refused: InvalidInput | None = None
        try:
            parse(text)
        except InvalidInput as exc:
            refused = exc
        if refused is not None:
            assert (refused.what, refused.value) == (what, text)


async def test_128_hostile_tcp_connections_leave_a_real_tcp_client_answered(
    url: str, ns: str, report: Callable[[str], None]
) -> None:
    """Connections left open, sending a query and never reading, or stopping mid-query
    (140 of them, more than the server holds) close the oldest first when a new client
    comes: before, the 129th connection was closed at once, whoever made it."""
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        await (await registry.announcer()).announce([task(ns, "web-1", "10.3.0.1")], ttl=30)
        proc, port = await start_dns(url)
        name = f"web.{ns}.svc.{DOMAIN}"
        query = dns.message.make_query(name, "A").to_wire()
        framed = len(query).to_bytes(2, "big") + query
        hostile: list[socket.socket] = []
        try:
            for i in range(140):
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                if i % 3 == 1:
                    sock.sendall(framed * 20)  # queries, never reading the answers
                elif i % 3 == 2:
                    sock.sendall(framed[:7])  # a query that never ends
                hostile.append(sock)
            await asyncio.sleep(0.5)  # every one accepted and counted
            started = time.monotonic()
            for _ in range(3):  # a real client, three times over
                response = await dns.asyncquery.tcp(
                    dns.message.make_query(name, "A"), "127.0.0.1", port=port, timeout=5
                )
                assert [r.to_text() for r in response.answer[0]] == ["10.3.0.1"]
            answered = time.monotonic() - started
        finally:
            for sock in hostile:
                sock.close()
        assert await answer(port, name) == {"10.3.0.1"}
        assert proc.poll() is None
    report(f"dns: a TCP client beside 140 hostile connections answered 3 times in {answered:.2f} s")


async def test_a_20000_endpoint_service_is_answered_and_does_not_starve_the_others(
    fresh_server: NatsServer, ns: str, report: Callable[[str], None]
) -> None:
    """20,000 announced tasks behind one service, 20 queries/s for it: each answer holds
    endpoints and fits in 512 bytes, and other clients' queries (another namespace's
    service) are all answered in time. Before, it answered an empty truncated reply
    even over TCP, and took tens of milliseconds per query to do so.

    On a server of its own: its tasks live 120 s after it ends, and every later reader of
    a shared server (each ``skyctl dns`` reads every task) would pay for them."""
    url = fresh_server.url
    victim_ns = f"{ns}-v"
    count = 20_000
    async with await Registry.connect(url) as registry:
        await registry.create(web(ns))
        await registry.create(web(victim_ns))
        started = time.monotonic()
        tasks = [
            task(ns, f"w{i}", f"10.{64 + i // 65536}.{i // 256 % 256}.{i % 256}")
            for i in range(count)
        ]
        announcer = await registry.announcer()
        await announcer.announce(tasks, ttl=120)
        await announcer.announce([task(victim_ns, "v1", "10.2.0.1")], ttl=120)
        announced = time.monotonic() - started
        _, port = await start_dns(url)
        big, small = f"web.{ns}.svc.{DOMAIN}", f"web.{victim_ns}.svc.{DOMAIN}"
        await until_answer(port, small, {"10.2.0.1"}, timeout=20)
        addresses = {t.address for t in tasks}
        seen: set[str] = set()
        latencies: list[float] = []
        failures: list[str] = []

        async def hammer() -> None:  # 20 queries/s for the big service, for 4 s
            query = dns.message.make_query(big, "A")
            for _ in range(80):
                response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)
                assert not response.flags & dns.flags.TC and response.answer
                assert len(response.to_wire()) <= 512
                got = {r.to_text() for r in response.answer[0]}
                assert got <= addresses
                seen.update(got)
                await asyncio.sleep(0.05)

        async def victim() -> None:  # another namespace's client, as fast as it goes
            ask = resolver(port)
            ask.timeout = ask.lifetime = 2.0
            end = time.monotonic() + 4.0
            while time.monotonic() < end:
                sent = time.monotonic()
                try:
                    found = await ask.resolve(small, "A")
                except dns.exception.DNSException as exc:
                    failures.append(type(exc).__name__)
                    continue
                latencies.append(time.monotonic() - sent)
                assert {r.to_text() for r in found} == {"10.2.0.1"}
                await asyncio.sleep(0.01)

        await asyncio.gather(hammer(), *(victim() for _ in range(4)))
        assert failures == [] and len(latencies) > 100
        assert len(seen) >= 79 * 29  # windows rotate: each query named new endpoints
    latencies.sort()
    report(
        f"dns: {count:,} endpoints announced in {announced:.1f} s; at 20 queries/s for them "
        f"(each answered {len(seen) // 80}+ endpoints), {len(latencies)} victim queries, "
        f"p99 {latencies[len(latencies) * 99 // 100] * 1000:.1f} ms, none timed out"
    )


async def test_a_namespace_differing_only_in_case_is_refused_and_never_served_as_another(
    url: str, ns: str
) -> None:
    """``create`` refuses a namespace that is not lower case (the seed's example, in
    ``default``, is unchanged); a team that writes ``SHOP`` anyway (with raw nats-py, as
    a log written before the rule holds it) injects nothing into ``web.shop.svc``, and
    ``skyctl dns`` says so. Before, both were merged into one answer."""
    upper = ns.upper()
    got = skyctl("create", "service", "web", "-n", upper, "-s", "app=web", url=url)
    assert got.code == 2 and got.err.count("\n") == 1, got
    assert f'invalid namespace "{upper}"' in got.err and f"'{ns}'" in got.err, got.err
    manifest = "apiVersion: skyflow.io/v1\nkind: Service\n"
    manifest += f"metadata:\n  name: web\n  namespace: {upper}\nspec: {{}}\n"
    got = skyctl("apply", "-f", "-", url=url, stdin=manifest)
    assert got.code == 2 and f'invalid namespace "{upper}"' in got.err, got
    async with await Registry.connect(url) as registry:
        assert await registry.list(upper) == []  # nothing written
        await registry.create(web(ns))
        forged = ServiceCreated(id=new_event_id(), time=utc_now(), actor="x", service=web(upper))
        await raw_publish(url, subject_for(upper, "web"), encode(forged))
        api = Service(namespace=upper, name="api", selector={"app": "web"})
        forged = ServiceCreated(id=new_event_id(), time=utc_now(), actor="x", service=api)
        await raw_publish(url, subject_for(upper, "api"), encode(forged))
        await (await registry.announcer()).announce(
            [task(ns, "web-1", "10.1.0.1"), task(upper, "web-1", "10.6.6.6")], ttl=30
        )
        proc = start("dns", "--listen", "127.0.0.1:0", url=url)
        lines = Lines(proc)
        await lines.wait_for(lambda line: _SERVING.match(line) is not None)
        (port,) = [int(m.group(1)) for _, line in lines.lines if (m := _SERVING.match(line))]
        name = f"web.{ns}.svc.{DOMAIN}"
        await until_answer(port, name, {"10.1.0.1"})
        for _ in range(5):
            assert await answer(port, name) == {"10.1.0.1"}
        assert await answer(port, f"api.{ns}.svc.{DOMAIN}") == "NXDOMAIN"
        assert await answer(port, f"web-1.{ns}.task.{DOMAIN}") == {"10.1.0.1"}
        proc.send_signal(signal.SIGTERM)
        _out, err = await asyncio.to_thread(proc.communicate, timeout=10)
    assert (
        f"warning: service namespace {upper}, {ns} differ only in case: only {ns} is served" in err
    ), err
    assert "Traceback" not in err


async def test_tcp_limits_per_client_and_timeouts_close_what_holds_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """In process, on a zone of its own: a client's 33rd connection closes its longest
    idle one; a query that never ends and a client that never reads are closed within
    their timeouts (shortened here), and the server holds nothing afterwards."""
    from registry.discovery.endpoints import endpoints_for
    from registry.discovery.tasks import LiveTask
    from registry.dns import server as dns_server
    from registry.dns.zone import Zone

    monkeypatch.setattr(dns_server, "TCP_READ_S", 0.5)
    monkeypatch.setattr(dns_server, "TCP_WRITE_S", 0.5)
    when = datetime.now(UTC)
    tasks = [
        LiveTask(
            "shop",
            f"w{i}",
            {"app": "web"},
            f"10.9.{i // 250}.{i % 250 + 1}",
            None,
            True,
            "i",
            when,
            60,
            1,
            0,
        )
        for i in range(2000)
    ]
    zone = Zone(DOMAIN)
    zone.replace([endpoints_for(web("shop"), tasks)], tasks)
    query = dns.message.make_query(f"_80._tcp.web.shop.svc.{DOMAIN}", "SRV").to_wire()
    framed = len(query).to_bytes(2, "big") + query

    async def closed(reader: asyncio.StreamReader) -> bool:
        try:
            return await asyncio.wait_for(reader.read(1), 3) == b""
        except (ConnectionError, TimeoutError):
            return True

    async with await dns_server.listen(zone, "127.0.0.1", 0) as server:
        idle = [
            await asyncio.open_connection("127.0.0.1", server.port)
            for _ in range(dns_server.MAX_TCP_PER_CLIENT + 1)
        ]
        await asyncio.sleep(0.2)
        assert len(server._connections) == dns_server.MAX_TCP_PER_CLIENT
        assert await closed(idle[0][0])  # the longest idle gave way
        for _reader, writer in idle:
            writer.close()
        await asyncio.sleep(0.2)
        assert len(server._connections) == 0
        # A query that never ends, and queries whose answers are never read.
        _, stalled = await asyncio.open_connection("127.0.0.1", server.port)
        stalled.write(framed[:9])
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        sock.sendall(framed * 2000)  # about 9 MB of answers
        await asyncio.sleep(0.2)
        assert len(server._connections) == 2
        for _ in range(100):  # within 10 s (the timeouts are 0.5 s)
            if not server._connections:
                break
            await asyncio.sleep(0.1)
        assert len(server._connections) == 0
        sock.close()
        stalled.close()


async def test_cluster_ips_flag_answers_a_services_address_and_follows_it(
    url: str, ns: str
) -> None:
    """``--cluster-ips``: the service's name is its cluster IP (a proxy routes it); a
    headless service is still its endpoints; a new service's address comes in live."""
    async with await Registry.connect(url) as registry:
        made = await registry.create(web(ns))
        await registry.create(
            Service(namespace=ns, name="db", selector={"app": "web"}, cluster_ip="None")
        )
        await (await registry.announcer()).announce([task(ns, "web-1", "10.6.0.1")], ttl=30)
        _, port = await start_dns(url, "--cluster-ips")
        assert made.service.cluster_ip is not None
        await until_answer(port, f"web.{ns}.svc.{DOMAIN}", {made.service.cluster_ip})
        await until_answer(port, f"db.{ns}.svc.{DOMAIN}", {"10.6.0.1"})
        later = await registry.create(
            Service(namespace=ns, name="api", selector={"app": "web"}, ports=web(ns).ports)
        )
        assert later.service.cluster_ip is not None
        await until_answer(port, f"api.{ns}.svc.{DOMAIN}", {later.service.cluster_ip})


async def test_an_external_name_service_is_a_cname(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        await registry.create(
            Service(
                namespace=ns,
                name="db",
                type=ServiceType.EXTERNAL_NAME,
                external_name="db.example.com",
            )
        )
        _, port = await start_dns(url)
        query = dns.message.make_query(f"db.{ns}.svc.{DOMAIN}", "A")
        response = await dns.asyncquery.udp(query, "127.0.0.1", port=port, timeout=5)
        assert [rrset.to_text() for rrset in response.answer] == [
            f"db.{ns}.svc.{DOMAIN} 5 IN CNAME db.example.com."
        ]
