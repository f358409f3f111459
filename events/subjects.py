"""Subject names: one subject per service, ``skyflow.svc.<namespace>.<name>``, one per
address that can be held, ``skyflow.addr.<kind>.<address>``, and the address ranges,
``skyflow.config.ranges``, and the admins' acknowledgements of audit breaks,
``skyflow.config.acknowledged``, and one per namespace quota, ``skyflow.quota.<namespace>``, and
its usage, ``skyflow.usage.<namespace>``, and each service's status as controllers report
it, ``skyflow.status.<namespace>.<name>``; all in the one stream.

A subject per service is what lets JetStream itself give per-service history and
per-service optimistic concurrency, and lets watchers filter on the server with
wildcards instead of receiving everything and discarding. A subject per address does the
same for addresses: "this IP is free" is "this subject's last record is not an
allocation", and an allocation is conditional on that subject's last sequence, in the
same atomic batch as the service event that takes it.
"""

from __future__ import annotations

__all__ = [
    "ACKNOWLEDGED_SUBJECT",
    "ADDRESS_PREFIX",
    "ADDRESS_SUBJECTS",
    "ALL_SUBJECTS",
    "CONFIG_SUBJECTS",
    "PREFIX",
    "QUOTA_PREFIX",
    "QUOTA_SUBJECTS",
    "RANGES_SUBJECT",
    "STATUS_PREFIX",
    "STATUS_SUBJECTS",
    "SUBJECTS",
    "USAGE_PREFIX",
    "USAGE_SUBJECTS",
    "address_filter",
    "address_subject",
    "filter_for",
    "parse_address_subject",
    "parse_subject",
    "quota_subject",
    "status_filter",
    "status_subject",
    "subject_for",
    "usage_subject",
]

PREFIX = "skyflow.svc"
# Exactly two tokens after the prefix: the stream accepts nothing else.
SUBJECTS = f"{PREFIX}.*.*"

ADDRESS_PREFIX = "skyflow.addr"
ADDRESS_SUBJECTS = f"{ADDRESS_PREFIX}.*.*"
# The token of each address kind in its subjects (kinds are spelled as in the events).
_KIND_TOKENS = {"ClusterIP": "ip", "NodePort": "nodeport"}
_TOKEN_KINDS = {token: kind for kind, token in _KIND_TOKENS.items()}

CONFIG_SUBJECTS = "skyflow.config.*"
RANGES_SUBJECT = "skyflow.config.ranges"
# Breaks of the audit an admin investigated (``events.audit``): a config subject, so only
# admins may write it, and streams made before it hold it already.
ACKNOWLEDGED_SUBJECT = "skyflow.config.acknowledged"

# Each namespace's quota (``events.quota``): written by admins only.
QUOTA_PREFIX = "skyflow.quota"
QUOTA_SUBJECTS = f"{QUOTA_PREFIX}.*"
# What each write that adds to a namespace with a quota appends (``events.quota``).
USAGE_PREFIX = "skyflow.usage"
USAGE_SUBJECTS = f"{USAGE_PREFIX}.*"

# Each service's status (``events.status``): written by controllers only.
STATUS_PREFIX = "skyflow.status"
STATUS_SUBJECTS = f"{STATUS_PREFIX}.*.*"

# What the stream holds, in this order.
ALL_SUBJECTS = (
    SUBJECTS,
    ADDRESS_SUBJECTS,
    CONFIG_SUBJECTS,
    QUOTA_SUBJECTS,
    USAGE_SUBJECTS,
    STATUS_SUBJECTS,
)


def subject_for(namespace: str, name: str) -> str:
    return f"{PREFIX}.{namespace}.{name}"


def filter_for(namespace: str | None = None, name: str | None = None) -> str:
    """The subject filter for one service, one namespace, or (both None) all of them."""
    return f"{PREFIX}.{namespace or '*'}.{name or '*'}"


def parse_subject(subject: str) -> tuple[str, str]:
    """``(namespace, name)`` of a service subject; ValueError for anything else."""
    head, _, rest = subject.rpartition(".")
    prefix, _, namespace = head.rpartition(".")
    if prefix != PREFIX or not namespace or not rest:
        raise ValueError(f"{subject!r} is not a service subject ({SUBJECTS})")
    return namespace, rest


def status_subject(namespace: str, name: str) -> str:
    return f"{STATUS_PREFIX}.{namespace}.{name}"


def status_filter(namespace: str | None = None, name: str | None = None) -> str:
    """The status subjects of one service, one namespace, or (both None) all."""
    return f"{STATUS_PREFIX}.{namespace or '*'}.{name or '*'}"


def quota_subject(namespace: str) -> str:
    return f"{QUOTA_PREFIX}.{namespace}"


def usage_subject(namespace: str) -> str:
    return f"{USAGE_PREFIX}.{namespace}"


def address_subject(kind: str, address: str) -> str:
    """``skyflow.addr.ip.10-96-0-1`` for a cluster IP, ``skyflow.addr.nodeport.30080``
    for a node port: an IPv4 address's dots become dashes, since a dot splits tokens."""
    return f"{ADDRESS_PREFIX}.{_KIND_TOKENS[kind]}.{address.replace('.', '-')}"


def address_filter(kind: str | None = None) -> str:
    """Every address subject of one kind, or of all kinds."""
    return f"{ADDRESS_PREFIX}.{_KIND_TOKENS[kind] if kind else '*'}.*"


def parse_address_subject(subject: str) -> tuple[str, str]:
    """``(kind, address)`` of an address subject; ValueError for anything else."""
    parts = subject.split(".")
    kind = _TOKEN_KINDS.get(parts[2]) if len(parts) == 4 else None
    if kind is None or f"{parts[0]}.{parts[1]}" != ADDRESS_PREFIX or not parts[3]:
        raise ValueError(f"{subject!r} is not an address subject ({ADDRESS_SUBJECTS})")
    address = parts[3].replace("-", ".") if kind == "ClusterIP" else parts[3]
    return kind, address
