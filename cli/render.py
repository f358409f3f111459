"""How services look on a terminal and to scripts: kubectl's shapes, so habits carry over.

Tables are plain aligned columns (pipes and ``grep`` keep working); ``-o json`` and
``-o yaml`` print Kubernetes-style objects (``.spec.ports[0].targetPort``), and a
watch in JSON is one ``{"type": ..., "object": ...}`` per line, as ``kubectl get -w``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, assert_never

from cli.terminal import safe
from events.stamps import format_time

if TYPE_CHECKING:
    from events import Event, Port, Service, ServiceStatus
    from registry.discovery.endpoints import EndpointAddress, Endpoints, Subset
    from registry.services.projection import ServiceRecord
    from registry.services.proof import Proof, Trust

__all__ = [
    "COLUMNS",
    "UNSIGNED",
    "WIDE_COLUMNS",
    "Table",
    "camel_keys",
    "cluster_ip_cell",
    "columns",
    "endpoints_cell",
    "endpoints_status",
    "endpoints_subsets",
    "event_changes",
    "external_ip_cell",
    "human_age",
    "ingress_text",
    "list_object",
    "ports_cell",
    "proof_cell",
    "record_proof",
    "selector_cell",
    "service_object",
    "service_row",
    "short_time",
    "signing_in_use",
    "spec_cells",
    "spec_port",
    "status_after",
    "status_object",
    "target_ports_cell",
    "to_json",
    "to_yaml",
]

API_VERSION = "skyflow.io/v1"
# kubectl's columns for services; NAMESPACE goes first under -A, as kubectl puts it.
COLUMNS = ("NAME", "TYPE", "CLUSTER-IP", "EXTERNAL-IP", "PORT(S)", "AGE")
# -o wide adds kubectl's SELECTOR and what SkyFlow has beyond kubectl: the target ports
# (the ``80:8080`` of ``-p`` shows as PORT(S) 80/TCP, TARGET-PORTS 8080), the cluster,
# the revision and who created it (and whether that is proven).
WIDE_COLUMNS = (
    *COLUMNS,
    "TARGET-PORTS",
    "SELECTOR",
    "CLUSTER",
    "REVISION",
    "CREATED-BY",
    "PROOF",
)
NONE = "<none>"
PENDING = "<pending>"
_GAP = "   "


def human_age(since: datetime, now: datetime | None = None) -> str:
    """kubectl's HumanDuration: two units where that is useful, one where it is not."""
    seconds = max(0, int(((now or datetime.now(UTC)) - since).total_seconds()))
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if seconds < 120:
        return f"{seconds}s"
    if minutes < 10:
        return f"{minutes}m{seconds % 60}s" if seconds % 60 else f"{minutes}m"
    if hours < 3:
        return f"{minutes}m"
    if hours < 8:
        return f"{hours}h{minutes % 60}m" if minutes % 60 else f"{hours}h"
    if hours < 48:
        return f"{hours}h"
    if days < 8:
        return f"{days}d{hours % 24}h" if hours % 24 else f"{days}d"
    if days < 365 * 2:
        return f"{days}d"
    years = days // 365
    return f"{years}y{days % 365}d" if days % 365 else f"{years}y"


def columns(*, wide: bool = False, all_namespaces: bool = False) -> list[str]:
    """The header of ``get``'s table."""
    header = list(WIDE_COLUMNS if wide else COLUMNS)
    return ["NAMESPACE", *header] if all_namespaces else header


def selector_cell(service: Service) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(service.selector.items())) or NONE


def cluster_ip_cell(service: Service) -> str:
    """CLUSTER-IP as kubectl prints it: the address, ``None`` for a headless service,
    ``<none>`` for one without (an ExternalName, or one from before addresses)."""
    return service.cluster_ip or NONE


def ingress_text(status: ServiceStatus | None) -> str:
    """A load balancer's external addresses, comma-separated; empty if there are none."""
    if status is None:
        return ""
    return ",".join(ingress.ip for ingress in status.load_balancer.ingress)


def external_ip_cell(service: Service, status: ServiceStatus | None) -> str:
    """EXTERNAL-IP as kubectl prints it: a LoadBalancer's ingress addresses, or
    ``<pending>`` until a controller reports them; an ExternalName's DNS name; ``<none>``
    for other types."""
    from events import ServiceType

    if service.type == ServiceType.EXTERNAL_NAME:
        return service.external_name or NONE
    if service.type != ServiceType.LOAD_BALANCER:
        return NONE
    return ingress_text(status) or PENDING


def ports_cell(service: Service) -> str:
    """PORT(S) as kubectl prints it: ``80/TCP``, or ``80:30080/TCP`` with a node port."""
    shown = [
        f"{p.port}/{p.protocol.value}"
        if p.node_port is None
        else f"{p.port}:{p.node_port}/{p.protocol.value}"
        for p in service.ports
    ]
    return ",".join(shown) or NONE


def target_ports_cell(service: Service) -> str:
    """TARGET-PORTS of ``-o wide``: where each port's traffic goes on the jobs."""
    return ",".join(str(p.target_port) for p in service.ports) or NONE


def spec_port(port: Port) -> str:
    """One port as a service's spec (and ``-p``) writes it, ``80:8080/TCP``, with its node
    port when it holds one: ``80:8080/TCP(nodePort=30080)`` (a third number after a colon
    would read as kubectl's ``port:nodePort``, which is not what ``-p`` means)."""
    text = f"{port.port}:{port.target_port}/{port.protocol.value}"
    return text if port.node_port is None else f"{text}(nodePort={port.node_port})"


def spec_cells(service: Service) -> list[str]:
    """TYPE, SELECTOR, PORTS, CLUSTER as cells of ``history`` and ``events``, where a
    service's spec is shown as written (``80:8080/TCP``, node ports included)."""
    ports = ",".join(spec_port(p) for p in service.ports) or NONE
    return [service.type.value, selector_cell(service), ports, service.cluster or NONE]


def status_after(event: Event) -> ServiceStatus | None:
    """What controllers had reported about the service right after ``event`` (None:
    nothing, or the service is gone)."""
    from events import (
        ServiceCreated,
        ServiceDeleted,
        ServiceForceDeleted,
        ServiceStatusChanged,
        ServiceUpdated,
    )

    match event:
        case ServiceCreated() | ServiceDeleted() | ServiceForceDeleted():
            return None
        case ServiceUpdated() | ServiceStatusChanged():
            return event.status
        case _:
            assert_never(event)


def event_changes(
    event: Event,
    before: Service | None,
    before_status: ServiceStatus | None,
) -> list[str]:
    """What an event changed, for a CHANGES column: an update's fields
    (``ports: 80:8080/TCP -> 80:9090/TCP``), a status report's load-balancer addresses
    (``status: <none> -> 192.0.2.10``); nothing for a create or a delete."""
    from events import ServiceStatusChanged, ServiceUpdated
    from registry.services.diff import FieldChange, changes

    if not isinstance(event, ServiceUpdated | ServiceStatusChanged):
        return []
    shown = []
    if isinstance(event, ServiceUpdated):
        shown = [str(change) for change in changes(before, event.service)]
    old, new = ingress_text(before_status) or NONE, ingress_text(event.status) or NONE
    if old != new:
        shown.append(str(FieldChange("status", old, new)))
    return shown


def short_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_row(
    record: ServiceRecord,
    *,
    wide: bool = False,
    all_namespaces: bool = False,
    now: datetime | None = None,
    trust: Trust | None = None,
    signing: bool = True,
    proof: Proof | None = None,
) -> list[str]:
    """One row of ``get``'s table, under ``columns(wide=..., all_namespaces=...)``
    (``signing``: whether an unsigned service's PROOF reads ``unproven`` or ``-``;
    ``proof``: the record's, when the caller has worked it out already)."""
    service = record.service
    row = [service.namespace] if all_namespaces else []
    row += [
        service.name,
        service.type.value,
        cluster_ip_cell(service),
        external_ip_cell(service, record.status),
        ports_cell(service),
        human_age(record.created, now),
    ]
    if wide:
        row += [
            target_ports_cell(service),
            selector_cell(service),
            service.cluster or NONE,
            str(record.seq),
            record.actor,
            proof_cell(record_proof(record, trust) if proof is None else proof, signing),
        ]
    return row


UNSIGNED = "-"


def proof_cell(proof: Proof | None, signing: bool) -> str:
    """The PROOF column: what an event proves about its actor (``?``: unreadable). An
    unsigned event where nothing is signed and no --trust is given is ``-``, not
    ``unproven``: on a registry without signing that is every event, and no error;
    where signing is in use an unsigned event stands out as ``unproven``."""
    if proof is None:
        return "?"
    if proof.status == "unproven" and not signing:
        return UNSIGNED
    return proof.status


def signing_in_use(trust: Trust | None, proofs: Sequence[Proof | None]) -> bool:
    """Whether signing is in use where these events are shown: a reader who trusts keys
    expects signatures, and one signed event (even a failed one) means writers sign."""
    return trust is not None or any(p is not None and p.status != "unproven" for p in proofs)


def record_proof(record: ServiceRecord, trust: Trust | None) -> Proof:
    """What the service's last stored event proves about who wrote it, and where it stands
    once a reader has placed it (``registry.services.proof``)."""
    from registry.services import proof

    return proof.record_proof(record, trust)


class Table:
    """Aligned columns; widths fixed by the first rows, so a watch can print as it goes."""

    def __init__(
        self,
        header: Sequence[str],
        first_rows: Sequence[Sequence[str]],
        min_widths: Sequence[int] = (),
    ) -> None:
        floor = [*min_widths, *[0] * (len(header) - len(min_widths))]
        self.widths = [
            max([len(header[i]), floor[i], *(len(safe(row[i])) for row in first_rows)])
            for i in range(len(header))
        ]
        self.header = list(header)

    def line(self, row: Sequence[str]) -> str:
        cells = [safe(cell).ljust(width) for cell, width in zip(row, self.widths, strict=True)]
        return _GAP.join(cells).rstrip()

    def render(self, rows: Sequence[Sequence[str]]) -> str:
        return "\n".join(self.line(row) for row in [self.header, *rows])


def _port_object(port: Port) -> dict[str, Any]:
    obj: dict[str, Any] = {
        "port": port.port,
        "targetPort": port.target_port,
        "protocol": port.protocol.value,
    }
    if port.name is not None:  # kubectl prints a port's name first
        obj = {"name": port.name, **obj}
    if port.node_port is not None:
        obj["nodePort"] = port.node_port
    return obj


def status_object(status: ServiceStatus | None) -> dict[str, Any]:
    """``.status`` as kubectl prints a service's: ``{loadBalancer: {}}`` until a
    controller reports an address."""
    ingress = status.load_balancer.ingress if status is not None else ()
    if not ingress:
        return {"loadBalancer": {}}
    return {"loadBalancer": {"ingress": [{"ip": i.ip} for i in ingress]}}


def service_object(record: ServiceRecord, trust: Trust | None = None) -> dict[str, Any]:
    service = record.service
    spec: dict[str, Any] = {"type": service.type.value}
    if service.cluster_ip is not None:  # none: an ExternalName, or from before addresses
        spec["clusterIP"] = service.cluster_ip
    if service.external_name is not None:
        spec["externalName"] = service.external_name
    spec |= {
        "selector": dict(service.selector),
        "ports": [_port_object(p) for p in service.ports],
        "cluster": service.cluster,
    }
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": dict(service.labels),
            "uid": record.event_id,
            # None yet for a service not stored (a dry run's): apply creates it.
            **({"resourceVersion": str(record.seq)} if record.seq else {}),
            "creationTimestamp": format_time(record.created),
            "createdBy": record.actor,
            "createdByProof": record_proof(record, trust).status,
        },
        "spec": spec,
        "status": status_object(record.status),
    }


def list_object(records: Sequence[ServiceRecord], trust: Trust | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "List",
        "items": [service_object(r, trust) for r in records],
    }


# Maps whose keys are the user's own (label keys, selector keys, a task's port names):
# printed as written, never recased.
USER_MAPS = frozenset({"labels", "selector", "annotations", "ports"})
# Where kubectl's spelling is not the plain camelCase of the stored name.
_KUBECTL_KEYS = {"cluster_ip": "clusterIP"}


def camel_key(key: str) -> str:
    """A stored (snake_case) key as skyctl prints it: ``target_port`` -> ``targetPort``,
    ``cluster_ip`` -> ``clusterIP`` (kubectl's spelling)."""
    if key in _KUBECTL_KEYS:
        return _KUBECTL_KEYS[key]
    head, *rest = key.split("_")
    return head + "".join(word[:1].upper() + word[1:] for word in rest)


def camel_keys(obj: Any) -> Any:
    """A stored object (an event, a service as the log keeps it: snake_case, see
    docs/events.md) with every key in the one casing everything skyctl prints uses,
    kubectl's camelCase; the keys of the user's own maps (``USER_MAPS``) stay as written."""
    if isinstance(obj, dict):
        return {
            camel_key(k): v if k in USER_MAPS and isinstance(v, dict) else camel_keys(v)
            for k, v in obj.items()
        }
    if isinstance(obj, list):
        return [camel_keys(item) for item in obj]
    return obj


def to_json(obj: Any, *, compact: bool = False) -> str:
    if compact:
        return json.dumps(obj, separators=(",", ":"))
    return json.dumps(obj, indent=2)


def to_yaml(obj: Any) -> str:
    import yaml  # only the commands that print YAML pay for importing it

    text: str = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    return text.rstrip("\n")


_SHOWN = 3  # endpoints in a cell, as kubectl's formatEndpoints


def lease_cell(state: str, silent_s: float | None) -> str:
    """A site's LEASE as the hub's listings show it: ``live``, ``stale(7.1s)`` (how long
    the hub has not heard from it), ``revoked``."""
    if state == "stale":
        return "stale(never)" if silent_s is None else f"stale({silent_s:.1f}s)"
    return state


def endpoints_cell(endpoints: Endpoints) -> str:
    """kubectl's ENDPOINTS column: ready ``address:port`` by cluster, then port, then
    address; three at most, then ``+ N more...``; ``<none>`` if there are none."""
    shown = [
        endpoint
        for subset in endpoints.subsets()
        for endpoint in _subset_endpoints(endpoints, subset)
    ]
    if not shown:
        return "<none>"
    text = ",".join(shown[:_SHOWN])
    if len(shown) > _SHOWN:
        text += f" + {len(shown) - _SHOWN} more..."
    return text


def _subset_endpoints(endpoints: Endpoints, subset: Subset) -> list[str]:
    """The subset's ready ``address:port`` pairs, port by port (a port its tasks have no
    name for is left out)."""
    from registry.discovery.endpoints import host_port

    if not endpoints.ports:
        return [a.address for a in subset.ready]
    return [
        host_port(a.address, target)
        for target in subset.targets
        if target is not None
        for a in subset.ready
    ]


def endpoints_subsets(endpoints: Endpoints) -> list[dict[str, Any]]:
    """Kubernetes' Endpoints subsets: one per cluster (``cluster`` added), ready addresses
    and not-ready ones apart, each naming its task (``targetRef``)."""

    def address(a: EndpointAddress) -> dict[str, Any]:
        obj: dict[str, Any] = {"ip": a.address, "targetRef": {"kind": "Task", "name": a.task}}
        if a.draining:  # EndpointSlice's condition: leaving, takes no new traffic
            obj["terminating"] = True
        return obj

    def port(p: Port, target: int) -> dict[str, Any]:
        obj: dict[str, Any] = {"port": target, "protocol": p.protocol.value}
        return {"name": p.name, **obj} if p.name is not None else obj

    return [
        {
            "cluster": subset.cluster,
            "addresses": [address(a) for a in subset.ready],
            "notReadyAddresses": [address(a) for a in subset.not_ready],
            # The ports its tasks serve the service's on (a list each: one shared would
            # print as a YAML anchor and alias).
            "ports": [
                port(p, target)
                for p, target in zip(endpoints.ports, subset.targets, strict=True)
                if target is not None
            ],
        }
        for subset in endpoints.subsets()
    ]


def endpoints_status(endpoints: Endpoints) -> dict[str, Any]:
    """A service's endpoints as the objects of ``get service -w`` carry them
    (``status.endpoints``): how many are ready of how many (the ENDPOINTS column), and the
    subsets ``get endpoints -o json`` shows."""
    return {
        "ready": endpoints.ready,
        "total": endpoints.total,
        "subsets": endpoints_subsets(endpoints),
    }
