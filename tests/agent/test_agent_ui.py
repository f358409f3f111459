"""``skyctl agent --ui``: the node agent serves the web UI in its own process, over real
HTTP, beside the reads it answers on its socket; visitors sign in as themselves (not as
the agent), and the flags are checked as ``skyctl ui`` checks them."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator

import httpx
import pytest

from registry.jetstream.server import NatsServer
from tests.agent.agents import READY, socket_folder, through
from tests.helpers import Lines, running, skyctl, start
from tests.servers import INIT_TEAMS, PASSWORDS, auth_server
from tests.ui.support import as_user

_SERVING = re.compile(r"^Serving the SkyFlow UI on (http://127\.0\.0\.1:\d+)/$")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("agent-ui")) as running_server:
        for step in (
            ("init", *INIT_TEAMS),
            ("create", "svc", "web", "-n", "shop", "-s", "app=web"),
        ):
            done = skyctl(*step, *as_user("admin"), url=running_server.url)
            assert done.code == 0, (step, done.err)
        yield running_server


async def test_an_agent_serves_the_ui_and_a_signed_in_read_works(server: NatsServer) -> None:
    with socket_folder() as folder:
        path = str(folder / "agent.sock")
        flags = ("--socket", path, "--ui", "127.0.0.1:0", *as_user("shop-agent"))
        async with running("agent", *flags, url=server.url, ready=READY) as lines:
            (base,) = [m.group(1) for _, line in lines.lines if (m := _SERVING.match(line))]
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                login = await http.get("/login")
                assert login.status_code == 200 and 'name="creds"' in login.text
                signed_out = await http.get("/", headers={"accept": "text/html"})
                assert signed_out.status_code == 303  # nothing read as the agent
                password = {"user": "viewer", "password": PASSWORDS["viewer"]}
                assert (await http.post("/login", data=password)).status_code == 303
                page = await http.get("/")
                assert page.status_code == 200, page.text
                assert "signed in as viewer" in page.text
                assert '<a href="/services/shop/web">web</a>' in page.text
                service = await http.get("/services/shop/web")
                assert service.status_code == 200 and 'id="endpoints"' in service.text
                assert "web.shop.svc.skyflow. A" in service.text  # the agent's --domain
            # The socket still answers the agent's own reads.
            hosted = through(path, server.url, "get", "svc", "-n", "shop", *as_user("shop-agent"))
            assert hosted.status == "done" and b"web" in hosted.stdout, hosted


async def test_anonymous_and_the_domain_follow_the_agent(server: NatsServer) -> None:
    with socket_folder() as folder:
        flags = (
            *("--socket", str(folder / "agent.sock"), "--ui", "127.0.0.1:0", "--anonymous"),
            *("--domain", "cluster.local", *as_user("viewer")),
        )
        async with running("agent", *flags, url=server.url, ready=READY) as lines:
            (base,) = [m.group(1) for _, line in lines.lines if (m := _SERVING.match(line))]
            async with httpx.AsyncClient(base_url=base, timeout=30) as http:
                service = await http.get("/services/shop/web")
        assert service.status_code == 200, service.text
        assert "web.shop.svc.cluster.local. A" in service.text


@pytest.mark.parametrize(
    ("flags", "shown"),
    [
        (("--anonymous",), "--anonymous"),
        (("--ui", "0.0.0.0:0"), "0.0.0.0:0"),
        (("--ui", "127.0.0.1:x"), "127.0.0.1:x"),
    ],
)
def test_bad_ui_flags_are_one_line_naming_the_value(
    server: NatsServer, flags: tuple[str, ...], shown: str
) -> None:
    with socket_folder() as folder:
        done = skyctl("agent", "--socket", str(folder / "agent.sock"), *flags, url=server.url)
    assert done.code != 0
    assert len(done.err.strip().splitlines()) == 1 and shown in done.err, done.err


async def test_a_taken_ui_port_is_one_line(server: NatsServer) -> None:
    with socket_folder() as folder:
        first = start("agent", "--socket", str(folder / "a.sock"), "--ui", "127.0.0.1:0",
                      *as_user("viewer"), url=server.url)  # fmt: skip
        lines = Lines(first)
        await lines.wait_for(lambda line: _SERVING.match(line) is not None, 30)
        (base,) = [m.group(1) for _, line in lines.lines if (m := _SERVING.match(line))]
        taken = base.removeprefix("http://")
        done = skyctl("agent", "--socket", str(folder / "b.sock"), "--ui", taken, url=server.url)
        first.send_signal(signal.SIGTERM)
    assert done.code != 0
    assert len(done.err.strip().splitlines()) == 1 and taken in done.err, done.err
