"""The node agent (``skyctl agent``): the same output as a direct read, every write seen,
its identity never lent, its socket never shared, and it stays up through a server
restart and a flood of clients."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import resource
import socket
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from events import Port, Service
from events.task import Task
from registry import Registry
from registry.agent.wire import Request, decode_reply_header, encode_request
from registry.jetstream.server import NatsServer
from tests.agent.agents import agent, seed, socket_folder, status, through
from tests.helpers import _environment, skyctl, skyctl_process, until


def _reads(ns: str, seq: int) -> list[list[str]]:
    """Every read command and format the agent hosts, and reads that fail."""
    n = ["-n", ns]
    return [
        ["get", "svc", *n],
        ["get", "service", "web", *n],
        ["get", "svc", "web", "db", *n],
        ["get", "svc", "-A"],
        ["get", "svc", *n, "-o", "wide"],
        ["get", "svc", *n, "-o", "json"],
        ["get", "svc", "web", *n, "-o", "yaml"],
        ["get", "svc", *n, "-o", "name"],
        ["get", "svc", *n, "-o", "jsonpath={.items[*].spec.clusterIP}"],
        ["get", "svc", *n, "-o", "custom-columns=NAME:.metadata.name,IP:.spec.clusterIP"],
        ["get", "svc", *n, "-l", "tier=front", "--show-labels"],
        ["get", "svc", *n, "--sort-by", ".metadata.name", "--no-headers"],
        ["get", "svc/web", *n],
        ["get", "svc", *n, "--at", str(seq)],
        ["get", "endpoints", "web", *n],
        ["get", "endpoints", *n, "-o", "wide"],
        ["get", "endpoints", *n, "-o", "json"],
        ["get", "tasks", *n],
        ["get", "tasks", *n, "-o", "yaml"],
        ["get", "namespaces", ns],
        ["describe", "svc", "web", *n],
        ["history", "svc", "web", *n],
        ["history", "svc", "web", *n, "-o", "json"],
        # Refusals: the same one line, the same exit code.
        ["get", "svc", "nope", *n],
        ["get", "svc", "web", "nope", *n],
        ["get", "svc", *n, "-l", "tier in (a"],
        ["get", "svc", "web", "-A"],
        ["get", "svc", *n, "-o", "nonsense"],
        ["describe", "svc", "nope", *n],
    ]


async def test_the_agent_prints_exactly_what_a_direct_read_prints(
    fresh_server: NatsServer, ns: str
) -> None:
    # A server of the test's own: `get -A` lists only what it seeds.
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await seed(registry, ns)
        seq = await registry.log.last_sequence()
        task = Task(namespace=ns, name="web-1", labels={"app": "web"}, address="10.9.0.1")
        async with agent(url) as path, registry.announce(task, ttl=60):
            before = status(path)["served"]
            reads = _reads(ns, seq)
            exact = 0
            for argv in reads:
                exact += await _same_both_ways(path, url, argv)
            # Ages aside, every output matched; byte for byte, at least every one that shows
            # no age (objects, names, paths, history, refusals) did.
            assert exact >= len(reads) // 2, (exact, len(reads))
            assert status(path)["served"] >= before + len(reads)


# An age as tables print it (5s, 2m30s, 3h, 4d): the one thing that may differ between
# two reads a moment apart.
_AGE = re.compile(r"\b\d+[smhdy](?:\d+[smhdy])?\b")


def _timeless(text: str) -> str:
    return " ".join(_AGE.sub("<age>", text).split())


async def _same_both_ways(path: str, url: str, argv: list[str]) -> bool:
    """Whether the agent's answer equals a direct read's byte for byte (True), or only
    once ages are set aside (False): ages in tables tick each second, each row at its own
    instant, so a reply between two direct reads is one of theirs unless a row's age
    ticked on each side of it. Anything else that differs fails here."""
    tries = []
    for _ in range(3):
        first = await asyncio.to_thread(skyctl, *argv, url=url)
        reply = await asyncio.to_thread(through, path, url, *argv)
        second = await asyncio.to_thread(skyctl, *argv, url=url)
        assert reply.status == "done", (argv, reply.why)
        got = (reply.code, reply.stdout.decode(), reply.stderr.decode())
        direct = [(r.code, r.out, r.err) for r in (first, second)]
        if got in direct:
            return True
        tries.append((got, direct[0]))
    got, direct_one = tries[-1]
    assert (got[0], _timeless(got[1]), _timeless(got[2])) == (
        direct_one[0],
        _timeless(direct_one[1]),
        _timeless(direct_one[2]),
    ), f"{argv}: the agent printed {tries}"
    return False


async def test_a_read_through_the_agent_sees_every_write_acknowledged_before_it(
    url: str, ns: str, registry: Registry
) -> None:
    async with agent(url) as path:
        for i in range(1000):
            name = f"s{i}"
            await registry.create(
                Service(namespace=ns, name=name, ports=[Port(port=80, target_port=80)])
            )
            reply = await asyncio.to_thread(through, path, url, "get", "svc", name, "-n", ns)
            assert (reply.status, reply.code) == ("done", 0), (name, reply.why, reply.stderr)
            assert reply.stdout.decode().splitlines()[1].split()[0] == name
            if i % 10 == 9:  # a delete is seen too
                await registry.delete(ns, name)
                gone = await asyncio.to_thread(through, path, url, "get", "svc", name, "-n", ns)
                assert gone.code == 1 and b"not found" in gone.stderr, name


async def test_what_the_agent_does_not_serve_runs_in_the_client(
    url: str, ns: str, registry: Registry
) -> None:
    await seed(registry, ns)
    async with agent(url) as path:
        # A watch, a write, another user, another server: told to read for itself.
        for argv, env in [
            (["get", "svc", "-n", ns, "-w"], {}),
            (["create", "svc", "x", "-n", ns], {}),
            (["config", "use-context", "x"], {}),
            (["get", "svc", "-n", ns], {"NATS_USER": "someone-else"}),
            (["get", "svc", "-n", ns], {"NATS_URL": url + ",nats://127.0.0.1:1"}),
        ]:
            reply = await asyncio.to_thread(through, path, url, *argv, env=env)
            assert reply.status == "direct", (argv, reply.status)
            assert reply.stdout == b""
        with pytest.raises(Exception, match="not found"):
            await registry.get(ns, "x")  # the create did not run in the agent
        served = status(path)
        assert served["direct"] == 5 and served["served"] == 0


async def test_the_thin_client_imports_neither_pydantic_nor_asyncio_nor_nats(
    url: str, ns: str, registry: Registry
) -> None:
    await seed(registry, ns)
    async with agent(url) as path:
        env = _environment(url, {"SKYFLOW_AGENT": path, "PYTHONDONTWRITEBYTECODE": "1"})
        proc = await asyncio.to_thread(
            subprocess.run,
            [sys.executable, "-X", "importtime", "-m", "cli", "get", "svc", "web", "-n", ns],
            capture_output=True,
            text=True,
            env=env,
            timeout=30,
        )
        assert proc.returncode == 0 and proc.stdout.startswith("NAME"), proc.stderr[-500:]
        loaded = {
            line.split("|")[-1].strip().split(".")[0]
            for line in proc.stderr.splitlines()
            if line.startswith("import time:")
        }
        assert "registry" in loaded  # (the agent's client)
        assert not loaded & {"pydantic", "asyncio", "nats", "typer", "click", "msgpack"}
        assert status(path)["served"] == 1


async def test_an_agent_that_lost_its_server_sends_clients_to_it_and_survives_a_restart(
    fresh_server: NatsServer, ns: str
) -> None:
    url = fresh_server.url
    async with await Registry.connect(url) as registry:
        await seed(registry, ns)
    async with agent(url) as path:
        assert through(path, url, "get", "svc", "web", "-n", ns).status == "done"
        fresh_server.stop()

        async def sent_direct() -> bool:
            reply = await asyncio.to_thread(through, path, url, "get", "svc", "-n", ns)
            return reply.status == "direct"

        await until("the agent notices its server is gone", sent_direct, timeout=30)
        reply = through(path, url, "get", "svc", "-n", ns)
        assert reply.info.get("warn") is True and float(str(reply.info["stale_s"])) >= 0
        assert not status(path)["connected"]
        # The client says so, and reads the server itself (which is down: exit 3).
        result = await asyncio.to_thread(
            skyctl_process, "get", "svc", "-n", ns, url=url, env={"SKYFLOW_AGENT": path}
        )
        assert "reading the server directly: the agent has not reached its server for" in (
            result.err
        )
        assert result.code == 3
        fresh_server.start()

        async def served_again() -> bool:
            reply = await asyncio.to_thread(through, path, url, "get", "svc", "web", "-n", ns)
            return reply.status == "done" and reply.code == 0

        await until("the agent serves again after the restart", served_again, timeout=60)
        result = await asyncio.to_thread(
            skyctl_process, "get", "svc", "web", "-n", ns, url=url, env={"SKYFLOW_AGENT": path}
        )
        assert result.code == 0 and result.err == "" and "web" in result.out


async def test_a_thousand_clients_at_once_are_all_answered(
    url: str, ns: str, registry: Registry
) -> None:
    await seed(registry, ns)
    # A thousand open sockets here too: room for them (root may raise the hard limit).
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 4096:
        wanted = 4096 if hard == resource.RLIM_INFINITY else max(4096, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, wanted))
    request = encode_request(
        Request(
            ["get", "svc", "web", "-n", ns, "-o", "name"],
            _environment(url, None),
            os.getcwd(),
        )
    )
    async with agent(url) as path:

        async def one() -> tuple[str, int, bytes]:
            reader, writer = await asyncio.open_unix_connection(path)
            try:
                writer.write(request)
                await writer.drain()
                data = await asyncio.wait_for(reader.read(), 120)
            finally:
                writer.close()
            line, _, rest = data.partition(b"\n")
            reply, _, _ = decode_reply_header(line)
            return reply.status, reply.code, rest

        # All connected before any is answered: the agent keeps them in line.
        replies = await asyncio.gather(*(one() for _ in range(1000)))
        assert replies.count(("done", 0, b"service/web\n")) == 1000, {r[:2] for r in replies}
        assert status(path)["served"] == 1000


def _as_nobody(path: str, request: bytes) -> bytes:
    """What the agent at ``path`` answers a process of user nobody (a forked child: no
    interpreter to find, only a socket to use)."""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: become nobody, ask, hand the answer back, and vanish
        try:
            os.setgid(65534)
            os.setuid(65534)
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(20)
                sock.connect(path)
                sock.sendall(request)
                os.write(write, sock.recv(1 << 16))
        except BaseException as exc:
            os.write(write, repr(exc).encode())
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as answer:
        data = answer.read()
    os.waitpid(pid, 0)
    return data


def _foreign(path: Path) -> None:
    """Make ``path`` belong to another user (nobody)."""
    os.chown(path, 65534, 65534)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to act as another user")
async def test_a_socket_of_another_user_is_refused_both_ways(
    url: str, ns: str, registry: Registry
) -> None:
    await seed(registry, ns)
    # The client: a socket at its path that another user made is not trusted (it could
    # print anything as the registry's answer), and the command reads the server itself.
    with socket_folder() as folder:
        planted = folder / "agent.sock"
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        listener.bind(str(planted))
        listener.listen()
        _foreign(planted)
        try:
            result = await asyncio.to_thread(
                skyctl_process, "get", "svc", "web", "-n", ns, url=url,
                env={"SKYFLOW_AGENT": str(planted)},
            )  # fmt: skip
        finally:
            listener.close()
        assert result.code == 0 and result.out.startswith("NAME"), result.err
        assert re.search(r"not using the agent: .* belongs to uid 65534, not to you", result.err)
    # The agent: even with its socket opened to everyone, another user is refused.
    async with agent(url) as path:
        os.chmod(path, 0o666)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o666
        line = encode_request(Request(["get", "svc", "-n", ns], {}, "/"))
        answer = await asyncio.to_thread(_as_nobody, path, line)
        assert b'"status":"refused"' in answer, answer
        assert b"uid 65534 may not use the agent" in answer
        assert status(path)["refused"] == 1 and status(path)["served"] == 0
