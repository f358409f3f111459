"""Which services a verb acts on, as kubectl says it: names (``web``, or ``svc/web`` as
``get -o name`` prints them), a label selector (``-l``), or ``--all`` of a namespace.

Checked before anything is read (a bad name or selector costs no round trip and writes
nothing); resolved to names against what is live, in the registry's order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cli.parse import parse_service_ref
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from cli.selector import Selector
    from registry.client import Registry
    from registry.services.projection import ServiceRecord

__all__ = ["Targets", "service_targets"]


@dataclass(frozen=True, slots=True)
class Targets:
    """Named services, or every service of a namespace its selector picks (``every``)."""

    names: tuple[str, ...]
    selector: Selector | None = None
    every: bool = False

    @property
    def by_name(self) -> bool:
        return not self.every

    async def records(self, registry: Registry, namespace: str) -> list[ServiceRecord]:
        """The live services picked (``every`` only: by name, ask for each)."""
        assert self.every
        records = await registry.list(namespace)
        if self.selector is None:
            return records
        return [r for r in records if self.selector.matches(r.service.labels)]


def service_targets(
    names: Sequence[str],
    selector: str | None,
    every: bool,
    *,
    required: bool = True,
) -> Targets:
    """The services named, or picked by ``-l``/``--all``; one of them ``required``
    (otherwise nothing given means every service, as ``describe service`` reads it)."""
    from cli.selector import parse_label_selector

    parsed = tuple(parse_service_ref(name) for name in names)
    if parsed and selector is not None:
        raise InvalidInput("label selector", selector, "a selector cannot be combined with a NAME")
    if parsed and every:
        raise InvalidInput("name", names[0], "a name cannot be combined with --all")
    if selector is not None:
        return Targets((), parse_label_selector(selector), True)
    if every or (not parsed and not required):
        return Targets((), None, True)
    if not parsed:
        raise InvalidInput("name", "", "give a service NAME (or TYPE/NAME), -l SELECTOR or --all")
    return Targets(parsed)
