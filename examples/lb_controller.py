"""Give LoadBalancer services external addresses from a pool: a load-balancer controller.

A LoadBalancer service shows ``EXTERNAL-IP <pending>`` until a controller reports an
address for it. This one hands out addresses from the pools it is given, writes each as
the service's status, and takes it back when the service is deleted or stops being a
LoadBalancer; a service it cannot serve (the pool is used up) stays ``<pending>`` until an
address frees up.

    python examples/lb_controller.py --pool 192.0.2.10-192.0.2.20 --pool 198.51.100.0/28 -A

Nothing it knows lives only in its memory. Before acting on anything it reads every live
service (in all namespaces: the pool is one, whichever namespace it serves) and counts the
pool addresses their statuses hold; the registry's log is the only record of who holds
what, so a restart, a crash between writing a status and acknowledging the event that
caused it, or a second copy of the program on another host after this one died all
start from the truth. Each status is written on top of the revision the decision was
made on (``expected_revision``): if the service changed in between, the write is refused
and the service is read and decided again, so it never writes over a change it did not
see. Its durable subscription only saves re-reading events the start-up read covered.

Statuses are written on subjects only the controller role may publish on, so no team
sets its own load balancer's address; still, an address in the pool that this controller
(its user) did not assign is ignored: it holds nothing (it may be handed out again) and
the service it names is served as if it had none. An address outside the pool, written by
someone else, is left alone with its service. Run one controller per pool: two sharing a
subscription name are stopped by the registry (``CheckpointConflict``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import os
import signal
import sys
from collections import Counter
from collections.abc import Sequence
from typing import NoReturn, assert_never

from events import (
    Ingress,
    LoadBalancerStatus,
    ServiceCreated,
    ServiceDeleted,
    ServiceForceDeleted,
    ServiceStatus,
    ServiceStatusChanged,
    ServiceType,
    ServiceUpdated,
)
from events.names import check_name
from registry.client import Registry
from registry.errors import (
    Conflict,
    NotFound,
    RegistryError,
    Stale,
    UnreadableHistory,
    WriteNotConfirmed,
)
from registry.services.projection import ServiceKey, ServiceRecord
from registry.services.subscription import Delivery


def say(line: str) -> None:
    print(line, flush=True)  # one line per decision, for whoever follows the log


class Pool:
    """The addresses this controller may hand out: inclusive ranges of IPv4 addresses as
    integers, so a /16 costs two numbers rather than 65,536 objects."""

    def __init__(self, ranges: Sequence[tuple[int, int]], spelled: Sequence[str]) -> None:
        self.ranges = sorted(ranges)
        self.spelled = ", ".join(spelled)
        self.size = sum(last - first + 1 for first, last in _merged(self.ranges))

    @classmethod
    def parse(cls, values: Sequence[str]) -> Pool:
        """``FIRST-LAST``, a CIDR (its host addresses: not the network or broadcast
        address) or one address, each; ``ValueError`` naming the value otherwise."""
        ranges = []
        for value in values:
            try:
                if "-" in value:
                    first, last = (ipaddress.IPv4Address(v.strip()) for v in value.split("-", 1))
                    if last < first:
                        raise ValueError(f"{last} comes before {first}")
                    ranges.append((int(first), int(last)))
                else:
                    ranges.append(_hosts(ipaddress.IPv4Network(value.strip())))
            except ValueError as exc:
                raise ValueError(
                    f'invalid --pool "{value}": {exc}; give FIRST-LAST, a CIDR or one IPv4 address'
                ) from None
        if not ranges:
            raise ValueError("no --pool given: name the addresses to hand out")
        return cls(ranges, values)

    def __contains__(self, ip: int) -> bool:
        return any(first <= ip <= last for first, last in self.ranges)

    def first_free(self, held: Counter[int]) -> int | None:
        """The lowest address no live service holds: deterministic, so a write retried
        after a refusal asks for the same address again."""
        for first, last in self.ranges:
            for ip in range(first, last + 1):
                if not held[ip]:
                    return ip
        return None


def _hosts(network: ipaddress.IPv4Network) -> tuple[int, int]:
    first, last = int(network.network_address), int(network.broadcast_address)
    if network.prefixlen >= 31:  # point-to-point and single-address networks: all of it
        return first, last
    return first + 1, last - 1


def _merged(ranges: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    out: list[tuple[int, int]] = []
    for first, last in ranges:
        if out and first <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], last))
        else:
            out.append((first, last))
    return out


def ingress_ips(record: ServiceRecord | None) -> set[int]:
    """The addresses the service's status names, as written (by us or by anyone)."""
    status = record.status if record is not None else None
    if status is None:
        return set()
    return {int(ipaddress.IPv4Address(i.ip)) for i in status.load_balancer.ingress}


def reported_by(record: ServiceRecord | None) -> str | None:
    """Who wrote the service's status (None: nobody)."""
    report = record.status_report if record is not None else None
    return report.actor if report is not None else None


def record_after(delivery: Delivery) -> ServiceRecord | None:
    """The service as the delivered event leaves it (None: deleted)."""
    event = delivery.event
    match event:
        case ServiceCreated() | ServiceUpdated() | ServiceStatusChanged():
            return ServiceRecord.from_event(delivery.seq, event, delivery.data)
        case ServiceDeleted() | ServiceForceDeleted():
            return None
        case _:
            assert_never(event)


def show(key: ServiceKey) -> str:
    return f"{key[0]}/{key[1]}"


class Controller:
    """What the registry says holds which pool address, and the services waiting for one.

    ``live`` is every live service (all namespaces) at the revision last seen; ``held``
    counts, per pool address, the live services whose status names it (more than one
    means someone else wrote a duplicate: it stays held until all let go).
    """

    def __init__(self, registry: Registry, pool: Pool, namespace: str | None) -> None:
        self.registry = registry
        self.pool = pool
        self.namespace = namespace
        self.live: dict[ServiceKey, ServiceRecord] = {}
        self.held: Counter[int] = Counter()
        self.waiting: dict[ServiceKey, None] = {}  # insertion-ordered: first come, first served
        self.reported: set[ServiceKey] = set()  # told the log it stays <pending>
        self.me = ""  # the user our statuses name (set by start)

    def ours(self, record: ServiceRecord | None) -> set[int]:
        """The pool addresses the service holds: those this controller assigned it."""
        if reported_by(record) != self.me:
            return set()
        return {ip for ip in ingress_ips(record) if ip in self.pool}

    def wants_address(self, record: ServiceRecord) -> bool:
        """A LoadBalancer we serve whose status names no address but pool addresses we
        did not assign (ignored: they hold nothing)."""
        service = record.service
        foreign = {ip for ip in ingress_ips(record) if ip not in self.pool}
        return (
            service.type == ServiceType.LOAD_BALANCER
            and self.namespace in (None, service.namespace)
            and not foreign
            and not self.ours(record)
        )

    def observe(self, key: ServiceKey, record: ServiceRecord | None, *, news: bool) -> None:
        """Take in the service as the registry now has it (None: gone). ``news``: it comes
        from the log after start-up (not from our own write)."""
        before = self.ours(self.live.pop(key, None))
        after = self.ours(record)
        ignored = {ip for ip in ingress_ips(record) if ip in self.pool} - after
        if record is not None:
            for ip in sorted(ignored):
                say(
                    f"ignoring {ipaddress.IPv4Address(ip)} on {show(key)}: in the pool but "
                    f"not assigned by {self.me} (written by {reported_by(record)})"
                )
        for ip in after - before:
            if self.held[ip]:
                say(
                    f"warning: {ipaddress.IPv4Address(ip)} is held twice, by {show(key)} too; "
                    "leaving both alone"
                )
            self.held[ip] += 1
        for ip in before - after:
            self.held[ip] -= 1
            if not self.held[ip]:
                del self.held[ip]
                say(f"freed {ipaddress.IPv4Address(ip)} (held by {show(key)})")
        if record is None:
            self.waiting.pop(key, None)
            self.reported.discard(key)
            return
        self.live[key] = record
        if self.wants_address(record):
            self.waiting.setdefault(key, None)
        else:
            self.waiting.pop(key, None)
            self.reported.discard(key)

    async def start(self) -> int:
        """Read the registry as it is; return the log sequence that read covers."""
        self.me = await self.registry.actor()
        horizon = await self.registry.log.last_sequence()  # the read below sees at least this
        for record in await self.registry.list(None):
            self.observe(record.key, record, news=False)
        where = f"namespace {self.namespace}" if self.namespace else "all namespaces"
        say(
            f"serving {where} from pool {self.pool.spelled} ({self.pool.size} addresses, "
            f"{len(self.held)} held, {len(self.waiting)} services waiting)"
        )
        await self.serve_waiting()
        return horizon

    async def serve_waiting(self) -> None:
        for key in list(self.waiting):
            if key in self.waiting:
                await self.serve(key)

    async def serve(self, key: ServiceKey) -> None:
        """Give the service the lowest free address, on top of the revision we saw."""
        while key in self.waiting:
            record = self.live[key]
            ip = self.pool.first_free(self.held)
            if ip is None:
                if key not in self.reported:
                    self.reported.add(key)
                    say(
                        f"{show(key)} stays <pending>: all {self.pool.size} addresses of "
                        f"{self.pool.spelled} are held"
                    )
                return
            status = ServiceStatus(
                load_balancer=LoadBalancerStatus(
                    ingress=(Ingress(ip=str(ipaddress.IPv4Address(ip))),)
                )
            )
            try:
                after: ServiceRecord | None = await self.registry.set_status(
                    *key, status, expected_revision=record.seq
                )
            except (Stale, Conflict, WriteNotConfirmed):
                # Changed since we looked, or we cannot tell whether our write landed:
                # read what is there now and decide again.
                after = await self.reread(key)
            except NotFound:
                after = None
            except UnreadableHistory as exc:
                # Its last event is one we cannot read: no safe decision. Until a readable
                # event about it arrives, it is left as it is (its address, if any, held).
                say(f"{show(key)} left alone: {exc}")
                self.waiting.pop(key, None)
                return
            self.observe(key, after, news=False)
            if after is not None and ip in ingress_ips(after):
                say(f"assigned {ipaddress.IPv4Address(ip)} to {show(key)}")

    async def reread(self, key: ServiceKey) -> ServiceRecord | None:
        try:
            return await self.registry.get(*key)
        except NotFound:
            return None

    async def handle(self, delivery: Delivery, horizon: int) -> None:
        """Apply one event unless the start-up read (or a write of ours) already covers it."""
        event = delivery.event
        key = (event.namespace, event.name)
        seen = self.live.get(key)
        if delivery.seq <= horizon or (seen is not None and delivery.seq <= seen.seq):
            return
        # The event says what the service is; its status is on a subject of its own.
        record = record_after(delivery)
        if record is not None:
            record = await self.reread(key)
        self.observe(key, record, news=True)
        await self.serve_waiting()


async def run(server: str, pool: Pool, namespace: str | None, subscription: str) -> None:
    async with (
        await Registry.connect(server, keep_reconnecting=True) as registry,
        # Opened before the start-up read, so nothing appended after that read is missed.
        registry.subscribe(None, start="new", durable=subscription) as events,
    ):
        controller = Controller(registry, pool, namespace)
        horizon = await controller.start()
        await events.ack(horizon)  # the start-up read covered all of it
        async for delivery in events:
            await controller.handle(delivery, horizon)
            await events.ack(delivery)  # only once its status is written


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {message} (see --help)\n")  # one line, no usage block


def main() -> None:
    parser = Parser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pool",
        action="append",
        default=[],
        metavar="ADDRESSES",
        help="addresses to hand out: FIRST-LAST, a CIDR or one address (repeatable)",
    )
    where = parser.add_mutually_exclusive_group()
    where.add_argument("-n", "--namespace", default="default", help="serve this namespace")
    where.add_argument("-A", "--all-namespaces", action="store_true", help="serve all")
    parser.add_argument("--server", default=os.environ.get("NATS_URL", "nats://127.0.0.1:4222"))
    parser.add_argument("--subscription", default="lb-controller", help="durable subscription")
    args = parser.parse_args()
    try:
        pool = Pool.parse(args.pool)
        for what, value in (("--namespace", args.namespace), ("--subscription", args.subscription)):
            try:
                check_name(value)
            except ValueError as exc:
                raise ValueError(f'invalid {what} "{value}": {exc}') from None
    except ValueError as exc:
        parser.exit(2, f"error: {exc}\n")
    namespace = None if args.all_namespaces else args.namespace

    async def until_stopped() -> None:
        task = asyncio.create_task(run(args.server, pool, namespace, args.subscription))
        loop = asyncio.get_running_loop()

        def stop() -> None:
            # Again each second until it is done: Python 3.11's asyncio.wait_for drops a
            # cancellation that lands as its reply arrives (fixed in 3.12), and a dropped
            # one would leave the controller running after SIGTERM.
            if not task.done():
                task.cancel()
                loop.call_later(1.0, stop)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        with contextlib.suppress(asyncio.CancelledError):
            await task

    try:
        asyncio.run(until_stopped())
    except RegistryError as exc:  # a refusal, another copy of us, an unreachable server
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main()
