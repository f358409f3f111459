"""The SkyFlow registry as a Python library, and the core ``skyctl`` is built on.

The public surface is importable from here::

    from registry import Registry, Resolver

    async with await Registry.connect("nats://127.0.0.1:4222") as reg:
        ...

Each name loads on first use (PEP 562), so ``import registry`` costs nothing and a
one-shot command pays only for the modules it touches.

Inside, one folder per domain, importing one way only (``tests/project/test_layers.py`` and the
import-linter contract in ``pyproject.toml`` hold it, type-checking imports included)::

    registry.client                      the Registry face: every domain, one connection
    registry.dns                         names over DNS, fed by discovery
    registry.agent                       the node agent's socket: its protocol, client, server
    registry.discovery                   tasks, endpoints, the Follower and Resolver
    registry.services                    the service log: fold, decisions, writes, history
    registry.addresses | .jetstream      address allocation | the NATS adapter
    registry.log                         the port: what the core needs of a server
    registry.errors                      every refusal, as one tree

A module may import from its own folder and from the folders below it, never above.
"""

from __future__ import annotations

import importlib

# Not typing's: ``import registry`` stays free of typing's import (the node agent's thin
# client pays for every module it loads). Type checkers read this name as typing's.
TYPE_CHECKING = False

if TYPE_CHECKING:
    from typing import Any

    from registry.client import Registry
    from registry.discovery.announce import Announcer
    from registry.discovery.resolver import Resolver
    from registry.errors import (
        AlreadyExists,
        Conflict,
        InvalidInput,
        NoEndpoints,
        NotFound,
        PermissionDenied,
        RegistryError,
        ServerError,
        ServiceError,
        Unreachable,
    )
    from registry.services.subscription import Delivery, Subscription

__all__ = [
    "AlreadyExists",
    "Announcer",
    "Conflict",
    "Delivery",
    "InvalidInput",
    "NoEndpoints",
    "NotFound",
    "PermissionDenied",
    "Registry",
    "RegistryError",
    "Resolver",
    "ServerError",
    "ServiceError",
    "Subscription",
    "Unreachable",
]

_WHERE = {
    "Registry": "registry.client",
    "Announcer": "registry.discovery.announce",
    "Resolver": "registry.discovery.resolver",
    "Delivery": "registry.services.subscription",
    "Subscription": "registry.services.subscription",
    **dict.fromkeys(
        [
            "AlreadyExists",
            "Conflict",
            "InvalidInput",
            "NoEndpoints",
            "NotFound",
            "PermissionDenied",
            "RegistryError",
            "ServerError",
            "ServiceError",
            "Unreachable",
        ],
        "registry.errors",
    ),
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'registry' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
