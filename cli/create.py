"""``skyctl create service``: parse the flags, create the service, say so."""

from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.files import create_from_files, no_files_or_noun
from cli.lifetime import run_command
from cli.options import DryRunOpt, FilenameOpt, NamespaceFlag, NamespaceOpt, Output
from cli.parse import parse_service
from cli.verbs import register, verb_app
from cli.views import print_records

if TYPE_CHECKING:
    from registry.services.projection import ServiceRecord

__all__ = ["create_app"]

create_app = verb_app("Create a resource.", files=True)


@create_app.callback()
@connection_options
def create_files(
    ctx: typer.Context,
    filename: FilenameOpt = None,
    namespace: NamespaceFlag = None,
    dry_run: DryRunOpt = False,
    *,
    conn: Connection,
) -> None:
    """Create a resource: a service by its flags, or the services of manifests (-f).

    Example:  skyctl create -f services.yaml
    """
    if ctx.invoked_subcommand is not None:
        return
    if not filename:
        raise no_files_or_noun("create")
    create_from_files(conn, filename, namespace, dry_run)


@connection_options
def create_service(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Name of the service.", show_default=False)
    ],
    namespace: NamespaceOpt = "default",
    service_type: Annotated[
        str,
        typer.Option(
            "-t",
            "--service_type",
            "--service-type",
            help="ClusterIP, NodePort, LoadBalancer or ExternalName (any case).",
        ),
    ] = "ClusterIP",
    selector: Annotated[
        list[str] | None,
        typer.Option(
            "-s",
            "--selector",
            metavar="KEY=VALUE",
            help="Label selector for the jobs; repeat it or use commas.",
        ),
    ] = None,
    ports: Annotated[
        list[str] | None,
        typer.Option(
            "-p",
            "--ports",
            metavar="PORT[:TARGET][/TCP|UDP]",
            help="Port mapping port:targetPort; repeat it or use commas.",
        ),
    ] = None,
    cluster: Annotated[
        str | None, typer.Option("-c", "--cluster", help="Cluster to expose the service on.")
    ] = None,
    labels: Annotated[
        list[str] | None,
        typer.Option(
            "--labels",
            metavar="KEY=VALUE",
            help="The service's own labels; repeat it or use commas.",
        ),
    ] = None,
    cluster_ip: Annotated[
        str | None,
        typer.Option(
            "--cluster-ip",
            "--clusterip",
            metavar="IP|None",
            help="The cluster IP to give it (from the service range; chosen by the "
            "registry if omitted), or None for a headless service (no cluster IP).",
        ),
    ] = None,
    external_name: Annotated[
        str | None,
        typer.Option(
            "--external-name",
            metavar="DNS-NAME",
            help="For -t ExternalName: the DNS name it stands for (its DNS name answers "
            "a CNAME to it).",
        ),
    ] = None,
    dry_run: DryRunOpt = False,
    output: Annotated[
        Output | None, typer.Option("--output", "-o", help="Print the created service.")
    ] = None,
    *,
    conn: Connection,
) -> None:
    """Create a service; it gets a cluster IP (and, for NodePort and LoadBalancer, a node
    port per port) that no other service holds.

    Example:  skyctl create service myService -t ClusterIP -s app=myApp -p 80:8080 -c myCluster
    """
    service = parse_service(
        name,
        namespace=namespace,
        service_type=service_type,
        selectors=selector or [],
        ports=ports or [],
        cluster=cluster,
        labels=labels or [],
        cluster_ip=cluster_ip,
        external_name=external_name,
    )

    async def create() -> "ServiceRecord":
        async with await conn.open(writes=True) as registry:
            return await registry.create(service, dry_run=dry_run)

    record = run_command(create())
    if output is None:
        print(f"service/{record.service.name} created{' (dry run)' if dry_run else ''}")
    else:
        print_records([record], output, single=True)


register(create_app, create_service, short_help="Create a service from flags.")


@connection_options
def create_quota(
    name: Annotated[
        str, typer.Argument(metavar="NAME", help="Name of the quota.", show_default=False)
    ],
    namespace: NamespaceOpt = "default",
    hard: Annotated[
        str,
        typer.Option(
            "--hard",
            metavar="NAME=COUNT,...",
            help="Limits: services, services.nodeports, services.loadbalancers "
            "(one left out is unlimited).",
            show_default=False,
        ),
    ] = "",
    *,
    conn: Connection,
) -> None:
    """Set a namespace's quota (admins only), as a Kubernetes ResourceQuota: the
    registry refuses a write that would take the namespace past it. It replaces the
    namespace's quota before; a namespace without one is unlimited.

    Example:  skyctl create quota shop -n shop --hard=services=10,services.nodeports=4
    """
    from events.names import check_name
    from registry.addresses.quotas import parse_hard
    from registry.errors import InvalidInput

    try:
        check_name(name)
    except ValueError as exc:
        raise InvalidInput("quota name", name, str(exc)) from None
    if not hard:
        raise InvalidInput("--hard", hard, "give at least one limit, e.g. --hard=services=10")
    limits = parse_hard(hard)

    async def create() -> bool:
        async with await conn.open(writes=True) as registry:
            _, new = await registry.set_quota(namespace, name, limits)
            return new

    new = run_command(create())
    print(f"resourcequota/{name} {'created' if new else 'configured'}")


register(create_app, create_quota, noun="quota", short_help="Set a namespace's quota (admins).")
