"""What an update changed, field by field, in the words a table uses for each value.

``history`` shows it beside each ``ServiceUpdated`` (``ports: 80:8080/TCP -> 80:9090/TCP``),
``diff`` and ``apply --dry-run`` show what an apply would change in the same words, and
``rollback`` what it restored: one description of a change, wherever one is shown.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from events import Service

__all__ = ["FieldChange", "changes", "same_definition", "show"]


@dataclass(frozen=True, slots=True)
class FieldChange:
    field: str
    before: str
    after: str

    def __str__(self) -> str:
        return f"{self.field}: {self.before} -> {self.after}"


def _pairs(mapping: Mapping[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(mapping.items())) or "<none>"


def show(service: Service) -> dict[str, str]:
    """Each changeable field of a service as one string (namespace and name never change)."""
    return {
        "type": service.type.value,
        "selector": _pairs(service.selector),
        "ports": ",".join(str(p) for p in service.ports) or "<none>",
        "cluster": service.cluster or "<none>",
        "labels": _pairs(service.labels),
        "externalName": service.external_name or "<none>",
    }


def changes(before: Service | None, after: Service | None) -> list[FieldChange]:
    """The fields that differ, in a fixed order; when one side is missing, every field
    the other sets (a field that is ``<none>`` on both sides never changed)."""
    old = show(before) if before is not None else {}
    new = show(after) if after is not None else {}
    fields = list(new or old)
    return [
        FieldChange(f, old.get(f, "<none>"), new.get(f, "<none>"))
        for f in fields
        if old.get(f, "<none>") != new.get(f, "<none>")
    ]


def same_definition(before: Service, after: Service) -> bool:
    """Whether two services are defined alike (their addresses aside): what ``rollback``
    finds nothing to restore in."""
    return not changes(before, after)
