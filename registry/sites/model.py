"""A site, its lease and its policy; what the hub makes of what it hears (pure).

The hub knows a site only by what its sourcing hears: ``sources[].active`` of the streams
that source the site's (``events.sites``), the time since the site's server last sent
anything, data or the source consumer's idle heartbeat (one a second, nats-server's
``sourceHealthHB``). Neither ``lag`` nor ``error`` changes when a link is cut (measured:
``lag`` stays 0 and ``error`` null for minutes), so silence is the only signal, and the
hub's account of a site is a lease on it:

- **live**: heard within the lease (default ``DEFAULT_LEASE_S``, 5 s: five missed
  heartbeats, far above the sub-second gaps of a loaded link, well inside the task TTLs
  whose copies the hub loses during a cut);
- **stale**: silent past the lease. What the hub holds of the site is the last it heard
  and is shown with its age, never as current (invariant 18);
- **revoked**: under the policy ``revoke-after GRACE``, silent for GRACE. The hub stops
  answering with the site's endpoints instead of serving them from memory.

The policy is per site and explicit, because both failures are real: Consul peering
stays ACTIVE while its catalog goes stale (consul#22868), Cilium ClusterMesh served a
vanished cluster's services forever until a cache TTL was added (cilium#41643), and Istio
pushed empty endpoints for a merely unreachable remote (istio#38440). The default is
``revoke-after 2m`` (``DEFAULT_POLICY``), as the MCS API's per-cluster lease expiry
removes endpoints: two minutes rides out the link flaps measured here (sourcing resumed
up to 36 s after a 16 s cut, nats-server#6454) while bounding how long traffic may be
sent towards tasks nobody can vouch for. ``keep-last-known`` suits a site whose tasks
outlive its links (a ship, a shop floor); the hub still marks every answer stale.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from events.sites import METADATA_PREFIX, valid_site_name
from registry.errors import InvalidInput

__all__ = [
    "DEFAULT_LEASE_S",
    "DEFAULT_POLICY",
    "KEEP_LAST_KNOWN",
    "REVOKE_AFTER",
    "Heard",
    "LeaseState",
    "Policy",
    "Site",
    "check_site_name",
    "lease_state",
    "lease_warning",
    "parse_duration",
    "parse_policy",
    "public_url",
]

KEEP_LAST_KNOWN = "keep-last-known"
REVOKE_AFTER = "revoke-after"
DEFAULT_LEASE_S = 5.0
LeaseState = Literal["live", "stale", "revoked"]

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)?")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, what: str, *, low: float, high: float) -> float:
    """``500ms``, ``5s``, ``5``, ``2m``, ``1h`` -> seconds, within ``[low, high]``."""
    match = _DURATION.fullmatch(text.strip())
    seconds = float(match.group(1)) * _SCALE[match.group(2)] if match else -1.0
    if not low <= seconds <= high:
        raise InvalidInput(
            what, text, f"must be a duration from {_said(low)} to {_said(high)} (5s, 2m, 1h)"
        )
    return seconds


def _said(seconds: float) -> str:
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


@dataclass(frozen=True)
class Policy:
    """What the hub serves of a site it can no longer hear: its last-known state, marked
    stale (``grace_s`` None), or nothing once it has been silent ``grace_s``."""

    grace_s: float | None = 120.0

    @property
    def kind(self) -> str:
        return KEEP_LAST_KNOWN if self.grace_s is None else REVOKE_AFTER

    def __str__(self) -> str:
        return self.kind if self.grace_s is None else f"{REVOKE_AFTER} {_said(self.grace_s)}"


DEFAULT_POLICY = Policy(grace_s=120.0)


def parse_policy(text: str) -> Policy:
    """``keep-last-known``, ``revoke-after`` (the default grace) or ``revoke-after 90s``
    (also ``revoke-after=90s``)."""
    words = text.strip().replace("=", " ").split()
    if words == [KEEP_LAST_KNOWN]:
        return Policy(grace_s=None)
    if words and words[0] == REVOKE_AFTER and len(words) <= 2:
        if len(words) == 1:
            return DEFAULT_POLICY
        return Policy(parse_duration(words[1], "--policy grace", low=1.0, high=7 * 86400.0))
    raise InvalidInput(
        "--policy", text, f"must be {KEEP_LAST_KNOWN} or {REVOKE_AFTER} [GRACE] (e.g. 2m)"
    )


def public_url(url: str) -> str:
    """``url`` without any user or password in it (``nats://u:p@host`` -> ``nats://host``),
    each of a comma-separated list: what is recorded in stream metadata, which every
    reader of stream info sees, and quoted in messages."""
    parts = []
    for part in url.split(","):
        scheme, sep, rest = part.strip().rpartition("://")
        host = rest.rpartition("@")[2]
        parts.append(f"{scheme}{sep}{host}")
    return ",".join(parts)


def check_site_name(name: str) -> str:
    if not valid_site_name(name):
        raise InvalidInput(
            "site name",
            name,
            "must be lowercase letters, digits and '-', starting and ending with a letter "
            "or digit, at most 32 characters",
        )
    return name


@dataclass(frozen=True)
class Site:
    """A site as the hub records it (in its view streams' metadata)."""

    name: str
    domain: str
    hub_url: str = ""
    policy: Policy = DEFAULT_POLICY
    lease_s: float = DEFAULT_LEASE_S

    def record(self) -> dict[str, str]:
        """The site as metadata values (``events.sites`` prefixes the keys)."""
        return {
            "site": self.name,
            "domain": self.domain,
            "hub": self.hub_url,
            "policy": self.policy.kind,
            "grace_s": "" if self.policy.grace_s is None else f"{self.policy.grace_s:g}",
            "lease_s": f"{self.lease_s:g}",
        }

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, object]) -> Site | None:
        """The site a view stream's metadata records; None if it records none (or is
        not the registry's). Unknown or unreadable values fall back to the defaults."""

        def value(key: str) -> str:
            found = metadata.get(f"{METADATA_PREFIX}{key}")
            return found if isinstance(found, str) else ""

        name, domain = value("site"), value("domain")
        if not valid_site_name(name) or not domain:
            return None
        policy = DEFAULT_POLICY
        if value("policy") == KEEP_LAST_KNOWN:
            policy = Policy(grace_s=None)
        elif _number(value("grace_s")) is not None:
            policy = Policy(grace_s=_number(value("grace_s")))
        lease = _number(value("lease_s")) or DEFAULT_LEASE_S
        return cls(name, domain, value("hub"), policy, lease)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if value > 0 else None


@dataclass(frozen=True)
class Heard:
    """What the hub's sourcing says of one of a site's streams."""

    stream: str
    silent_s: float | None  # since the hub last heard from it; None: never
    lag: int  # messages the site holds that the hub has not received (as last reported)
    error: str | None = None
    listening_s: float | None = None  # since the hub began to source it (its view was made)


def lease_state(site: Site, silent_s: float | None) -> LeaseState:
    """The lease on ``site`` after ``silent_s`` seconds without a word (None: unknown,
    taken as forever): live within the lease, then stale, then (revoke-after) revoked."""
    if silent_s is not None and silent_s < site.lease_s:
        return "live"
    grace = site.policy.grace_s
    if grace is None:
        return "stale"
    if silent_s is None or silent_s >= max(grace, site.lease_s):
        return "revoked"
    return "stale"


def lease_warning(
    site: Site, state: LeaseState, unheard_s: float | None, *, now: bool = True
) -> str | None:
    """What a reader of ``site``'s endpoints must be told by its lease (None: nothing,
    it is live): stale, the endpoints it last reported and since when; revoked, that none
    are served. ``now`` False: a past moment (``--at``), history served whatever the
    lease, though a site the hub cannot hear may not have told it all. The one wording
    of the policy, for ``get endpoints`` (one service or all) and the hub's Resolver."""
    if state == "live":
        return None
    heard = "never" if unheard_s is None else f"{unheard_s:.1f}s ago"
    why = f"site {site.name} is {state}: the hub last heard from it {heard}"
    if not now:
        return f"{why}; what it recorded since has not reached the hub"
    if state == "stale":
        return (
            f"{why} (lease {site.lease_s:g}s); these are the endpoints it last reported "
            f"(policy {site.policy})"
        )
    return f"{why}; its endpoints are not served (policy {site.policy})"
