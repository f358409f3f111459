"""The registry as a DNS zone: which names exist, and what each answers. Pure: no I/O.

Under the zone's domain (``skyflow.`` by default)::

    <service>.<namespace>.svc.<domain>                  A, AAAA: the ready endpoints'
                                                        addresses; SRV: one per ready
                                                        endpoint and service port
    _<port>._<proto>.<service>.<namespace>.svc.<domain> SRV: the ready endpoints on that
                                                        service port, with its target port
    <task>.<namespace>.task.<domain>                    A or AAAA: the live task's address

as Kubernetes answers for a headless service and Consul for ``web.service.consul``. A
service's cluster IP is never answered: nothing routes it, so a client sent there would
reach nothing. Ports have no names in SkyFlow (``-p 80:8080``), so ``<port>`` is the
service port's number and the SRV record carries the target port; each SRV target is
the task's own name, whose address is in the additional section.

A name that does not exist is NXDOMAIN; a name that exists with nothing of the type
asked (a service with no ready endpoint, an IPv4 task asked for AAAA, the empty
non-terminals ``svc.<domain>`` and ``<namespace>.svc.<domain>``) is an empty NOERROR.
Both carry the zone's SOA so resolvers cache the absence for the TTL and no longer
(RFC 2308). A name outside the domain is REFUSED: this is not a recursive resolver.

Names are matched without regard to case, as DNS requires; services (or tasks) whose
names differ only in case share their DNS name, and it answers for all of them.

Answers are built once per name and type and kept until what they were built from
changes, so a query costs a dictionary lookup here; rendering them is the library's.
"""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, TypeVar

import dns.exception
import dns.name
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

from registry.discovery.endpoints import EndpointAddress, Endpoints
from registry.discovery.tasks import LiveTask, TaskKey
from registry.services.projection import ServiceKey

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TTL",
    "MAX_DOMAIN_LENGTH",
    "Answer",
    "Zone",
    "parse_domain",
]

DEFAULT_DOMAIN = "skyflow."
# Kubernetes' cluster DNS answers with 5 s: short enough that a dead task leaves a
# client's cache soon after it leaves the registry, long enough to spare a busy client
# a query per connection.
DEFAULT_TTL = 5
# The longest name the zone builds, ``_65535._<proto>.<63>.<63>.svc.``, is 144 bytes on
# the wire before the domain; a DNS name holds 255.
MAX_DOMAIN_LENGTH = 100
_SRV_PRIORITY = 1  # one priority and one weight for all, as Consul answers:
_SRV_WEIGHT = 1  # clients spread their choice evenly among the targets
_LDH = frozenset(b"abcdefghijklmnopqrstuvwxyz0123456789-")
_IN = dns.rdataclass.IN
_A, _AAAA, _SRV = dns.rdatatype.A, dns.rdatatype.AAAA, dns.rdatatype.SRV
_SOA, _ANY = dns.rdatatype.SOA, dns.rdatatype.ANY
_SVC, _TASK = b"svc", b"task"
_PROTOCOLS = {b"_tcp": "TCP", b"_udp": "UDP"}
# Kept once built: the types with records here, and only answers that say something
# exists, so a client asking for made-up names or types cannot make the cache grow.
_KEPT = frozenset({_A, _AAAA, _SRV, _ANY})

Labels = tuple[bytes, ...]


def parse_domain(text: str) -> dns.name.Name:
    """``skyflow``, ``skyflow.``, ``cluster.local`` -> the absolute, lower-case name.
    ValueError (the reason) for anything else: the root (it would claim every name),
    a label that is not letters, digits and ``-``, or too long for the names under it."""
    if not text.strip(". "):
        raise ValueError("must name a domain below the root, e.g. skyflow.")
    try:
        name = dns.name.from_text(text.strip().lower())
    except dns.exception.DNSException as exc:
        raise ValueError(str(exc).rstrip(".")) from None
    for label in name.labels[:-1]:
        if not set(label) <= _LDH or label.startswith(b"-") or label.endswith(b"-"):
            raise ValueError(
                "each label may hold only letters, digits and '-', and must not start or "
                "end with '-'"
            )
    if len(name.to_text()) > MAX_DOMAIN_LENGTH:
        raise ValueError(f"must be at most {MAX_DOMAIN_LENGTH} characters")
    return name


@dataclass(frozen=True, slots=True)
class Answer:
    """What to say about one name and type: the response code and its three sections."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()


_REFUSED = Answer(dns.rcode.REFUSED)


Owned = TypeVar("Owned", Endpoints, str)  # a service's endpoints, a task's address


@dataclass
class _Node(Generic[Owned]):
    """What one DNS name stands for, by the key of each object it names (one, or several
    whose names differ only in case), and the answers built from them until they change."""

    owners: dict[tuple[str, str], Owned] = field(default_factory=dict)
    answers: dict[tuple[Labels, int], Answer] = field(default_factory=dict)


class Zone:
    """Every live service and task under ``domain``, kept current by ``set_service`` and
    ``set_task`` (or ``replace``), asked with ``answer``."""

    def __init__(
        self,
        domain: dns.name.Name | str = DEFAULT_DOMAIN,
        *,
        ttl: int = DEFAULT_TTL,
        serial: int = 1,
    ) -> None:
        self.domain = domain if isinstance(domain, dns.name.Name) else parse_domain(domain)
        self.ttl = ttl
        self.serial = serial % 2**32
        # By (namespace, name), lower-cased as DNS compares them.
        self._services: dict[tuple[bytes, bytes], _Node[Endpoints]] = {}
        self._tasks: dict[tuple[bytes, bytes], _Node[str]] = {}
        self._service_namespaces: Counter[bytes] = Counter()
        self._task_namespaces: Counter[bytes] = Counter()
        self._soa: dns.rrset.RRset | None = None
        self._depth = len(self.domain.labels)
        self.loaded = False  # until the first replace(): nothing read, nothing to answer

    # -- keeping it current ---------------------------------------------------------------

    def replace(self, services: Iterable[Endpoints], tasks: Iterable[LiveTask]) -> None:
        """Everything at once, as a fresh read of the server tells it."""
        self._services.clear()
        self._tasks.clear()
        self._service_namespaces.clear()
        self._task_namespaces.clear()
        for endpoints in services:
            self._set(self._services, self._service_namespaces, endpoints.key, endpoints)
        for task in tasks:
            self._set(self._tasks, self._task_namespaces, task.key, task.address)
        self.loaded = True
        self._changed()

    def set_service(self, key: ServiceKey, endpoints: Endpoints | None) -> None:
        """A service's endpoints now (None: the service is gone)."""
        if self._set(self._services, self._service_namespaces, key, endpoints):
            self._changed()

    def set_task(self, key: TaskKey, task: LiveTask | None) -> None:
        """A task's newest heartbeat (None: it is gone); only its address is answered, so
        a renewal changes nothing."""
        address = None if task is None else task.address
        if self._set(self._tasks, self._task_namespaces, key, address):
            self._changed()

    def _set(
        self,
        nodes: dict[tuple[bytes, bytes], _Node[Owned]],
        namespaces: Counter[bytes],
        key: tuple[str, str],
        value: Owned | None,
    ) -> bool:
        """Put ``value`` under ``key`` (remove it for None); whether anything changed."""
        namespace, name = key
        lowered = (namespace.lower().encode(), name.lower().encode())
        node = nodes.get(lowered)
        if value is None:
            if node is None or key not in node.owners:
                return False
            del node.owners[key]
            if not node.owners:
                del nodes[lowered]
                namespaces[lowered[0]] -= 1
                if not namespaces[lowered[0]]:
                    del namespaces[lowered[0]]
            else:
                node.answers.clear()
            return True
        if node is None:
            node = nodes[lowered] = _Node()
            namespaces[lowered[0]] += 1
        elif node.owners.get(key) == value:
            return False
        node.owners[key] = value
        node.answers.clear()
        return True

    def _changed(self) -> None:
        self.serial = (self.serial + 1) % 2**32
        self._soa = None

    # -- asking ---------------------------------------------------------------------------

    def answer(self, qname: dns.name.Name, rdtype: int) -> Answer:
        """The answer for ``qname`` (any case) and ``rdtype``."""
        labels = qname.labels
        depth = self._depth
        if len(labels) < depth or not qname.is_subdomain(self.domain):
            return _REFUSED
        relative = tuple(label.lower() for label in labels[: len(labels) - depth])
        if not relative:  # the apex
            if rdtype in (_SOA, _ANY):
                return Answer(dns.rcode.NOERROR, (self.soa(),))
            return self._nodata()
        kind = relative[-1]
        if kind == _SVC:
            return self._service_answer(relative, rdtype)
        if kind == _TASK:
            return self._task_answer(relative, rdtype)
        return self._nxdomain()

    def _service_answer(self, relative: Labels, rdtype: int) -> Answer:
        depth = len(relative)
        if depth == 1:  # svc.<domain>: always there, holds namespaces
            return self._nodata()
        if depth == 2:  # <namespace>.svc.<domain>
            return self._nodata() if relative[0] in self._service_namespaces else self._nxdomain()
        node = self._services.get((relative[-2], relative[-3]))
        if node is None or depth > 5:
            return self._nxdomain()
        cached = node.answers.get((relative, rdtype))
        if cached is None:
            cached = self._build_service(node, relative, rdtype)
            _keep(node, relative, rdtype, cached)
        return cached

    def _build_service(self, node: _Node[Endpoints], relative: Labels, rdtype: int) -> Answer:
        owner = dns.name.Name(relative).concatenate(self.domain)
        services = list(node.owners.values())
        if len(relative) == 3:  # the service itself
            if rdtype in (_A, _AAAA, _ANY):
                ready = [a for e in services for a in e.addresses if a.ready]
                rrsets = _address_rrsets(owner, [a.address for a in ready], rdtype, self.ttl)
                return self._positive(rrsets)
            if rdtype == _SRV:
                return self._srv(owner, services, port=None, protocol=None)
            return self._nodata()
        protocol = _PROTOCOLS.get(relative[-4])
        if protocol is None or not any(
            p.protocol.value == protocol for e in services for p in e.ports
        ):
            return self._nxdomain()
        if len(relative) == 4:  # _<proto>.<service>...: an empty non-terminal
            return self._nodata()
        port = _port_number(relative[0])
        if port is None or not any(
            p.port == port and p.protocol.value == protocol for e in services for p in e.ports
        ):
            return self._nxdomain()
        if rdtype == _SRV:
            return self._srv(owner, services, port=port, protocol=protocol)
        return self._nodata()

    def _srv(
        self,
        owner: dns.name.Name,
        services: list[Endpoints],
        *,
        port: int | None,
        protocol: str | None,
    ) -> Answer:
        """One SRV per ready endpoint and matching service port, the target port in it;
        each target's address in the additional section."""
        records: list[dns.rdata.Rdata] = []
        targets: dict[dns.name.Name, set[str]] = {}
        for endpoints in services:
            ready = [a for a in endpoints.addresses if a.ready]
            for spec in endpoints.ports:
                if port is not None and (spec.port, spec.protocol.value) != (port, protocol):
                    continue
                for address in ready:
                    target = self._task_name(endpoints.namespace, address)
                    targets.setdefault(target, set()).add(address.address)
                    records.append(
                        dns.rdtypes.IN.SRV.SRV(
                            _IN, _SRV, _SRV_PRIORITY, _SRV_WEIGHT, spec.target_port, target
                        )
                    )
        if not records:
            return self._nodata()
        answer = dns.rrset.from_rdata_list(owner, self.ttl, records)
        additional = [
            rrset
            for target, addresses in targets.items()
            for rrset in _address_rrsets(target, sorted(addresses), _ANY, self.ttl)
        ]
        return Answer(dns.rcode.NOERROR, (answer,), (), tuple(additional))

    def _task_name(self, namespace: str, address: EndpointAddress) -> dns.name.Name:
        labels = (address.task.lower().encode(), namespace.lower().encode(), _TASK)
        return dns.name.Name(labels).concatenate(self.domain)

    def _task_answer(self, relative: Labels, rdtype: int) -> Answer:
        depth = len(relative)
        if depth == 1:  # task.<domain>
            return self._nodata()
        if depth == 2:  # <namespace>.task.<domain>
            return self._nodata() if relative[0] in self._task_namespaces else self._nxdomain()
        node = self._tasks.get((relative[1], relative[0]))
        if node is None or depth > 3:
            return self._nxdomain()
        cached = node.answers.get((relative, rdtype))
        if cached is None:
            addresses = sorted(set(node.owners.values()))
            if rdtype in (_A, _AAAA, _ANY):
                owner = dns.name.Name(relative).concatenate(self.domain)
                cached = self._positive(_address_rrsets(owner, addresses, rdtype, self.ttl))
            else:
                cached = self._nodata()
            _keep(node, relative, rdtype, cached)
        return cached

    # -- the SOA, and answers with nothing in them ----------------------------------------

    def soa(self) -> dns.rrset.RRset:
        """The zone's SOA; its minimum (the negative-caching TTL) is the zone's TTL."""
        if self._soa is None:
            record = dns.rdtypes.ANY.SOA.SOA(
                _IN,
                _SOA,
                dns.name.Name((b"ns", b"dns")).concatenate(self.domain),
                dns.name.Name((b"hostmaster",)).concatenate(self.domain),
                self.serial,
                7200,  # refresh, retry, expire: for secondaries, which this zone has none of
                1800,
                86400,
                self.ttl,
            )
            self._soa = dns.rrset.from_rdata_list(self.domain, self.ttl, [record])
        return self._soa

    def _positive(self, rrsets: list[dns.rrset.RRset]) -> Answer:
        return Answer(dns.rcode.NOERROR, tuple(rrsets)) if rrsets else self._nodata()

    def _nodata(self) -> Answer:
        return Answer(dns.rcode.NOERROR, (), (self.soa(),))

    def _nxdomain(self) -> Answer:
        return Answer(dns.rcode.NXDOMAIN, (), (self.soa(),))

    # -- for tests and the command's log --------------------------------------------------

    @property
    def counts(self) -> Mapping[str, int]:
        """How many DNS names of each kind the zone holds."""
        return {"services": len(self._services), "tasks": len(self._tasks)}


def _keep(node: _Node[Owned], relative: Labels, rdtype: int, answer: Answer) -> None:
    if rdtype in _KEPT and answer.rcode == dns.rcode.NOERROR:
        node.answers[(relative, rdtype)] = answer


def _port_number(label: bytes) -> int | None:
    """``_80`` -> 80; None for anything else (``_http``: SkyFlow's ports have no names)."""
    digits = label[1:]
    if not label.startswith(b"_") or not digits.isdigit() or len(digits) > 5:
        return None
    number = int(digits)
    return number if 1 <= number <= 65535 else None


def _address_rrsets(
    owner: dns.name.Name, addresses: Iterable[str], rdtype: int, ttl: int
) -> list[dns.rrset.RRset]:
    """The A and/or AAAA records of ``addresses`` (``rdtype`` A, AAAA or ANY for both)."""
    v4: list[dns.rdata.Rdata] = []
    v6: list[dns.rdata.Rdata] = []
    for text in addresses:
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:  # checked when announced; a reader never trusts that
            continue
        if ip.version == 4 and rdtype in (_A, _ANY):
            v4.append(dns.rdtypes.IN.A.A(_IN, _A, str(ip)))
        elif ip.version == 6 and rdtype in (_AAAA, _ANY):
            v6.append(dns.rdtypes.IN.AAAA.AAAA(_IN, _AAAA, str(ip)))
    return [dns.rrset.from_rdata_list(owner, ttl, found) for found in (v4, v6) if found]
