"""Sites: what a site's server and the hub's server hold, as stream configurations.

A site is a NATS leaf node with a JetStream domain of its own. It keeps its own liveness
stream (``SKYFLOW_TASKS``) and membership history (``SKYFLOW_MEMBERSHIP``), so its tasks
announce, expire and are recorded there whether or not the hub is reachable; and it keeps
``SKYFLOW_SERVICES`` as a **mirror** of the hub's service log, read through the hub's
domain (``$JS.<hub domain>.API``), so ``get`` and ``get endpoints`` answer at the site
from what it last received. A mirror has no subjects: nothing can be written into it.

The hub keeps, per site, two streams that **source** the site's own, each subject moved
under ``site.<name>.`` so that sites never collide and nothing there is mistaken for the
hub's own tasks::

    SKYFLOW_SITE_TASKS_<name>        site.<name>.skyflow.task.>    (TTL'd, like the site's)
    SKYFLOW_SITE_MEMBERSHIP_<name>   site.<name>.skyflow.member.>  (history, kept)

Their ``sources[].active`` (time since the hub last heard from the site's stream; the
server's source consumers send an idle heartbeat every second) is what the hub knows of
the link, readable with the JetStream API alone. Their ``metadata`` carries the site's
record (``registry.sites``): its domain, lease and policy.

The leaf connection itself carries none of the registry's subjects (``LEAF_DENIED``):
without that, a heartbeat published at a site would also be stored by the hub's own
intake (everything twice while the link is up), and a service write at a site would
reach the hub's log around the site's refusal. Data crosses only as JetStream
mirroring and sourcing, through the domains' API prefixes.

Plain data, no pydantic, like the other stream definitions.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from events.liveness import MAX_TASK_BYTES, MAX_TTL_S, TASK_SUBJECTS
from events.stream import MAX_EVENT_BYTES, STREAM_NAME, StreamSpec, consumer_limits

__all__ = [
    "LEAF_DENIED",
    "LINK_PROBE_PREFIX",
    "METADATA_PREFIX",
    "MIRROR_FILTER",
    "SITE_HISTORY_MAX_BYTES",
    "SITE_MEMBERSHIP_PREFIX",
    "SITE_NAME",
    "SITE_TASKS_MAX_BYTES",
    "SITE_TASKS_PREFIX",
    "MirrorOf",
    "api_prefix",
    "membership_view",
    "mirror_deliver_prefix",
    "mirror_of",
    "probe_reply_prefix",
    "service_mirror",
    "site_subject",
    "source_deliver_prefix",
    "tasks_view",
    "valid_site_name",
]

# Site names: DNS labels (they become subject tokens and stream-name suffixes), at most
# 32 characters so every stream name stays short.
SITE_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]{0,30}[a-z0-9])?$")
SITE_TASKS_PREFIX = "SKYFLOW_SITE_TASKS_"
# What the hub keeps of one site at most (the oldest go first): its live tasks' copy and
# its history's. A site cannot fill the hub's disk; 1 GiB of history is millions of
# transitions (each a few hundred bytes).
SITE_TASKS_MAX_BYTES = 256 * 1024 * 1024
SITE_HISTORY_MAX_BYTES = 1024 * 1024 * 1024
SITE_MEMBERSHIP_PREFIX = "SKYFLOW_SITE_MEMBERSHIP_"
# Keys of the registry's own stream metadata (the server keeps ``_nats.*`` for itself).
METADATA_PREFIX = "skyflow."
# What the leaf link must not carry in either direction (``deny_imports`` and
# ``deny_exports`` of the site's leaf remote): none of the registry's subjects, so no
# heartbeat, transition or service write crosses it as a plain message.
LEAF_DENIED = ("skyflow.>",)


# Where the answer to a link probe (``$JS.<domain>.API.INFO`` asked across the leaf link)
# is sent: ``_SKYFLOW_LINK.<domain asked>.<token>``. Not the asker's ``_INBOX``: a secured
# hub lets each site's leaf connection answer its own domain's probes only, and receive
# the hub's answers to probes, without opening the hub's inboxes to any site (measured:
# a leaf allowed ``_INBOX.>`` receives every reply the hub's admin gets, other sites' data
# included). docs/sites.md, "Securing the leaf link".
LINK_PROBE_PREFIX = "_SKYFLOW_LINK"


def probe_reply_prefix(domain: str) -> str:
    """The subjects answers to a probe of ``domain`` arrive on (``LINK_PROBE_PREFIX``)."""
    return f"{LINK_PROBE_PREFIX}.{domain}"


# A site's mirror copies the hub's whole log through a filter all its subjects match:
# with a filter, the site's server asks for its consumer on
# ``$JS.<hub>.API.CONSUMER.CREATE.SKYFLOW_SERVICES.<name>.skyflow.>``, a subject naming the
# consumer, which a secured hub can allow for that one name. Unfiltered, the request goes
# to ``...CREATE.SKYFLOW_SERVICES``, whose body names the consumer: measured, a client at
# a site allowed that subject redefined a durable consumer of the hub's log by name.
MIRROR_FILTER = "skyflow.>"


def mirror_deliver_prefix(site: str) -> str:
    """Where the hub delivers a site's mirror: ``$JS.M.<site>.M.<token>`` (nats-server
    adds ``.M.<token>``), so a secured hub lets each site receive its own mirror only."""
    return f"$JS.M.{site}"


def source_deliver_prefix(site: str) -> str:
    """Where a site delivers what the hub sources from it: ``$JS.S.<site>.S.<token>``, so
    a secured hub lets each site deliver into its own views only (with the server's
    default ``$JS.S.<token>``, a site allowed to deliver could deliver into another's)."""
    return f"$JS.S.{site}"


def valid_site_name(name: str) -> bool:
    return bool(SITE_NAME.match(name))


def api_prefix(domain: str) -> str:
    """Where a JetStream domain's API answers from anywhere its leaf links reach."""
    return f"$JS.{domain}.API"


def site_subject(site: str, subject: str) -> str:
    """A site's subject as the hub stores it: ``site.<name>.<subject>``."""
    return f"site.{site}.{subject}"


def _metadata(values: Mapping[str, str]) -> dict[str, str]:
    return {f"{METADATA_PREFIX}{key}": value for key, value in values.items()}


def service_mirror(
    site: str,
    hub_domain: str,
    hub_url: str,
    spec: StreamSpec | None = None,
    lease_s: float = 5.0,
) -> dict[str, Any]:
    """``SKYFLOW_SERVICES`` at a site: the hub's log, mirrored (same sequences, same
    subjects), with every setting the registry demands of its log (invariant 6) except
    those a mirror cannot have: subjects (nothing is written here) and atomic batches
    (the server refuses them on a mirror, error 10198). Its metadata names the site, the
    hub, and how long the site may go without a word from the hub (``lease_s``) before
    it calls its copy stale."""
    spec = spec or StreamSpec()
    required = {k: v for k, v in spec.required.items() if k != "allow_atomic"}
    return {
        "name": spec.name,
        "description": f"SkyFlow service registry: site {site}'s mirror of the hub's log",
        "mirror": {
            "name": spec.name,
            "filter_subject": MIRROR_FILTER,
            "external": {"api": api_prefix(hub_domain), "deliver": mirror_deliver_prefix(site)},
        },
        "num_replicas": spec.replicas,
        "max_msg_size": spec.max_msg_size,
        "allow_direct": True,
        "consumer_limits": consumer_limits(),
        "metadata": _metadata(
            {"site": site, "hub": hub_url, "hub_domain": hub_domain, "lease_s": f"{lease_s:g}"}
        ),
        **required,
    }


@dataclass(frozen=True)
class MirrorOf:
    """What a site's mirror says of itself: whose log it copies and from where."""

    site: str
    hub_domain: str
    hub_url: str


def mirror_of(config: Mapping[str, Any]) -> MirrorOf | None:
    """The site a stream configuration makes this a mirror for, if it is the registry's
    site mirror (``service_mirror``): the hub's log by name, through a domain's API, and
    marked as a site's. Anything else mirroring or sourcing stays refused."""
    mirror = config.get("mirror")
    metadata = config.get("metadata")
    if not isinstance(mirror, dict) or not isinstance(metadata, dict):
        return None
    external = mirror.get("external")
    api = external.get("api") if isinstance(external, dict) else None
    site = metadata.get(f"{METADATA_PREFIX}site")
    domain = metadata.get(f"{METADATA_PREFIX}hub_domain")
    if (
        mirror.get("name") != STREAM_NAME
        or not isinstance(site, str)
        or not isinstance(domain, str)
        or api != api_prefix(domain)
        or config.get("sources")
        or mirror.get("filter_subject") not in (None, "", MIRROR_FILTER)
        or mirror.get("subject_transforms")
    ):
        return None
    hub = metadata.get(f"{METADATA_PREFIX}hub")
    return MirrorOf(site, domain, hub if isinstance(hub, str) else "")


def tasks_view(site: str, domain: str, record: Mapping[str, str]) -> dict[str, Any]:
    """The hub's copy of a site's live tasks: sourced from the site's liveness stream,
    its subjects under ``site.<name>.``. One message per subject with its TTL, as at the
    site (a sourced copy's TTL runs from its arrival here); the site's subject delete
    markers arrive as roll-ups, so roll-ups are allowed, and no markers of its own (the
    same death would arrive twice). Nothing can publish into it: it has no subjects."""
    return {
        "name": f"{SITE_TASKS_PREFIX}{site}",
        "description": f"SkyFlow service registry: site {site}'s live tasks, as the hub hears",
        "subjects": [],
        "sources": [_source("SKYFLOW_TASKS", site, domain, TASK_SUBJECTS)],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_msgs_per_subject": 1,
        "max_age": MAX_TTL_S * 1_000_000_000,
        "max_bytes": SITE_TASKS_MAX_BYTES,
        "max_msg_size": MAX_TASK_BYTES + 1024,
        "allow_msg_ttl": True,
        "allow_rollup_hdrs": True,
        "allow_direct": True,
        "deny_delete": True,
        "consumer_limits": consumer_limits(),
        "metadata": _metadata(record),
    }


def membership_view(
    site: str, domain: str, record: Mapping[str, str], retention_s: int
) -> dict[str, Any]:
    """The hub's copy of a site's membership history: sourced, never purged, kept as long
    as the site keeps its own (``retention_s``, counted from each transition's arrival at
    the hub) and within ``SITE_HISTORY_MAX_BYTES`` (the oldest go first): a site, hostile
    or only busy, cannot fill the hub's disk. A sourced stream receives what the site
    recorded during a cut once the link is back, in the site's order."""
    from events.membership import MEMBERSHIP_PREFIX  # (pydantic: not for every importer)

    return {
        "name": f"{SITE_MEMBERSHIP_PREFIX}{site}",
        "description": f"SkyFlow service registry: site {site}'s membership history",
        "subjects": [],
        "sources": [_source("SKYFLOW_MEMBERSHIP", site, domain, f"{MEMBERSHIP_PREFIX}.>")],
        "retention": "limits",
        "storage": "file",
        "discard": "old",
        "max_msg_size": MAX_EVENT_BYTES,
        "max_age": retention_s * 1_000_000_000,
        "max_bytes": SITE_HISTORY_MAX_BYTES,
        "allow_direct": True,
        "deny_delete": True,
        "deny_purge": True,
        "consumer_limits": consumer_limits(),
        "metadata": _metadata(record),
    }


def _source(stream: str, site: str, domain: str, subjects: str) -> dict[str, Any]:
    return {
        "name": stream,
        "external": {"api": api_prefix(domain), "deliver": source_deliver_prefix(site)},
        "subject_transforms": [{"src": subjects, "dest": site_subject(site, subjects)}],
    }
