"""Keep a load balancer's configuration in sync with the SkyFlow registry.

A small, real subscriber: it follows the registry's events through a durable
subscription and rewrites an nginx ``upstream`` include whenever a service appears or
goes away. Stop it and start it again and it continues after the last event it
handled; nothing is missed and nothing is applied twice in a way that matters (creating
a known service or deleting an unknown one changes nothing).

    python examples/lb_config.py upstreams.conf --server nats://127.0.0.1:4222

The state it needs across restarts (the live services) sits next to the output as
``<output>.state.json``, written before the event is acknowledged: at-least-once
delivery plus idempotent handling gives an output that always equals the registry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any, assert_never

from events import (
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatusChanged,
    ServiceUpdated,
)
from registry.client import Registry
from registry.errors import RegistryError


def render(services: dict[str, dict[str, Any]], seq: int) -> str:
    lines = [
        "# Generated from the SkyFlow service registry by examples/lb_config.py; do not edit.",
        f"# registry log sequence {seq}",
    ]
    for key in sorted(services):
        svc = services[key]
        selector = ",".join(f"{k}={v}" for k, v in sorted(svc["selector"].items())) or "<none>"
        cluster = svc["cluster"] or "local"
        lines.append(f"\n# {key} ({svc['type']}, selector {selector}) on {cluster}")
        for port in svc["ports"]:
            upstream = f"{svc['namespace']}__{svc['name']}__{port['port']}"
            target = f"{svc['name']}.{svc['namespace']}.svc.{cluster}:{port['target_port']}"
            lines.append(
                f"upstream {upstream} {{ server {target} resolve; }}  # {port['protocol']}"
            )
    return "\n".join(lines) + "\n"


def write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def run(output: Path, server: str, namespace: str | None, subscription: str) -> None:
    state_file = output.with_name(output.name + ".state.json")
    state: dict[str, Any] = (
        json.loads(state_file.read_text()) if state_file.exists() else {"seq": 0, "services": {}}
    )
    services: dict[str, dict[str, Any]] = state["services"]
    write_atomically(output, render(services, state["seq"]))
    async with (
        await Registry.connect(server, keep_reconnecting=True) as registry,
        registry.subscribe(namespace, start="beginning", durable=subscription) as events,
    ):
        async for delivery in events:
            event = delivery.event
            key = f"{event.namespace}/{event.name}"
            match event:
                case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
                    services[key] = event.service.model_dump(mode="json")
                case ServiceDeleted() | ServiceForceDeleted():
                    services.pop(key, None)
                case _:
                    assert_never(event)
            state = {"seq": delivery.seq, "services": services}
            write_atomically(state_file, json.dumps(state))
            write_atomically(output, render(services, delivery.seq))
            await events.ack(delivery)  # only once the output holds it


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("output", type=Path, help="the nginx include file to keep in sync")
    parser.add_argument("--server", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--namespace", default=None, help="only this namespace (default: all)")
    parser.add_argument("--subscription", default="lb-config", help="durable subscription name")
    args = parser.parse_args()

    async def until_stopped() -> None:
        task = asyncio.create_task(run(args.output, args.server, args.namespace, args.subscription))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_stopped())
    except RegistryError as exc:  # a refusal, a corrupt checkpoint, an unreachable server
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
