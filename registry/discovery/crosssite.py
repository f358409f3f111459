"""Cross-site answers: which endpoints a service resolves to when sites are in view (pure).

At the hub, every site's tasks are known from the hub's copy of its membership history,
each site with the hub's lease on it (``registry.sites.model``): ``live``, ``stale`` (the
last it reported, with how long the hub has not heard from it) or ``revoked``. A service
resolves by one documented rule (``choose``, docs/sites.md):

1. **local first**: the server's own ready endpoints, if it has any;
2. otherwise **the first other site with ready endpoints**, in ``site_order``: live sites
   before stale ones, then by site name (a stable order, so every resolver using the same
   view picks the same site, and traffic does not spread over sites nobody chose);
3. **revoked sites never**; with no ready endpoints anywhere, the local ones (none ready).

One site answers, never a mix: a client is sent to one place, and an answer from a stale
site carries its age (``Answer.stale_s``) so that it is never mistaken for a current one
(invariant 18).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from registry.discovery.endpoints import Endpoints, Selectable, endpoints_among

__all__ = ["Answer", "SiteTasks", "choose", "site_endpoints", "site_order"]

SiteState = Literal["live", "stale", "revoked"]


@dataclass(frozen=True)
class SiteTasks:
    """What is known of one site: the hub's lease on it and the tasks it last reported
    live (every namespace), as ``registry.client.Registry.site_tasks`` reads them."""

    site: str
    state: SiteState
    silent_s: float | None  # since the hub last heard from it; None: never
    tasks: tuple[Selectable, ...] = ()
    warning: str | None = None  # what the lease says of it (``lease_warning``)

    @property
    def serves(self) -> bool:
        """Whether its endpoints may be served at all (a revoked site's may not)."""
        return self.state != "revoked"


@dataclass(frozen=True)
class Answer:
    """A service's endpoints as resolved: from ``site`` (None: the local ones), and, from
    a stale site, how long the hub has not heard from it (``stale_s``)."""

    endpoints: Endpoints
    site: str | None = None
    state: Literal["local", "live", "stale"] = "local"
    stale_s: float | None = None

    @property
    def stale(self) -> bool:
        return self.state == "stale"


def site_order(sites: Iterable[SiteTasks]) -> list[SiteTasks]:
    """The sites a service may fall back to, in order: live before stale, then by name;
    revoked ones left out."""
    return sorted((s for s in sites if s.serves), key=lambda s: (s.state != "live", s.site))


def site_endpoints(service: Endpoints, site: SiteTasks) -> Endpoints:
    """``service``'s endpoints among ``site``'s tasks (none if the site is revoked)."""
    return endpoints_among(service, site.tasks if site.serves else ())


def choose(local: Endpoints, sites: Sequence[SiteTasks], port: int | None = None) -> Answer:
    """What ``local``'s service resolves to by the cross-site rule (module docstring):
    ready means ready for ``port`` if one is given."""
    if local.endpoints(port):
        return Answer(local)
    for site in site_order(sites):
        found = site_endpoints(local, site)
        if found.endpoints(port):
            if site.state == "stale":
                return Answer(found, site.site, "stale", site.silent_s)
            return Answer(found, site.site, "live")
    return Answer(local)
