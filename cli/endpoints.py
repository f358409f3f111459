"""``skyctl get endpoints [NAME]``: each service's live endpoints, as kubectl shows them.

The table is kubectl's: up to three ready ``address:port`` pairs, then ``+ N more...``;
``-o wide`` gives one row per address (ready or not, with its cluster and task);
``-o json|yaml`` is Kubernetes' Endpoints object, one subset per cluster, with ready and
not-ready addresses apart.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any

import typer

from cli.connection import Connection, connection_options
from cli.options import NamespaceOpt, Output, all_namespaces_option, output_option
from cli.parse import parse_name
from cli.render import API_VERSION, Table, endpoints_cell, human_age, to_json, to_yaml
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from events import Port
    from registry.discovery.endpoints import EndpointAddress, Endpoints
    from registry.discovery.follower import ServiceEndpoints

__all__ = ["endpoints_object", "get_endpoints"]

# kubectl's: NAMESPACE only with -A, first.
COLUMNS = ("NAME", "ENDPOINTS", "AGE")
WIDE_COLUMNS = ("NAME", "CLUSTER", "ADDRESS", "PORTS", "READY", "TASK")


@connection_options
def get_endpoints(
    name: Annotated[
        str | None,
        typer.Argument(
            metavar="[NAME]", help="Service name; every service if omitted.", show_default=False
        ),
    ] = None,
    namespace: NamespaceOpt = "default",
    all_namespaces: Annotated[bool, all_namespaces_option("Endpoints of every namespace.")] = False,
    output: Annotated[
        Output, output_option(Output.table, Output.wide, Output.json, Output.yaml)
    ] = Output.table,
    *,
    conn: Connection,
) -> None:
    """Show the live endpoints of one service, or of every service in a namespace.

    An endpoint is a live task the service's selector picks, as address:targetPort for
    each of its ports, grouped by cluster; ENDPOINTS lists the ready ones.

    Example:  skyctl get endpoints web -n shop
    """
    namespace = parse_name(namespace, "namespace")
    if name is not None:
        parse_name(name)
        if all_namespaces:
            raise InvalidInput("name", name, "a name cannot be combined with --all-namespaces")
    scope = None if all_namespaces else namespace

    async def read() -> list[ServiceEndpoints]:
        from registry.discovery.follower import ServiceEndpoints

        async with await conn.open() as registry:
            if name is None:
                return await registry.list_endpoints(scope)
            record = await registry.get(namespace, name)
            return [ServiceEndpoints(record, await registry.endpoints(namespace, name))]

    found = asyncio.run(read())
    if not found and output in (Output.table, Output.wide):
        where = "any namespace" if scope is None else f"{scope} namespace"
        print(f"No resources found in {where}.", file=sys.stderr)
        return
    print(render(found, output, single=name is not None, all_namespaces=all_namespaces))


def render(
    found: Sequence[ServiceEndpoints],
    output: Output,
    *,
    single: bool,
    all_namespaces: bool = False,
) -> str:
    if output in (Output.table, Output.wide):
        if output is Output.table:
            header: Sequence[str] = COLUMNS
            rows = [[s.endpoints.name, endpoints_cell(s.endpoints), _age(s)] for s in found]
            spaces = [s.endpoints.namespace for s in found]
        else:
            header = WIDE_COLUMNS
            pairs = [(s.endpoints.namespace, row) for s in found for row in wide_rows(s.endpoints)]
            spaces, rows = [n for n, _ in pairs], [r for _, r in pairs]
        if all_namespaces:
            header = ("NAMESPACE", *header)
            rows = [[space, *row] for space, row in zip(spaces, rows, strict=True)]
        return Table(header, rows).render(rows)
    objects = [endpoints_object(s.endpoints) for s in found]
    obj = objects[0] if single else {"apiVersion": API_VERSION, "kind": "List", "items": objects}
    return to_json(obj) if output is Output.json else to_yaml(obj)


def _age(found: ServiceEndpoints) -> str:
    return human_age(found.record.created)


def wide_rows(endpoints: Endpoints) -> list[list[str]]:
    def ports(a: EndpointAddress) -> str:
        pairs = zip(endpoints.targets(a), endpoints.ports, strict=True)
        cells = [f"{t}/{p.protocol.value}" for t, p in pairs if t is not None]
        return ",".join(cells) or "<none>"

    rows = [
        [
            endpoints.name,
            a.cluster or "<none>",
            a.address,
            ports(a),
            "draining" if a.draining else "true" if a.ready else "false",
            a.task,
        ]
        for a in endpoints.addresses
    ]
    return rows or [[endpoints.name, *["<none>"] * 5]]


def endpoints_object(endpoints: Endpoints) -> dict[str, Any]:
    """Kubernetes' Endpoints: a subset per cluster (``cluster`` added), ready addresses
    and not-ready ones apart, each naming its task (``targetRef``)."""

    def address(a: EndpointAddress) -> dict[str, Any]:
        obj: dict[str, Any] = {"ip": a.address, "targetRef": {"kind": "Task", "name": a.task}}
        if a.draining:  # EndpointSlice's condition: leaving, takes no new traffic
            obj["terminating"] = True
        return obj

    def port(p: Port, target: int) -> dict[str, Any]:
        obj: dict[str, Any] = {"port": target, "protocol": p.protocol.value}
        return {"name": p.name, **obj} if p.name is not None else obj

    return {
        "apiVersion": API_VERSION,
        "kind": "Endpoints",
        "metadata": {"name": endpoints.name, "namespace": endpoints.namespace},
        "subsets": [
            {
                "cluster": subset.cluster,
                "addresses": [address(a) for a in subset.ready],
                "notReadyAddresses": [address(a) for a in subset.not_ready],
                "ports": [
                    port(p, target)
                    for p, target in zip(endpoints.ports, subset.targets, strict=True)
                    if target is not None
                ],
            }
            for subset in endpoints.subsets()
        ],
    }
