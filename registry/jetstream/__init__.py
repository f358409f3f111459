"""The one adapter between the registry and NATS: the only package that imports ``nats``."""

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
