"""Which consumers a user may make on a stream: the names its permissions give it.

NATS bounds consumers per stream and per account, never per user, so a server where any
user may ask ``$JS.API.CONSUMER.CREATE.<stream>`` (the server names the consumer, or the
request does) lets one user hold every consumer the stream allows, and name one after
somebody else's to redefine it. ``nats-server-auth.conf`` therefore gives each user other
than admin a few consumer names of its own per stream instead, as permissions on
``$JS.API.CONSUMER.*.<stream>.<name>``: it may create, look up and delete consumers with
those names and no other (the server takes a consumer's name from that subject, and
refuses a durable name that differs from it). Those names are its *read slots*: at most
that many reads of the stream at once, whatever it sends.

The server tells each connection its permissions (``$SYS.REQ.USER.INFO``), so a reader
learns its slots from there rather than from a naming rule both sides must keep; this
module is the pure part: from those permissions, the names for a stream.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["read_slots", "subject_matches"]

_CONSUMER_API = "$JS.API.CONSUMER."
_ACTIONS = ("CREATE", "*")  # a slot's subject: the create action, or any action on it
_MAX_PATTERNS = 10_000  # a server's answer is untrusted: look at this many at most


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether NATS subject ``pattern`` (with ``*`` and ``>``) matches ``subject``."""
    wanted, tokens = pattern.split("."), subject.split(".")
    for index, token in enumerate(wanted):
        if token == ">":
            return len(tokens) > index
        if index >= len(tokens) or (token != "*" and token != tokens[index]):
            return False
    return len(wanted) == len(tokens)


def read_slots(stream: str, permissions: Mapping[str, Any] | None) -> tuple[str, ...] | None:
    """The consumer names this user must use on ``stream``, sorted; ``None`` when the
    server names consumers itself (no publish permissions, or the plain create subject
    allowed: admin, or a server without users).

    An empty tuple means the user may make no consumer there: its reads are refused, as
    the server would refuse them anyway.
    """
    allow, deny = _publish_lists(permissions)
    if allow is None:
        return None if not _any_match(deny, f"{_CONSUMER_API}CREATE.{stream}") else ()
    legacy = f"{_CONSUMER_API}CREATE.{stream}"
    if _any_match(allow, legacy) and not _any_match(deny, legacy):
        return None
    names: set[str] = set()
    for pattern in allow:
        tokens = pattern.split(".")
        if (
            len(tokens) == 6
            and pattern.startswith(_CONSUMER_API)
            and tokens[3] in _ACTIONS
            and tokens[4] == stream
            and tokens[5] not in ("*", ">")
            and not _any_match(deny, f"{_CONSUMER_API}CREATE.{stream}.{tokens[5]}")
        ):
            names.add(tokens[5])
    return tuple(sorted(names))


def _publish_lists(
    permissions: Mapping[str, Any] | None,
) -> tuple[list[str] | None, list[str]]:
    """``(allow, deny)`` of the publish permissions; allow ``None`` when unrestricted."""
    if not isinstance(permissions, Mapping):
        return None, []
    publish = permissions.get("publish")
    if not isinstance(publish, Mapping):
        return None, []
    allow = publish.get("allow")
    return (_strings(allow) if allow is not None else None), _strings(publish.get("deny"))


def _strings(value: object) -> list[str]:
    if not isinstance(value, list):
        return []
    return [item for item in value[:_MAX_PATTERNS] if isinstance(item, str)]


def _any_match(patterns: Iterable[str], subject: str) -> bool:
    return any(subject_matches(pattern, subject) for pattern in patterns)
