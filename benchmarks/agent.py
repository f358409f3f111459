"""Reads through the node agent (``skyctl agent``), each beside a raw one-shot nats-py
process doing a direct get of the same service, in alternating rounds on one server:

- ``skyctl get service NAME``, ``skyctl get service -A`` listing 1,000 services and
  ``skyctl get endpoints NAME`` (3 live tasks), answered by the agent (target: 0.6x the
  raw process, which pays for importing nats-py and connecting);
- the same commands with no agent (``SKYFLOW_AGENT=off``), for reference;
- ``etcdctl get`` of one key on a local etcd, for scale, where ``etcd`` and ``etcdctl``
  are installed (Debian: ``etcd-server``, ``etcd-client``); skipped with the reason
  otherwise.

Every command is a fresh process timed from start to exit, as a user runs it.

    python -m benchmarks.agent              # 21 rounds (~1 min)
    python -m benchmarks.agent --runs 11
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import raw
from benchmarks.commands import free_port, skyctl_command, timed
from benchmarks.report import Result, Run, median
from benchmarks.run import precompile
from events import Port, Service
from events.task import Task
from registry.client import Registry
from registry.jetstream.server import NatsServer

__all__ = ["main"]

NS = "bench"
SERVICES = 1000  # in the registry, all listed by get -A
TARGET = 0.6


def log(message: str) -> None:
    print(f"[agent] {message}", file=sys.stderr, flush=True)


async def _seed(registry: Registry) -> None:
    services = [
        Service(
            namespace=NS,
            name="web" if i == 0 else f"s{i:04d}",
            selector={"app": "web"} if i == 0 else {"app": f"a{i}"},
            ports=[Port(port=80, target_port=8080)],
        )
        for i in range(SERVICES)
    ]
    await registry.create_many(services)


def _etcd(folder: Path) -> tuple[subprocess.Popen[bytes] | None, list[str] | None, str]:
    """A local etcd with one key, and the command that reads it; or why not."""
    etcd, etcdctl = shutil.which("etcd"), shutil.which("etcdctl")
    if etcd is None or etcdctl is None:
        return None, None, "etcd or etcdctl not installed (Debian: etcd-server etcd-client)"
    client, peer = free_port(), free_port()
    endpoint = f"http://127.0.0.1:{client}"
    proc = subprocess.Popen(
        [
            etcd,
            "--data-dir",
            str(folder / "etcd"),
            "--listen-client-urls",
            endpoint,
            "--advertise-client-urls",
            endpoint,
            "--listen-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-advertise-peer-urls",
            f"http://127.0.0.1:{peer}",
            "--initial-cluster",
            f"default=http://127.0.0.1:{peer}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    command = [etcdctl, "--endpoints", endpoint]
    env = {**os.environ, "ETCDCTL_API": "3"}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        put = subprocess.run([*command, "put", "web", "x" * 250], env=env, capture_output=True)
        if put.returncode == 0:
            return proc, [*command, "get", "web"], ""
        time.sleep(0.2)
    proc.kill()
    return None, None, "etcd did not start within 20 s"


def _agent(env: dict[str, str], path: str) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [*skyctl_command(), "agent", "--socket", path],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("agent: answering"):
        proc.kill()
        raise RuntimeError(
            f"the agent did not start: {line}{proc.stderr.read() if proc.stderr else ''}"
        )
    return proc


async def scenario(url: str, run: Run, runs: int, folder: Path) -> str | None:
    """The rows; the reason the etcd row is skipped, if it is."""
    async with await Registry.connect(url) as registry:
        await _seed(registry)
        tasks = [
            Task(namespace=NS, name=f"web-{i}", labels={"app": "web"}, address=f"10.0.0.{i + 1}")
            for i in range(3)
        ]
        announcer = await registry.announcer()
        await announcer.announce(tasks, ttl=60)
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["NATS_URL"] = url
        path = str(folder / "agent.sock")
        agent = _agent({**env, "SKYFLOW_AGENT": "off"}, path)
        etcd, etcdctl, skipped = _etcd(folder)
        try:
            via = {**env, "SKYFLOW_AGENT": path}
            direct = {**env, "SKYFLOW_AGENT": "off"}
            skyctl = skyctl_command()
            commands: dict[str, tuple[list[str], dict[str, str]]] = {
                "baseline": (
                    [sys.executable, "-c", raw.DIRECT_GET_SCRIPT, f"skyflow.svc.{NS}.web"],
                    env,
                ),
                "get": ([*skyctl, "get", "service", "web", "-n", NS], via),
                "list": ([*skyctl, "get", "service", "-A"], via),
                "endpoints": ([*skyctl, "get", "endpoints", "web", "-n", NS], via),
                "get direct": ([*skyctl, "get", "service", "web", "-n", NS], direct),
                "list direct": ([*skyctl, "get", "service", "-A"], direct),
            }
            if etcdctl is not None:
                commands["etcdctl"] = (etcdctl, {**os.environ, "ETCDCTL_API": "3"})
            samples: dict[str, list[float]] = {k: [] for k in commands}
            for command, environment in commands.values():  # warm-up
                await asyncio.to_thread(timed, command, environment)
            for i in range(runs):
                # Alternating: each round runs every command once, in a rotating order.
                order = list(commands)
                order = order[i % len(order) :] + order[: i % len(order)]
                for key in order:
                    command, environment = commands[key]
                    samples[key].append(await asyncio.to_thread(timed, command, environment))
            log(f"{runs} rounds done")
        finally:
            agent.terminate()
            agent.wait(10)
            if etcd is not None:
                etcd.kill()
                etcd.wait(10)
    base = median(samples["baseline"])
    for key, scenario_name in [
        ("get", "`skyctl get service NAME` through the agent"),
        ("list", f"`skyctl get service -A` of {SERVICES:,} through the agent"),
        ("endpoints", "`skyctl get endpoints NAME` through the agent"),
    ]:
        run.add(Result(scenario_name, median(samples[key]), base, "ms", "time", TARGET, runs))
    for key, scenario_name in [
        ("get direct", "  (`get service NAME` with no agent)"),
        ("list direct", f"  (`get service -A` of {SERVICES:,} with no agent)"),
    ]:
        run.add(Result(scenario_name, median(samples[key]), base, "ms", "time", None, runs))
    if "etcdctl" in samples:
        run.add(
            Result(
                "  (`etcdctl get` of one key, for scale)",
                median(samples["etcdctl"]),
                base,
                "ms",
                "time",
                None,
                runs,
            )
        )
    return skipped or None


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.agent", description=__doc__)
    parser.add_argument("--runs", type=int, default=21, help="rounds of every command")
    args = parser.parse_args(argv)
    run = Run.started("agent", argv, {"services": SERVICES})
    precompile()
    with tempfile.TemporaryDirectory() as name, NatsServer(Path(name) / "store") as server:
        skipped = asyncio.run(scenario(server.url, run, args.runs, Path(name)))
    print(f"\n{run.command}  ({run.date}, {run.machine['cpus']} CPUs)\n")
    print("baseline: a fresh process that imports nats-py, connects and direct-gets one service\n")
    print(run.table())
    if skipped:
        print(f"\n`etcdctl get`, for scale: skipped: {skipped}")


if __name__ == "__main__":
    main()
