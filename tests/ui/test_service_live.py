"""The web UI's service page against a real nats-server: endpoints with their tasks'
heartbeats, TTLs and drain state; the very records a running ``skyctl dns`` answers for
the service; its recent membership transitions (a running ``skyctl record``); the live
fragment the page re-fetches, before and after a task is SIGKILLed and the server
removes it; hostile values escaped."""

from __future__ import annotations

import html
import re
import signal
import time
from collections.abc import AsyncIterator

import dns.asyncresolver
import httpx
import pytest

from cli.connection import Connection
from cli.serviceviews import ENDPOINT_LIVE_COLUMNS
from cli.webapp import make_app
from events import Port, Service
from events.control import ReadinessAction
from events.task import Task
from registry.client import Registry
from registry.jetstream.server import NatsServer
from tests.helpers import Lines, skyctl, start, until
from tests.ui.support import HOSTILE, browsing

_SERVING = re.compile(r"^dns: serving \S+ on 127\.0\.0\.1:(\d+) ")


@pytest.fixture
async def anonymous(url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with browsing(make_app(Connection(server=url), anonymous=True)) as client:
        yield client


async def dns_lines(port: int, name: str, rdtype: str) -> set[str]:
    """The answer's records as ``skyctl dns`` sends them, one ``to_text`` line each."""
    ask = dns.asyncresolver.Resolver(configure=False)
    ask.nameservers, ask.port = ["127.0.0.1"], port
    ask.timeout = ask.lifetime = 5.0
    found = await ask.resolve(name, rdtype)
    assert found.rrset is not None
    return set(found.rrset.to_text().splitlines())


async def test_endpoints_heartbeats_dns_answers_and_membership(
    url: str, ns: str, anonymous: httpx.AsyncClient
) -> None:
    recorder = start("record", url=url)
    await Lines(recorder).wait_for(lambda line: line.startswith("recording: caught up"), 60)
    resolver = start("dns", "--listen", "127.0.0.1:0", url=url)
    said = Lines(resolver)
    await said.wait_for(lambda line: _SERVING.match(line) is not None, 60)
    (port,) = [int(m.group(1)) for _, line in said.lines if (m := _SERVING.match(line))]
    ports = [Port(port=80, target_port=8080, name="http")]
    service = Service(namespace=ns, name="web", selector={"app": "web"}, ports=ports)
    labels = {"app": "web"}
    tasks = (
        Task(namespace=ns, name="web-1", labels=labels, address="10.9.0.7"),
        Task(namespace=ns, name="web-2", labels=labels, address="10.9.0.8"),
        Task(namespace=ns, name="web-3", labels=labels, address="10.9.0.9"),
    )  # fmt: skip
    async with await Registry.connect(url) as registry:
        await registry.create(service)
        async with (
            registry.announce(tasks[0], ttl=30),
            registry.announce(tasks[1], ttl=40),
            registry.announce(tasks[2], ttl=50),
        ):
            await registry.set_readiness(ns, "web-2", ReadinessAction.NOT_READY, HOSTILE[0])
            await registry.set_readiness(ns, "web-3", ReadinessAction.DRAIN, "drained by ops")
            owner = f"web.{ns}.svc.skyflow."

            async def one_ready_in_dns() -> bool:
                # skyctl dns follows the changes live, in a process of its own: the
                # readiness changes reach it shortly after the writes return.
                return len(await dns_lines(port, owner, "A")) == 1  # the one ready task

            await until("skyctl dns answering the one ready task", one_ready_in_dns)
            a_records = await dns_lines(port, owner, "A")

            async def membership_shown() -> bool:
                page = await anonymous.get(f"/services/{ns}/web")
                membership = page.text.partition('id="membership"')[2]
                return all(f"<td>web-{n}</td><td>joined</td>" in membership for n in (1, 2, 3))

            await until("the three joins in Membership", membership_shown)
            page = await anonymous.get(f"/services/{ns}/web")
            srv_records = await dns_lines(port, owner, "SRV")
            port_records = await dns_lines(port, f"_http._tcp.{owner}", "SRV")
    assert page.status_code == 200, page.text
    text = page.text
    # Endpoints: get endpoints -o wide's columns, then get tasks -o wide's of each task.
    endpoints = text.partition('id="endpoints">')[2].partition("</div>")[0]
    assert "".join(f"<th>{c}</th>" for c in ENDPOINT_LIVE_COLUMNS) in endpoints
    rows = re.findall(r"<tr><td>web</td>(.*?)</tr>", endpoints)
    cells = [re.findall(r"<td>(.*?)</td>", "<td>web</td>" + row) for row in rows]
    by_task = {row[5]: row for row in cells}
    assert set(by_task) == {"web-1", "web-2", "web-3"}
    assert by_task["web-1"][2:5] == ["10.9.0.7", "8080/TCP", "true"]
    assert by_task["web-2"][4] == "false" and by_task["web-3"][4] == "draining"
    assert [by_task[t][7] for t in ("web-1", "web-2", "web-3")] == ["30s", "40s", "50s"]
    for row in cells:
        assert re.fullmatch(r"\d+s", row[6]), row  # the heartbeat's age, seconds ago
    assert by_task["web-2"][8].endswith(": " + html.escape(HOSTILE[0]))  # "set not ready by..."
    assert by_task["web-3"][8].endswith(": drained by ops")
    # DNS: every record the running skyctl dns answered, as the page shows it.
    shown = text.partition('id="dns">')[2].partition("</div>")[0]
    for record in a_records | srv_records | port_records:
        assert f"<td>{html.escape(record)}</td>" in shown, record
    assert f"{owner} AAAA</td><td>NOERROR</td><td>&lt;no records&gt;" in shown
    # Membership: describe's rows, the hostile reason escaped.
    assert HOSTILE[0] not in text and html.escape(HOSTILE[0]) in text


async def test_the_live_fragment_follows_a_sigkilled_task_out(
    url: str, ns: str, anonymous: httpx.AsyncClient
) -> None:
    service = Service(namespace=ns, name="web", selector={"app": "web"})
    async with await Registry.connect(url) as registry:
        await registry.create(service)
    page = await anonymous.get(f"/services/{ns}/web")
    live = f"/services/{ns}/web/live"
    assert f'data-live="{live}"' in page.text
    assert f'data-namespace="{ns}" data-name="web"' in page.text
    assert '<script src="/live.js" defer></script>' in page.text
    flags = ("-n", ns, "--labels", "app=web", "--ttl", "2s")
    killed = start("announce", "task", "victim", "--address", "10.9.1.1", *flags, url=url)
    await Lines(killed).wait_for(lambda line: line.startswith("task/victim announced"), 30)

    async def listed() -> bool:
        fragment = await anonymous.get(live)
        assert fragment.status_code == 200, fragment.text
        assert "<html" not in fragment.text  # a fragment, for the page to swap in
        return "<td>victim</td>" in fragment.text.partition('id="endpoints"')[2]

    async def unlisted() -> bool:
        return not await listed()

    await until("the task on the fragment", listed)
    killed.send_signal(signal.SIGKILL)
    gone = await until("the killed task off the fragment", unlisted, timeout=30)
    assert gone < 2 + 5  # the server removes it within its TTL; allow a loaded machine
    missing = await anonymous.get(f"/services/{ns}/nope/live")
    assert missing.status_code == 404 and missing.text.startswith('<p class="error">')
    bad = await anonymous.get(f"/services/{ns}/%3Cb%3E/live")
    assert bad.status_code == 400 and "<b>" not in bad.text


async def test_the_services_page_refreshes_its_own_query(
    url: str, ns: str, anonymous: httpx.AsyncClient
) -> None:
    page = await anonymous.get("/", params={"namespace": ns, "selector": HOSTILE[0]})
    assert page.status_code == 400  # not a selector: nothing of it unescaped either
    page = await anonymous.get("/", params={"namespace": ns, "unready": "1"})
    assert f'data-live="/services/table?namespace={ns}&amp;unready=1"' in page.text


def test_a_bad_domain_is_one_line_naming_it() -> None:
    done = skyctl("ui", "--domain", "no_such!", "--listen", "127.0.0.1:0", url="nats://127.0.0.1:1")
    assert done.code == 2 and done.out == "", done.err
    assert len(done.err.splitlines()) == 1 and 'invalid domain "no_such!"' in done.err, done.err


def test_ctrl_c_ends_open_event_streams_and_exits_at_once(url: str, ns: str) -> None:
    """``skyctl ui`` with a browser's event stream open: Ctrl-C ends the stream (the
    browser's EventSource would retry), and the command exits 0 within seconds, quietly."""
    assert skyctl("create", "svc", "web", "-n", ns, "-s", "app=web", url=url).code == 0
    proc = start("ui", "--anonymous", "--listen", "127.0.0.1:0", url=url)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    assert line.startswith("Serving the SkyFlow UI on "), line
    base = line.split(" on ", 1)[1].strip()
    with httpx.stream("GET", base + "events", timeout=30) as stream:
        said = stream.iter_lines()
        assert next(said) == "retry: 1000"
        proc.send_signal(signal.SIGINT)
        stopped = time.monotonic()
        rest = list(said)  # the stream ends: the server closed it
    assert "event: failed" in rest, rest
    assert proc.wait(timeout=30) == 0
    assert time.monotonic() - stopped < 10
    assert "Traceback" not in proc.stderr.read()


async def test_anonymous_on_a_server_without_the_registry_is_a_503_naming_why(
    fresh_server: NatsServer,
) -> None:
    async with browsing(make_app(Connection(server=fresh_server.url), anonymous=True)) as http:
        page = await http.get("/")
    assert page.status_code == 503, page.text
    assert '<p class="error">error: ' in page.text
