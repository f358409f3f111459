"""Keep a load balancer's upstream equal to a service's live endpoints.

A small, real client of the ``Resolver``: it follows one service (its ports from the
event log, its tasks from the liveness stream) and rewrites an nginx ``upstream``
include, one block per service port and one ``server`` line per ready endpoint, each
time they change: a task announced, withdrawn, turned ready or not, or forgotten by the
server when its heartbeats stopped; or the service's selector or ports changed.

    python examples/lb_upstreams.py shop/web upstreams.conf --server nats://127.0.0.1:4222

It needs no state of its own: the Resolver reads the current state when it starts and
again after the server was away. While the server is unreachable the file keeps the last
endpoints known, and a warning on stderr says how stale they are; the file is written
only when its content changes, so a reload hook (``--then "nginx -s reload"``) runs only
then.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from pathlib import Path

from registry.client import Registry
from registry.discovery.endpoints import Endpoints
from registry.discovery.resolver import Resolver
from registry.errors import RegistryError

STALE_WARNING_S = 5.0


def render(service: str, endpoints: Endpoints | None) -> str:
    lines = [
        "# Generated from the SkyFlow service registry by examples/lb_upstreams.py; do not edit.",
        f"# {service}: "
        + ("not live" if endpoints is None else f"{endpoints.status} endpoints ready"),
    ]
    if endpoints is None:
        return "\n".join(lines) + "\n"
    for port in endpoints.ports:
        upstream = f"{endpoints.namespace}__{endpoints.name}__{port.port}"
        ready = endpoints.endpoints(port.port)
        lines.append(f"\nupstream {upstream} {{  # {port.protocol.value}")
        for endpoint in ready:
            lines.append(f"    server {endpoint};  # task {endpoint.task}")
        if not ready:
            # nginx refuses an empty upstream: one server that is always down.
            lines.append("    server 127.0.0.1:1 down;  # no ready endpoint")
        lines.append("}")
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> bool:
    """Replace the file's content; False (and nothing written) if it is already that."""
    if path.exists() and path.read_text() == text:
        return False
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
    return True


async def warn_while_stale(resolver: Resolver, service: str) -> None:
    """Once per outage: when the endpoints served become stale, and when they are not."""
    warned = False
    while True:
        await asyncio.sleep(1.0)
        stale = resolver.stale_for(service)
        if stale >= STALE_WARNING_S and not warned:
            print(
                f"warning: server unreachable for {stale:.0f} s; keeping the last endpoints",
                file=sys.stderr,
                flush=True,
            )
            warned = True
        elif stale < STALE_WARNING_S and warned:
            print("server reachable again; endpoints current", file=sys.stderr, flush=True)
            warned = False


async def run(service: str, output: Path, server: str, then: str | None) -> None:
    async with (
        await Registry.connect(server, keep_reconnecting=True) as registry,
        registry.resolver() as resolver,
    ):
        stale = asyncio.create_task(warn_while_stale(resolver, service))
        try:
            async for endpoints in resolver.watch(service):
                if write_atomically(output, render(service, endpoints)):
                    status = "not live" if endpoints is None else endpoints.status
                    print(f"{output}: {service} {status}", flush=True)
                    if then:  # the user's own command, e.g. "nginx -s reload"
                        hook = await asyncio.create_subprocess_shell(then)
                        await hook.wait()
        finally:
            stale.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("service", help="namespace/name (a bare name is in 'default')")
    parser.add_argument("output", type=Path, help="the nginx include file to keep in sync")
    parser.add_argument("--server", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--then", default=None, help="a command to run after each rewrite")
    args = parser.parse_args()

    async def until_stopped() -> None:
        task = asyncio.create_task(run(args.service, args.output, args.server, args.then))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_stopped())
    except RegistryError as exc:  # bad service name, refusal, unreachable server
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
