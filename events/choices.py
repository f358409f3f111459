"""The closed sets of values a service field takes: service types and port protocols.

Plain enums with no pydantic, so code that only checks these values (the CLI's flag
parsing) does not pay for importing the models.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Self

__all__ = ["Protocol", "ServiceType"]


class _CaseInsensitiveEnum(StrEnum):
    """Accepts any spelling on input and always writes the canonical one."""

    @classmethod
    def _missing_(cls, value: object) -> Self | None:
        if isinstance(value, str):
            for member in cls:
                if member.value.lower() == value.lower():
                    return member
        return None


class ServiceType(_CaseInsensitiveEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"
    LOAD_BALANCER = "LoadBalancer"
    EXTERNAL_NAME = "ExternalName"


class Protocol(_CaseInsensitiveEnum):
    TCP = "TCP"
    UDP = "UDP"
