"""A controller's report about one service (a load balancer's external addresses), on a
subject of its own: ``skyflow.status.<namespace>.<name>``.

Only the controller role may publish there (``nats-server-auth.conf``); a service's
writers may not. Readers take a service's status from this subject alone, and only
while the record names the live service's uid (a status does not outlive the service it
was written for, nor pass to a later service of the same name). Status carried in
events on service subjects (``ServiceStatusChanged``, ``ServiceUpdated.status``, written
before this record existed) is history, never current status: those subjects are the
writers', and a writer must not set its own load balancer's address.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from events.envelope import EventEnvelope
from events.names import ResourceName
from events.service import ServiceStatus

__all__ = ["ServiceStatusSet"]


class ServiceStatusSet(EventEnvelope):
    """What a controller reports about the service ``uid`` names, as of ``revision`` (the
    stream sequence of the service event it saw)."""

    type: Literal["ServiceStatusSet"] = "ServiceStatusSet"
    version: Literal[1] = 1
    namespace: ResourceName
    name: ResourceName
    uid: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_-]+$")
    revision: int = Field(ge=0, strict=True)
    status: ServiceStatus
