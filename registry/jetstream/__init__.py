"""The one adapter between the registry and NATS: the only package that talks to it.

``connection`` and ``tail`` use nats-py; ``wire`` and ``lite`` speak the protocol
directly for one-shot processes and bulk reads. Names load on first use, so importing
``registry.jetstream.lite`` does not import nats-py.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from registry.jetstream.connection import DEFAULT_URL, JetStreamLog, WrongLastSequence
    from registry.jetstream.tail import CAUGHT_UP, CaughtUp, Start, Tail

__all__ = [
    "CAUGHT_UP",
    "DEFAULT_URL",
    "CaughtUp",
    "JetStreamLog",
    "Start",
    "Tail",
    "WrongLastSequence",
]

_MODULE_OF = {
    "DEFAULT_URL": "registry.jetstream.connection",
    "JetStreamLog": "registry.jetstream.connection",
    "WrongLastSequence": "registry.jetstream.connection",
    "CAUGHT_UP": "registry.jetstream.tail",
    "CaughtUp": "registry.jetstream.tail",
    "Start": "registry.jetstream.tail",
    "Tail": "registry.jetstream.tail",
}


def __getattr__(name: str) -> Any:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
