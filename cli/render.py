"""How services look on a terminal and to scripts: kubectl's shapes, so habits carry over.

Tables are plain aligned columns (pipes and ``grep`` keep working); ``-o json`` and
``-o yaml`` print Kubernetes-style objects (``.spec.ports[0].targetPort``), and a
watch in JSON is one ``{"type": ..., "object": ...}`` per line, as ``kubectl get -w``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cli.terminal import safe
from events.stamps import format_time

if TYPE_CHECKING:
    from events import Service
    from registry.projection import ServiceRecord
    from registry.proof import Proof, Trust

__all__ = [
    "COLUMNS",
    "WIDE_COLUMNS",
    "Table",
    "human_age",
    "list_object",
    "service_object",
    "service_row",
    "short_time",
    "spec_cells",
    "to_json",
    "to_yaml",
]

API_VERSION = "skyflow.io/v1"
COLUMNS = ("NAME", "NAMESPACE", "TYPE", "SELECTOR", "PORTS", "CLUSTER", "AGE")
WIDE_COLUMNS = (*COLUMNS, "REVISION", "CREATED-BY", "PROOF")
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


def spec_cells(service: Service) -> list[str]:
    """TYPE, SELECTOR, PORTS, CLUSTER as table cells."""
    selector = ",".join(f"{k}={v}" for k, v in sorted(service.selector.items())) or "<none>"
    ports = ",".join(str(p) for p in service.ports) or "<none>"
    return [service.type.value, selector, ports, service.cluster or "<none>"]


def short_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def service_row(
    record: ServiceRecord,
    *,
    wide: bool = False,
    now: datetime | None = None,
    trust: Trust | None = None,
) -> list[str]:
    service = record.service
    row = [
        service.name,
        service.namespace,
        *spec_cells(service),
        human_age(record.created, now),
    ]
    if wide:
        row += [str(record.seq), record.actor, str(record_proof(record, trust))]
    return row


def record_proof(record: ServiceRecord, trust: Trust | None) -> Proof:
    """What the stored event proves about who created the service (``registry.proof``)."""
    from registry.proof import prove

    return prove(record.subject, record.data, record.headers, record.actor, trust)


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


def service_object(record: ServiceRecord, trust: Trust | None = None) -> dict[str, Any]:
    service = record.service
    return {
        "apiVersion": API_VERSION,
        "kind": "Service",
        "metadata": {
            "name": service.name,
            "namespace": service.namespace,
            "labels": dict(service.labels),
            "uid": record.event_id,
            "resourceVersion": str(record.seq),
            "creationTimestamp": format_time(record.created),
            "createdBy": record.actor,
            "createdByProof": record_proof(record, trust).status,
        },
        "spec": {
            "type": service.type.value,
            "selector": dict(service.selector),
            "ports": [
                {"port": p.port, "targetPort": p.target_port, "protocol": p.protocol.value}
                for p in service.ports
            ],
            "cluster": service.cluster,
        },
    }


def list_object(records: Sequence[ServiceRecord], trust: Trust | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "List",
        "items": [service_object(r, trust) for r in records],
    }


def to_json(obj: Any, *, compact: bool = False) -> str:
    if compact:
        return json.dumps(obj, separators=(",", ":"))
    return json.dumps(obj, indent=2)


def to_yaml(obj: Any) -> str:
    import yaml  # only the commands that print YAML pay for importing it

    text: str = yaml.safe_dump(obj, sort_keys=False, default_flow_style=False)
    return text.rstrip("\n")
