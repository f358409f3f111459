"""Per-namespace quotas: how many services, node ports and LoadBalancer services one
namespace may hold, named as Kubernetes' ``ResourceQuota`` names them.

One record per namespace, on ``skyflow.quota.<namespace>`` in the service stream, written
only by an admin (``skyctl create quota``; no other role may publish there); the last one
holds. A namespace without one is unlimited. The allocator checks it at every write that
adds to what the namespace holds, and puts a ``QuotaUsage`` on ``skyflow.usage.<namespace>``
in that write's atomic batch, conditional on the one before: two such writes in one
namespace cannot both pass on the same count.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from events.envelope import EventEnvelope
from events.names import ResourceName

__all__ = ["QUOTA_RESOURCES", "QuotaResource", "QuotaUsage", "ResourceQuotaSet"]

QuotaResource = Literal["services", "services.nodeports", "services.loadbalancers"]
QUOTA_RESOURCES: tuple[QuotaResource, ...] = (
    "services",
    "services.nodeports",
    "services.loadbalancers",
)
# More than any namespace could hold (node ports are at most 65,535).
MAX_HARD = 1_000_000


class ResourceQuotaSet(EventEnvelope):
    """The hard limits of one namespace (a resource left out is unlimited)."""

    type: Literal["ResourceQuotaSet"] = "ResourceQuotaSet"
    version: Literal[1] = 1
    namespace: ResourceName
    name: ResourceName
    hard: dict[QuotaResource, Annotated[int, Field(ge=0, le=MAX_HARD, strict=True)]]


class QuotaUsage(EventEnvelope):
    """Written in the batch of each write that adds to a namespace with a quota,
    conditional on the subject's last sequence, so such writes are serialized per
    namespace. ``used`` is what that writer counted after its write, for readers'
    information only: the namespace's writers may publish here, so nothing trusts it
    (the allocator counts the live services themselves)."""

    type: Literal["QuotaUsage"] = "QuotaUsage"
    version: Literal[1] = 1
    namespace: ResourceName
    quota: ResourceName
    used: dict[QuotaResource, Annotated[int, Field(ge=0, le=MAX_HARD, strict=True)]]
