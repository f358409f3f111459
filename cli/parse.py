"""Turning flag strings into a Service, with errors that name the bad value.

Validation happens here, before anything is sent, so bad input never reaches the log
(invariant 7). The rules themselves live in ``events``; this module only says, in
words a user can act on, which value broke which rule.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from events.choices import Protocol, ServiceType
from events.names import check_label_key, check_label_value, check_name, check_port_name
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from events import Port, Service

__all__ = [
    "SERVICE_KINDS",
    "parse_cluster_ip",
    "parse_name",
    "parse_named_ports",
    "parse_ports",
    "parse_retention",
    "parse_seconds",
    "parse_selector",
    "parse_service",
    "parse_service_ref",
    "parse_ttl_flag",
    "parse_type",
]

_DURATION = re.compile(r"(\d{1,6}(?:\.\d{1,3})?)(ms|s|m)?")
_SCALE = {"ms": 0.001, "s": 1.0, "m": 60.0}
_PORT = re.compile(
    r"(?:(?P<name>[^=:/]*)=)?(?P<port>[^=:/]*)(?::(?P<target>[^=:/]*))?(?:/(?P<protocol>[^=:/]*))?"
)
_PORT_FORM = "[NAME=]PORT[:TARGET][/TCP|UDP], TARGET a number or a task's port name"


def _items(values: Iterable[str]) -> list[str]:
    """Repeated flags and comma lists mean the same: ``-s a=1 -s b=2`` is ``-s a=1,b=2``."""
    return [item for value in values for item in value.split(",")]


def parse_name(value: str, what: str = "name") -> str:
    try:
        return check_name(value)
    except ValueError as exc:
        raise InvalidInput(what, value, str(exc)) from None


SERVICE_KINDS = frozenset({"service", "services", "svc"})


def parse_service_ref(value: str) -> str:
    """A service's name, given as ``NAME`` or as kubectl's ``TYPE/NAME`` (``svc/web``,
    ``service/web``, ``services/web``): what ``get -o name`` prints, read back."""
    kind, slash, name = value.partition("/")
    if not slash:
        return parse_name(value)
    if kind not in SERVICE_KINDS:
        raise InvalidInput("resource type", kind, f"{value!r} names no service (service/NAME)")
    return parse_name(name)


def parse_type(value: str) -> ServiceType:
    try:
        return ServiceType(value)
    except ValueError:
        choices = ", ".join(t.value for t in ServiceType)
        raise InvalidInput("service type", value, f"must be one of {choices}") from None


def parse_cluster_ip(value: str, what: str = "cluster IP") -> str | None:
    """An asked-for cluster IP: an IPv4 address in its canonical spelling, or ``None`` for a
    headless service; empty is not asking (the registry chooses), as in Kubernetes.
    Whether it is in the service range and free is the registry's to say."""
    from events import HEADLESS
    from events.names import IPV4_PATTERN

    if value == "":
        return None
    if value == HEADLESS or re.fullmatch(IPV4_PATTERN, value):
        return value
    if value.lower() == HEADLESS.lower():
        reason = f"write {HEADLESS} (capital N) for a headless service, as Kubernetes does"
    else:
        reason = f"must be an IPv4 address (10.96.0.10) or {HEADLESS} for a headless service"
    raise InvalidInput(what, value, reason)


def parse_selector(values: Iterable[str], *, what: str = "selector") -> dict[str, str]:
    """``key=value`` pairs (a selector, or labels), each checked by the label rules."""
    selector: dict[str, str] = {}
    for item in _items(values):
        if any(ch.isspace() for ch in item):
            raise InvalidInput(what, item, "must not contain spaces (use key=value)")
        key, eq, value = item.partition("=")
        if not eq or not key:
            raise InvalidInput(what, item, "must be key=value")
        try:
            check_label_key(key)
            check_label_value(value)
        except ValueError as exc:
            raise InvalidInput(what, item, str(exc)) from None
        if selector.get(key, value) != value:
            raise InvalidInput(what, item, f"{key} is already set to {selector[key]!r}")
        selector[key] = value
    return selector


def _port_number(text: str, item: str, role: str) -> int:
    if not (text.isascii() and text.isdigit()):
        raise InvalidInput("port", item, f"{role} {text!r} is not a number ({_PORT_FORM})")
    # Length first: int() of thousands of digits is slow, and refused past 4,300.
    number = int(text) if len(text.lstrip("0")) <= 5 else 65536
    if not 1 <= number <= 65535:
        shown = text if len(text) <= 12 else f"{text[:12]}... ({len(text)} digits)"
        raise InvalidInput("port", item, f"{role} {shown} is outside 1-65535")
    return number


def parse_ports(values: Iterable[str]) -> list[Port]:
    from events import Port

    ports: list[Port] = []
    seen: set[tuple[int, Protocol]] = set()
    names: set[str | None] = {None}
    for item in _items(values):
        match = _PORT.fullmatch(item)
        if not match or not match["port"]:
            raise InvalidInput("port", item, f"must be {_PORT_FORM}")
        port = _port_number(match["port"], item, "port")
        name = None if match["name"] is None else _port_name(match["name"], item, "name")
        target: int | str = port
        if match["target"] is not None:
            text = match["target"]
            target = (
                _port_number(text, item, "target")
                if not text or text[:1].isdigit()
                else _port_name(text, item, "target")
            )
        try:
            protocol = Protocol(match["protocol"] or "TCP")
        except ValueError:
            raise InvalidInput("port", item, "protocol must be TCP or UDP") from None
        if (port, protocol) in seen:
            raise InvalidInput("port", item, f"port {port}/{protocol.value} is given twice")
        if name is not None and name in names:
            raise InvalidInput("port", item, f"port name {name!r} is given twice")
        seen.add((port, protocol))
        names.add(name)
        ports.append(Port(port=port, target_port=target, protocol=protocol, name=name))
    return ports


def _port_name(text: str, item: str, role: str) -> str:
    try:
        return check_port_name(text)
    except ValueError as exc:
        raise InvalidInput("port", item, f"{role}: {exc}") from None


def parse_named_ports(values: Iterable[str]) -> dict[str, int]:
    """A task's ``--port http=8080 --port metrics=9100`` (or ``http=8080,metrics=9100``)."""
    ports: dict[str, int] = {}
    for item in _items(values):
        name, eq, number = item.partition("=")
        if not eq:
            raise InvalidInput("port", item, "must be NAME=NUMBER, e.g. http=8080")
        try:
            check_port_name(name)
        except ValueError as exc:
            raise InvalidInput("port", item, str(exc)) from None
        if name in ports:
            raise InvalidInput("port", item, f"port {name!r} is given twice")
        ports[name] = _port_number(number, item, "port")
    from events.liveness import MAX_TASK_PORTS  # (a command on services loads no task code)

    if len(ports) > MAX_TASK_PORTS:
        raise InvalidInput("port", ",".join(ports), f"a task has at most {MAX_TASK_PORTS} ports")
    return ports


def parse_service(
    name: str,
    *,
    namespace: str,
    service_type: str,
    selectors: Iterable[str],
    ports: Iterable[str],
    cluster: str | None,
    labels: Iterable[str] = (),
    cluster_ip: str | None = None,
    external_name: str | None = None,
) -> Service:
    """Every flag checked, each failure naming its value, before anything is sent."""
    from pydantic import ValidationError

    from events import Service

    external = parse_external_name(external_name)
    fields = {
        "namespace": parse_name(namespace, "namespace"),
        "name": parse_name(name),
        "type": parse_type(service_type),
        "selector": dict(sorted(parse_selector(selectors).items())),
        "ports": tuple(parse_ports(ports)),
        "cluster": parse_name(cluster, "cluster") if cluster is not None else None,
        "labels": dict(sorted(parse_selector(labels, what="label").items())),
        "cluster_ip": parse_cluster_ip(cluster_ip) if cluster_ip is not None else None,
        "external_name": external,
    }
    if external is not None:  # named here, before the model's rule says it without it
        check_external_name(fields["type"], external, "--external-name")
    try:
        service = Service.model_validate(fields)
    except ValidationError as exc:  # a rule the checks above do not know yet
        error = exc.errors()[0]
        if not error["loc"]:  # a rule across fields: a headless NodePort, say
            message = str(error["msg"]).removeprefix("Value error, ")
            raise InvalidInput("service", fields["name"], message) from None
        where = ".".join(str(p) for p in error["loc"]) or "service"
        raise InvalidInput(where, error.get("input", ""), error["msg"]) from None
    check_external_name(service.type, external, "--external-name")
    return service


def parse_external_name(text: str | None, what: str = "--external-name") -> str | None:
    """An ExternalName's DNS name: lower-cased, checked as RFC 1123 says."""
    if text is None:
        return None
    from events.service import EXTERNAL_NAME_PATTERN

    name = text.strip().lower()
    if len(name) > 253 or not re.fullmatch(EXTERNAL_NAME_PATTERN, name):
        raise InvalidInput(
            what,
            text,
            "must be a DNS name: labels of letters, digits and '-' joined by dots, "
            "at most 63 characters each and 253 in all (e.g. db.example.com)",
        )
    return name


def check_external_name(service_type: object, external_name: str | None, flag: str) -> None:
    """An ExternalName service needs its name, and only it may have one."""
    from events import ServiceType

    if service_type == ServiceType.EXTERNAL_NAME and external_name is None:
        raise InvalidInput(flag, "", "an ExternalName service needs the DNS name it stands for")
    if service_type != ServiceType.EXTERNAL_NAME and external_name is not None:
        raise InvalidInput(flag, external_name, "only an ExternalName service has one")


_TTL = re.compile(r"(\d{1,5})(s|m|h)?")
_SECONDS = {None: 1, "s": 1, "m": 60, "h": 3600}


def parse_seconds(text: str, flag: str) -> float:
    """``10s``, ``500ms``, ``1.5``, ``2m`` -> seconds (a check's interval and timeout)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise InvalidInput(flag, text, "must be a duration: 500ms, 10s, 1.5s, 2m")
    return float(match.group(1)) * _SCALE[match.group(2) or "s"]


_RETENTION = re.compile(r"(\d{1,6})(s|m|h|d|w)")
_RETENTION_SCALE = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_retention(text: str, flag: str) -> int:
    """``30d``, ``12h``, ``52w`` -> whole seconds, from an hour to ten years."""
    match = _RETENTION.fullmatch(text.strip())
    seconds = int(match.group(1)) * _RETENTION_SCALE[match.group(2)] if match else 0
    if not 3600 <= seconds <= 3650 * 86400:
        raise InvalidInput(flag, text, "must be a duration from 1h to 3650d (12h, 30d, 52w)")
    return seconds


def parse_ttl_flag(text: str) -> int:
    """``15s``, ``15``, ``2m``, ``1h`` -> seconds; whole seconds only (the server's rule)."""
    from events.liveness import MAX_TTL_S, MIN_TTL_S

    match = _TTL.fullmatch(text.strip())
    seconds = int(match.group(1)) * _SECONDS[match.group(2)] if match else 0
    if not MIN_TTL_S <= seconds <= MAX_TTL_S:
        raise InvalidInput(
            "ttl",
            text,
            f"must be whole seconds from {MIN_TTL_S}s to {MAX_TTL_S}s (e.g. 15s, 2m, 1h)",
        )
    return seconds
