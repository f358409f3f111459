"""The naming rules every service, namespace, cluster and label must follow.

They live in the contract because the names end up in NATS subjects: a name that
could hold ``.``, ``*``, ``>`` or whitespace would split or widen a subject, so the
rules are what keeps "one subject per service" true for every writer, in any language.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Annotated, Any

__all__ = [
    "IPV4_PATTERN",
    "LABEL_KEY_PATTERN",
    "LABEL_VALUE_PATTERN",
    "MAX_NAME_LENGTH",
    "NAME_PATTERN",
    "PORT_NAME_PATTERN",
    "LabelKey",
    "LabelValue",
    "PortName",
    "ResourceName",
    "check_label_key",
    "check_label_value",
    "check_name",
    "check_port_name",
]

MAX_NAME_LENGTH = 63

# The seed page creates `myService`, so unlike Kubernetes' DNS-1123 labels upper case
# is allowed; the rest (alphanumerics and '-', alphanumeric at both ends, 63 at most)
# is the same.
NAME_PATTERN = r"^[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?$"
# Kubernetes label syntax: an optional DNS-subdomain prefix, then a name that may also
# hold '_' and '.'.
_LABEL_NAME = r"[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?"
_DNS_SUBDOMAIN = r"[a-z0-9](?:[-a-z0-9]*[a-z0-9])?(?:\.[a-z0-9](?:[-a-z0-9]*[a-z0-9])?)*"
LABEL_KEY_PATTERN = rf"^(?:{_DNS_SUBDOMAIN}/)?{_LABEL_NAME}$"
LABEL_VALUE_PATTERN = rf"^(?:{_LABEL_NAME})?$"
# A port's name (a task's ``--port http=8080``, a service port's ``name`` and a
# ``targetPort`` given by name): Kubernetes' IANA service names, 15 characters at most,
# lower-case letters, digits and '-', starting with a letter (so a name is never read as
# a number) and not ending with '-'. It becomes a DNS label in SRV names (``_http._tcp``).
PORT_NAME_PATTERN = r"^[a-z](?:[-a-z0-9]{0,13}[a-z0-9])?$"

# A dotted-quad IPv4 address in its one canonical spelling (no leading zeros), so equal
# addresses are equal strings and map to one allocation subject.
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])"
IPV4_PATTERN = rf"^{_OCTET}(?:\.{_OCTET}){{3}}$"


def check_name(value: str) -> str:
    """Validate a service, namespace or cluster name."""
    if not value:
        raise ValueError("must not be empty")
    if len(value) > MAX_NAME_LENGTH:
        raise ValueError(f"must be at most {MAX_NAME_LENGTH} characters (has {len(value)})")
    if not re.fullmatch(NAME_PATTERN, value):
        raise ValueError(
            "may hold only letters, digits and '-', and must start and end with a letter or digit"
        )
    return value


def check_label_key(key: str) -> str:
    """Validate a label key: ``[prefix/]name`` as in Kubernetes."""
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not re.fullmatch(_DNS_SUBDOMAIN, prefix)):
        raise ValueError(f"label key prefix {prefix!r} must be a lower-case DNS subdomain")
    if not name:
        raise ValueError("label key must not be empty")
    if not re.fullmatch(_LABEL_NAME, name):
        raise ValueError(
            f"label key {key!r} may hold only letters, digits, '-', '_' and '.', "
            f"start and end alphanumeric, at most {MAX_NAME_LENGTH} characters"
        )
    return key


def check_label_value(value: str) -> str:
    """Validate a label value; empty is allowed, as in Kubernetes."""
    if not re.fullmatch(LABEL_VALUE_PATTERN, value):
        raise ValueError(
            f"label value {value!r} may hold only letters, digits, '-', '_' and '.', "
            f"start and end alphanumeric, at most {MAX_NAME_LENGTH} characters"
        )
    return value


# The models check with the patterns (compiled once, run in pydantic's core, fast
# enough for replaying millions of events); the check_* functions above say *why* a
# value fails, for messages a user can act on. The pydantic types are built on first
# use, so the rules above can be imported without importing pydantic.
def check_port_name(name: str) -> str:
    """A port name, or ValueError saying what a port name is."""
    if re.fullmatch(PORT_NAME_PATTERN, name) is None:
        raise ValueError(
            f"{name[:64]!r} is not a port name (at most 15 lower-case letters, digits and "
            "'-', starting with a letter and not ending with '-')"
        )
    return name


if TYPE_CHECKING:
    from pydantic import StringConstraints

    ResourceName = Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    LabelKey = Annotated[str, StringConstraints(max_length=317, pattern=LABEL_KEY_PATTERN)]
    LabelValue = Annotated[str, StringConstraints(pattern=LABEL_VALUE_PATTERN)]
    IPv4 = Annotated[str, StringConstraints(pattern=IPV4_PATTERN)]
    PortName = Annotated[str, StringConstraints(pattern=PORT_NAME_PATTERN)]


_CONSTRAINTS: dict[str, dict[str, Any]] = {
    "ResourceName": {"pattern": NAME_PATTERN},
    "LabelKey": {"max_length": 317, "pattern": LABEL_KEY_PATTERN},
    "LabelValue": {"pattern": LABEL_VALUE_PATTERN},
    "IPv4": {"pattern": IPV4_PATTERN},
    "PortName": {"pattern": PORT_NAME_PATTERN},
}


def __getattr__(name: str) -> Any:
    if name not in _CONSTRAINTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from pydantic import StringConstraints

    value = Annotated[str, StringConstraints(**_CONSTRAINTS[name])]
    globals()[name] = value
    return value
