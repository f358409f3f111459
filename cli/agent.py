"""``skyctl agent``: a long-lived process per node that answers skyctl's reads over a
unix socket, from a warm connection and warm code.

The agent *hosts* skyctl's own read commands (``get``, ``describe``, ``history``): a
request is a command line, run here by ``cli.main.main`` exactly as the client would
have run it (its environment, its working directory), with its connection swapped for
the agent's (``cli.connection.hosted_by``) and its coroutines run on the agent's loop
(``cli.lifetime.hosted_on``). There is one implementation of every read and of every
output format; the client prints the bytes it gets back. A read goes to the server as a
direct read does, so it reflects every write acknowledged before it began.

The agent serves only commands whose connection is its own (the same server, user and
credentials: it never lends its identity to another), only reads that end (a watch or
a write, signed by the user's own credentials, runs in the client), and only while its
connection is up: otherwise the reply says why and the client reads the server itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import os
import sys
import time
import traceback
from collections.abc import Callable, Coroutine
from contextvars import ContextVar
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, NotHosted, connection_options, hosted_by, warn_skipped
from cli.dataplane import DEFAULT_DOMAIN, DnsPlan, ProxyPlan, parse_domain_flag
from cli.hosted import agent_socket, default_socket, hostable
from cli.launch import exit_status
from cli.lifetime import hosted_on, run_until_stopped
from cli.webserve import UiPlan
from registry.agent.server import Counters
from registry.errors import InvalidInput, RegistryError

if TYPE_CHECKING:
    from registry.agent.wire import Reply, Request
    from registry.client import Registry

__all__ = ["agent_command"]

# The output of the command being hosted, in this thread and the coroutines it runs.
_OUTPUT: ContextVar[tuple[io.TextIOWrapper, io.TextIOWrapper] | None] = ContextVar(
    "skyflow_agent_output", default=None
)


class _Routed:
    """``sys.stdout`` (or ``sys.stderr``) of the agent: the hosted command's buffer while
    one runs in this context, else the agent's own stream, so the agent's own lines and
    those of the DNS server and proxy it hosts never mix into a client's output."""

    def __init__(self, real: Any, which: int) -> None:
        self._real = real
        self._which = which

    def _target(self) -> Any:
        hosted = _OUTPUT.get()
        return self._real if hosted is None else hosted[self._which]

    def write(self, text: str) -> int:
        return int(self._target().write(text))

    def flush(self) -> None:
        self._target().flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target(), name)


@functools.cache
def _borrowed_class() -> type[Registry]:
    """What ``Connection.open`` gives a hosted command: a registry over the agent's
    connection that the command's ``async with`` does not close (defined on first use:
    the registry's modules load with the agent, not with ``skyctl --help``)."""
    from registry.client import Registry

    class Borrowed(Registry):
        async def close(self) -> None:  # the agent's connection outlives each command
            return None

    return Borrowed


class _Host:
    """Runs each request as the client would have run it, over the agent's registry."""

    def __init__(
        self,
        conn: Connection,
        registry: Registry,
        loop: asyncio.AbstractEventLoop,
        run: Callable[[list[str]], object],
    ):
        self.run = run  # ``cli.main.main``
        self.conn = conn
        self.registry = registry
        self.loop = loop
        self.started = time.time()
        self.lost_at: float | None = None  # monotonic time the connection went down
        self.counters = Counters()

    async def watch_connection(self) -> None:
        """Keep the reads' connection up: it is a one-shot client's (the fastest to read
        with), which does not reconnect by itself, so a lost one is replaced here. Reads
        are served only while it is up, and ``--status`` says for how long it has not
        been."""
        while True:
            if self.registry.log.is_connected:
                await asyncio.sleep(0.1)
                continue
            if self.lost_at is None:
                self.lost_at = time.monotonic()
                print(
                    "agent: lost the connection to the server; clients read it themselves",
                    file=sys.stderr,
                    flush=True,
                )
            try:
                fresh = await self.conn.open()
            except RegistryError:
                await asyncio.sleep(0.5)
                continue
            lost, self.registry = self.registry, fresh
            with contextlib.suppress(Exception):
                await lost.close()
            self.lost_at = None
            print("agent: connection to the server is back; serving reads", flush=True)

    def connected(self) -> bool:
        """Whether reads can be served now (asked at each request: a connection lost a
        moment ago is not waited for)."""
        return self.lost_at is None and self.registry.log.is_connected

    def stale_for(self) -> float:
        return 0.0 if self.lost_at is None else time.monotonic() - self.lost_at

    def borrow(self, conn: Connection, keep_reconnecting: bool, writes: bool) -> Registry:
        if writes:
            raise NotHosted("writes are signed by the user's own connection")
        if keep_reconnecting:
            raise NotHosted("a command that runs on is not hosted")
        if conn.reach() != self.conn.reach():
            raise NotHosted("the command connects elsewhere or as someone else")
        return _borrowed_class()(
            self.registry.log, on_skipped=warn_skipped, retry_for=self.registry.retry_for
        )

    def status(self) -> dict[str, Any]:
        counters = self.counters
        return {
            "server": self.registry.log.url,
            "connected": self.connected(),
            "stale_s": round(self.stale_for(), 1),
            "up_s": round(time.time() - self.started, 1),
            "served": counters.served,
            "direct": counters.direct,
            "refused": counters.refused,
            "pid": os.getpid(),
        }

    def handle(self, request: Request) -> Reply:
        """One request, in the agent's worker thread (one at a time: the environment and
        the working directory it sets are the process's)."""
        from registry.agent.wire import Reply

        if request.status:
            return Reply("status", info=self.status())
        if not self.connected():
            stale = self.stale_for()
            return Reply(
                "direct",
                why=f"the agent has not reached its server for {stale:.1f} s",
                info={"stale_s": round(stale, 1), "warn": True},
            )
        if not hostable(request.argv, request.env):
            return Reply("direct", why="the agent hosts reads that end: get, describe, history")
        saved_env, saved_cwd = dict(os.environ), os.getcwd()
        try:
            os.chdir(request.cwd)
        except OSError as exc:
            return Reply("direct", why=f"cannot enter {request.cwd}: {exc.strerror}")
        out, err = io.BytesIO(), io.BytesIO()
        streams = (
            io.TextIOWrapper(out, encoding="utf-8", errors="surrogateescape", write_through=True),
            io.TextIOWrapper(err, encoding="utf-8", errors="surrogateescape", write_through=True),
        )
        os.environ.clear()
        os.environ.update(request.env)
        token = _OUTPUT.set(streams)
        try:
            code = self._run(request.argv)
        except NotHosted as exc:
            return Reply("direct", why=str(exc))
        except Exception:
            # A bug here must not become the client's answer: it reads the server itself.
            print("agent: a hosted command failed:", file=sys.__stderr__)
            traceback.print_exc(file=sys.__stderr__)
            return Reply("direct", why="the agent failed on this command (see its log)")
        finally:
            _OUTPUT.reset(token)
            os.environ.clear()
            os.environ.update(saved_env)
            os.chdir(saved_cwd)
        return Reply("done", code=code, stdout=out.getvalue(), stderr=err.getvalue())

    def _run(self, argv: list[str]) -> int:
        with hosted_on(self.loop), hosted_by(self.borrow):
            return exit_status(lambda: self.run(argv))


def _ask_status(path: str) -> None:
    from registry.agent.client import ask
    from registry.agent.wire import Request

    reply, why = ask(path, Request([], {}, "/", status=True), timeout=10.0)
    if reply is None or reply.status != "status":
        from cli.errors import EXIT_SERVER, fail

        fail(why or f"the agent at {path} refused: {reply.why if reply else ''}", EXIT_SERVER)
    info = reply.info
    state = "connected" if info.get("connected") else f"not connected for {info.get('stale_s')} s"
    from cli.terminal import safe

    print(
        safe(
            f"agent {path} (pid {info.get('pid')}): {info.get('server')} {state}; "
            f"up {info.get('up_s')} s; served {info.get('served')}, sent direct "
            f"{info.get('direct')}, refused {info.get('refused')}"
        )
    )
    raise SystemExit(0 if info.get("connected") else 1)


async def _all(jobs: list[Coroutine[Any, Any, None]]) -> None:
    """Run ``jobs`` until each ends; the first to fail stops the others, and its error is
    the agent's (one error a user can read, not a group of them)."""
    try:
        async with asyncio.TaskGroup() as group:
            for job in jobs:
                group.create_task(job)
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None


async def _registry_when_there(conn: Connection, *, long_lived: bool) -> Registry:
    """A registry for the agent: for its reads, a one-shot client's connection (``conn.open``
    picks the one that reads fastest; the host replaces it when lost), and for the DNS
    server and proxy, one that reconnects by itself (their view must outlive an outage).
    On a server without a registry yet (a fresh ``skyctl server``), it waits for the first
    write to make it, rather than failing or making it itself."""
    from registry.errors import NotARegistry

    said = False
    while True:
        try:
            return await conn.open(keep_reconnecting=long_lived)
        except NotARegistry as exc:
            if not said:
                print(f"agent: {exc}; waiting for it", file=sys.stderr, flush=True)
                said = True
            await asyncio.sleep(1.0)


@connection_options
def agent_command(
    ctx: typer.Context,
    socket_path: Annotated[
        str | None,
        typer.Option(
            "--socket",
            metavar="PATH",
            help="Where to answer (mode 0600). Default: $SKYFLOW_AGENT, else the context's "
            "agent (config set-context --agent), else $XDG_RUNTIME_DIR/skyflow/agent.sock, "
            "else /tmp/skyflow-UID/agent.sock.",
        ),
    ] = None,
    status: Annotated[
        bool, typer.Option("--status", help="Say how the running agent is, and exit.")
    ] = False,
    dns: Annotated[
        str | None,
        typer.Option(
            "--dns",
            metavar="HOST:PORT",
            help="Also answer DNS there, as skyctl dns --listen does.",
        ),
    ] = None,
    domain: Annotated[
        str,
        typer.Option(
            "--domain",
            metavar="DOMAIN",
            help="With --dns: the domain names end in (and with --ui, of the DNS answers "
            "a service's page shows).",
        ),
    ] = DEFAULT_DOMAIN,
    allow_remote: Annotated[
        bool,
        typer.Option(
            "--allow-remote",
            help="With --dns or --ui: allow an address other machines can reach (as skyctl "
            "dns and skyctl ui).",
        ),
    ] = False,
    ui: Annotated[
        str | None,
        typer.Option(
            "--ui",
            metavar="HOST:PORT",
            help="Also serve the web UI there, as skyctl ui --listen does (port 0: any free port).",
        ),
    ] = None,
    anonymous: Annotated[
        bool,
        typer.Option(
            "--anonymous",
            help="With --ui: no sign-in, every visitor reads as the agent (as skyctl ui "
            "--anonymous).",
        ),
    ] = False,
    proxy: Annotated[
        bool,
        typer.Option("--proxy", help="Also forward service addresses, as skyctl proxy does."),
    ] = False,
    proxy_mode: Annotated[
        str | None,
        typer.Option(
            "--proxy-mode",
            metavar="MODE",
            help="With --proxy: nftables or userspace (as skyctl proxy --mode).",
        ),
    ] = None,
    node_address: Annotated[
        list[str] | None,
        typer.Option(
            "--node-address",
            metavar="IP",
            help="With --proxy: an address of this node for node ports (repeatable).",
        ),
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Answer skyctl's reads on this node from a warm connection, until Ctrl-C.

    get, describe and history (not watches) go to the agent when its socket answers and
    the command connects as the agent does (same server, same user); they print exactly
    what they would print without it, and see every write acknowledged before they
    began. Writes never go through the agent. When the agent cannot reach its server,
    clients read the server themselves (with a warning).

    Example:  skyctl agent &

              skyctl get svc -A       # answered by the agent
    """
    run_command = ctx.find_root().obj  # cli.main.main, which runs skyctl's commands
    if not callable(run_command):
        raise InvalidInput("agent", "skyctl agent", "runs only as skyctl's own command")
    own = ["--context", conn.context] if conn.context else []
    path = socket_path or agent_socket(own) or default_socket()
    if "\0" in path or not path.strip():
        raise InvalidInput("socket", path, "must be a file path")
    if status:
        _ask_status(path)

    dns_plan = (
        DnsPlan.from_flags(dns, domain, cluster_ips=proxy, allow_remote=allow_remote)
        if dns is not None
        else None
    )
    proxy_plan = ProxyPlan.from_flags(proxy_mode, node_address) if proxy else None
    if anonymous and ui is None:
        raise InvalidInput("anonymous", "--anonymous", "goes with --ui")
    web_ui = None
    if ui is not None:
        from cli.webapp import DnsView

        # A service's page shows what this node's DNS answers (as `skyctl dns` would
        # with the agent's --domain; with --proxy, cluster IPs).
        web_ui = (
            ui,
            UiPlan.from_flags(ui, allow_remote=allow_remote, anonymous=anonymous),
            DnsView(dns_plan.domain.to_text(), dns_plan.ttl, cluster_ips=proxy)
            if dns_plan is not None
            else DnsView(parse_domain_flag(domain).to_text(), cluster_ips=proxy),
        )

    async def run() -> None:
        from registry.agent.server import AgentServer

        async with contextlib.AsyncExitStack() as stack:
            # The DNS address first: a bad one fails before anything else starts.
            bound = await stack.enter_async_context(await dns_plan.bind()) if dns_plan else None
            web = web_ui[1].bind(web_ui[0]) if web_ui is not None else None
            if web is not None:
                stack.callback(web.close)
            registry = await _registry_when_there(conn, long_lived=False)
            host = _Host(conn, registry, asyncio.get_running_loop(), run_command)
            stack.push_async_callback(lambda: host.registry.close())
            await stack.enter_async_context(AgentServer(path, host.handle, host.counters))
            user = await registry.log.authenticated_user() or "no user"
            print(
                f"agent: answering reads on {path} for {registry.log.url} (as {user}); "
                "Ctrl-C stops",
                flush=True,
            )
            jobs = [host.watch_connection()]
            if web_ui is not None and web is not None:
                # Its visitors' connections are their own (or, --anonymous, the agent's
                # identity over one that reconnects by itself), opened as they come.
                _, plan, shown_dns = web_ui
                jobs.append(plan.serve(web, conn, shown_dns))
            if bound is not None or proxy_plan is not None:
                # One view of the node's services and endpoints feeds both, over a
                # connection that comes back by itself.
                plane = await _registry_when_there(conn, long_lived=True)
                stack.push_async_callback(plane.close)
                resolver = await stack.enter_async_context(plane.resolver())
                if dns_plan is not None and bound is not None:
                    jobs.append(dns_plan.serve(bound, resolver))
                if proxy_plan is not None:
                    jobs.append(proxy_plan.serve(plane, resolver, conn.server))
            await _all(jobs)

    real = sys.stdout, sys.stderr
    sys.stdout = _Routed(real[0], 0)
    sys.stderr = _Routed(real[1], 1)
    try:
        run_until_stopped(run)
    finally:
        sys.stdout, sys.stderr = real
