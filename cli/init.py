"""``skyctl init``: create (or upgrade) the registry's streams and subscriptions bucket and
report them; set the address ranges; give services from before addresses their own."""

import dataclasses
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.terminal import safe

if TYPE_CHECKING:
    from events import Service
    from registry.services.proof import Signer

__all__ = ["init"]


@connection_options
def init(
    replicas: Annotated[
        int | None,
        typer.Option(
            "--replicas",
            "-r",
            min=1,
            max=5,
            help="Copies JetStream keeps of the log: 3 on a three-node cluster. Creates "
            "with it, and scales an existing stream to it. Without it: $SKYFLOW_REPLICAS, "
            "else 1, for what is created; what exists is left as it is.",
            show_default=False,
        ),
    ] = None,
    service_cidr: Annotated[
        str | None,
        typer.Option(
            "--service-cidr",
            metavar="CIDR",
            help="IPv4 network cluster IPs are allocated from (default 10.96.0.0/12). "
            "Addresses already held stay with their services.",
            show_default=False,
        ),
    ] = None,
    node_port_range: Annotated[
        str | None,
        typer.Option(
            "--node-port-range",
            metavar="FIRST-LAST",
            help="Ports node ports are allocated from (default 30000-32767).",
            show_default=False,
        ),
    ] = None,
    namespaces: Annotated[
        list[str] | None,
        typer.Option(
            "--namespace",
            "-n",
            metavar="NAMESPACE",
            help="Give this namespace its task intake stream (repeatable): where its "
            "announcers write, bounded and without roll-ups or purges. Needed for teams "
            "whose users may not create streams; elsewhere the first announce makes it.",
            show_default=False,
        ),
    ] = None,
    membership_retention: Annotated[
        str | None,
        typer.Option(
            "--membership-retention",
            metavar="DURATION",
            help="How long the membership history keeps each transition (who served "
            "each service when; default 30d when created): 12h, 30d, 52w. Changes an "
            "existing history's retention.",
            show_default=False,
        ),
    ] = None,
    allocate_missing: Annotated[
        bool,
        typer.Option(
            "--allocate-missing",
            help="Give every live service that lacks addresses (created before they "
            "existed) its cluster IP and node ports, through the same atomic batches.",
        ),
    ] = False,
    *,
    conn: Connection,
) -> None:
    """Create (or upgrade) the registry's streams and bucket; report them and the ranges.

    The event stream (a stream an older version made is upgraded in place), the
    durable-subscriptions bucket, and the liveness stream tasks announce themselves in.
    Any command creates what it needs on first use; init does it up front, with the
    replica count a cluster needs, and is how an admin sets the ranges addresses come
    from.

    Example:  skyctl init --replicas 3 -S nats://127.0.0.1:4222,nats://127.0.0.1:4223
    """
    from cli.parse import parse_name
    from registry.addresses.holdings import open_slots
    from registry.addresses.ranges import parse_cidr, parse_port_range
    from registry.client import Registry
    from registry.jetstream.provision import provision

    # Bad values are refused before anything is touched.
    if service_cidr is not None:
        parse_cidr(service_cidr)
    ports = parse_port_range(node_port_range) if node_port_range is not None else None
    wanted = tuple(dict.fromkeys(parse_name(n, "namespace") for n in namespaces or ()))
    retention = None
    if membership_retention is not None:
        from cli.parse import parse_retention

        retention = parse_retention(membership_retention, "--membership-retention")

    async def run() -> None:
        async with await dataclasses.replace(conn, replicas=replicas).open_log() as log:
            made = await provision(
                log,
                scale=replicas is not None,
                namespaces=wanted,
                membership_retention_s=retention,
            )
            for line in made:
                print(safe(str(line)), flush=True)  # node names come from the server
            registry = Registry(log, signer=_signer(conn))
            if service_cidr is not None or ports is not None:
                ranges, changed = await registry.set_ranges(service_cidr, ports)
                verb = "set to" if changed else "already"
            else:
                ranges, verb = await registry.ranges(), "from"
            print(
                f"addresses {verb}: cluster IPs {ranges.network}, node ports "
                f"{ranges.first_port}-{ranges.last_port}",
                flush=True,
            )
            lacking = [r for r in await registry.list() if open_slots(r.service)]
            if not allocate_missing:
                if lacking:
                    print(
                        f"{len(lacking)} service{' has' if len(lacking) == 1 else 's have'} "
                        "no addresses (created before they existed): run "
                        "skyctl init --allocate-missing",
                        flush=True,
                    )
                return
            for record in lacking:
                service = record.service
                done = await registry.readdress(service.namespace, service.name)
                if done is not None:
                    print(
                        f"service/{safe(service.name)} -n {safe(service.namespace)} "
                        f"given {_addresses(done.service)}",
                        flush=True,
                    )

    run_command(run())


def _signer(conn: Connection) -> "Signer | None":
    from registry.services.proof import Signer

    creds = conn.credentials().creds_file
    return Signer.from_creds(creds) if creds is not None else None


def _addresses(service: "Service") -> str:
    parts = [f"cluster IP {service.cluster_ip}"] if service.cluster_ip else []
    parts += [f"node port {p.node_port}" for p in service.ports if p.node_port is not None]
    return ", ".join(parts) or "no addresses"
