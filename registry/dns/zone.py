"""The registry as a DNS zone: which names exist, and what each answers. Pure: no I/O.

Under the zone's domain (``skyflow.`` by default)::

    <service>.<namespace>.svc.<domain>                  A, AAAA: the ready endpoints'
                                                        addresses; SRV: one per ready
                                                        endpoint and service port
    _<port>._<proto>.<service>.<namespace>.svc.<domain> SRV: the ready endpoints on that
                                                        service port, with its target port
                                                        (<port>: its name, or its number)
    <task>.<namespace>.task.<domain>                    A or AAAA: the live task's address

as Kubernetes answers for a headless service and Consul for ``web.service.consul``. A
service's cluster IP is never answered: nothing routes it, so a client sent there would
reach nothing. ``<port>`` is the service port's name (``_http._tcp``, as Kubernetes
names SRV records) or, named or not, its number (``_80._tcp``); the SRV record carries
the port on the task (the target port, or the task's port of that name: a task without
it is left out); each SRV target is the task's own name, whose address is in the
additional section.

A name that does not exist is NXDOMAIN; a name that exists with nothing of the type
asked (a service with no ready endpoint, an IPv4 task asked for AAAA, the empty
non-terminals ``svc.<domain>`` and ``<namespace>.svc.<domain>``) is an empty NOERROR.
Both carry the zone's SOA so resolvers cache the absence for the TTL and no longer
(RFC 2308). A name outside the domain is REFUSED: this is not a recursive resolver.

**A name's cost does not grow with its endpoints.** What a service answers (its A, AAAA
and SRV records, each with its size on the wire) is built when its endpoints change,
never while answering. A query is given one *window* of them: as many as fit in the
``room`` the response has (the client's UDP buffer, or at most ``MAX_ANSWER_RECORDS``
over TCP), the next window on the next query, so every endpoint gets its share of
clients and a service with 20,000 endpoints costs a query what one with a few hundred
does. A window is a whole answer, never an empty truncated one.

**Names are matched without regard to case**, as DNS requires, and **one DNS name is
never two things**: where namespaces (or services, or tasks in one namespace) differ
only in case, the all-lower-case spelling is served, the only one ``create`` accepts;
if none of them is lower case, none is served. Either way the others are not, and
``conflicts`` names them. A spelling's creation time is written by its writer, so
"the first created wins" would let a forger win; lower case cannot be forged into.
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
import dns.rdtypes.ANY.CNAME
import dns.rdtypes.ANY.SOA
import dns.rdtypes.IN.A
import dns.rdtypes.IN.AAAA
import dns.rdtypes.IN.SRV
import dns.rrset

from events import Port
from registry.discovery.endpoints import EndpointAddress, Endpoints
from registry.discovery.tasks import LiveTask, TaskKey
from registry.services.projection import ServiceKey

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TTL",
    "MAX_DOMAIN_LENGTH",
    "Answer",
    "Prepared",
    "Rotation",
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
_CNAME = dns.rdatatype.CNAME
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


class Rotation:
    """Whose turn it is among the windows of one name's records at one window size:
    shared by every query given them, whatever its spelling, transport or room, so each
    window is given in turn."""

    __slots__ = ("count", "turn")

    def __init__(self, count: int) -> None:
        self.count = count
        self.turn = 0

    def next(self) -> int:
        turn = self.turn
        self.turn = (turn + 1) % self.count
        return turn


@dataclass(frozen=True, slots=True)
class Answer:
    """What to say about one name and type: the response code and its three sections;
    for a name whose records are served a window at a time, which window of how many,
    and the rotation among them."""

    rcode: dns.rcode.Rcode
    answer: tuple[dns.rrset.RRset, ...] = ()
    authority: tuple[dns.rrset.RRset, ...] = ()
    additional: tuple[dns.rrset.RRset, ...] = ()
    window: int = 0
    windows: int = 1
    rotation: Rotation | None = field(default=None, compare=False, repr=False)


class Prepared:
    """The response to one question, rendered by the responder in wire format once and
    copied for every query that asks it (with the query's id and spelling) until the zone
    changes. A name served a window at a time has one rendering per window, given as
    ``rotation`` says; each window has ``spins`` renderings, each with other records
    first, given in turn (``spin``). Each is rendered on first use. What the bytes hold
    is the responder's business; the zone only forgets them."""

    __slots__ = ("query", "rotation", "spin", "spins", "variants", "windows")

    def __init__(self, query: bytes, answer: Answer | None, spins: int) -> None:
        self.query = query  # the question as the responder renders it (lower case)
        self.windows = 1 if answer is None else answer.windows
        self.rotation = None if answer is None else answer.rotation
        self.spins = spins
        self.spin = 0
        self.variants: list[bytes | None] = [None] * (self.windows * spins)


_REFUSED = Answer(dns.rcode.REFUSED)


Owned = TypeVar("Owned", Endpoints, str)  # a service's endpoints, a task's address
V = TypeVar("V")
Key = tuple[str, str]  # (namespace, name) as written

# What a window holds at most, whatever the room: over TCP the room is 65,535 bytes,
# which would still make one query cost thousands of records' rendering. At 64, the
# dearest query (SRV over TCP: 64 targets and their addresses) renders in about 2.5 ms
# on this project's 2-core machine, an A query in about 0.6 ms; a small service's in 0.1.
MAX_ANSWER_RECORDS = 64
# The room a response has for its records when nobody says (over TCP, with no EDNS).
TCP_ROOM = 65535 - 12 - 259


@dataclass(frozen=True, slots=True)
class _Entry:
    """One record a name may answer with, and what goes with it: an address, or an SRV
    and its target's address for the additional section."""

    record: dns.rdata.Rdata
    target: dns.name.Name | None = None
    address: dns.rdata.Rdata | None = None


class _Pool:
    """The records one name answers one type with, served a window at a time.

    ``cost`` is the most bytes one entry can take in a response: an address is a pointer
    to the question's name and 10 + 4 or 16 bytes; an SRV is 2 + 10 + 6 bytes and its
    target (never compressed, RFC 2782), plus the target's address record, whose owner is
    counted at full length too. Windows are built on first use and kept, as answers are.
    """

    __slots__ = ("cost", "entries", "turns", "windows")

    def __init__(self, entries: list[_Entry], cost: int) -> None:
        self.entries = entries
        self.cost = cost
        self.windows: dict[tuple[int, int], Answer] = {}
        self.turns: dict[int, Rotation] = {}

    def take(self, zone: Zone, owner: dns.name.Name, room: int, turn: int | None) -> Answer:
        """Window ``turn`` of those that fit in ``room`` bytes (at least one record); None:
        the one after the last taken."""
        entries = self.entries
        if not entries:
            return zone._nodata()
        size = max(1, min(MAX_ANSWER_RECORDS, room // self.cost))
        count = -(-len(entries) // size)
        rotation = self.turns.get(size)
        if rotation is None:
            rotation = self.turns[size] = Rotation(count)
        turn = rotation.next() if turn is None else turn % count
        cached = self.windows.get((size, turn))
        if cached is None:
            chosen = entries[turn * size : (turn + 1) * size]
            cached = self.windows[(size, turn)] = _window(owner, chosen, zone.ttl, turn, rotation)
        return cached


def _window(
    owner: dns.name.Name, entries: list[_Entry], ttl: int, turn: int, rotation: Rotation
) -> Answer:
    by_type: dict[int, list[dns.rdata.Rdata]] = {}
    additional: list[dns.rrset.RRset] = []
    for entry in entries:
        by_type.setdefault(entry.record.rdtype, []).append(entry.record)
        if entry.target is not None and entry.address is not None:
            additional.append(dns.rrset.from_rdata_list(entry.target, ttl, [entry.address]))
    answer = tuple(dns.rrset.from_rdata_list(owner, ttl, found) for found in by_type.values())
    additional_rrsets = tuple(additional)
    return Answer(dns.rcode.NOERROR, answer, (), additional_rrsets, turn, rotation.count, rotation)


class _Pools:
    """Everything one service answers, built from its endpoints when they change (the
    records of endpoints that stayed are reused, so a change costs dictionary lookups
    per endpoint, not new records)."""

    __slots__ = ("addresses", "any", "records", "srv", "v4", "v6")

    def __init__(self, zone: Zone, endpoints: Endpoints, before: _Pools | None) -> None:
        old_addresses = before.addresses if before is not None else {}
        old_records = before.records if before is not None else {}
        self.addresses: dict[str, _Entry] = {}
        self.records: dict[tuple[str, int, str], _Entry] = {}
        v4: list[_Entry] = []
        v6: list[_Entry] = []
        ready: list[tuple[EndpointAddress, _Entry]] = []
        for address in endpoints.addresses:
            if not address.ready:
                continue
            text = address.address
            entry = self.addresses.get(text)
            if entry is None:
                entry = old_addresses.get(text) or _address_entry(text)
                if entry is None:  # checked when announced; a reader never trusts that
                    continue
                self.addresses[text] = entry
                (v4 if entry.record.rdtype == _A else v6).append(entry)
            ready.append((address, entry))
        self.v4 = _Pool(v4, 16)
        self.v6 = _Pool(v6, 28)
        self.any = _Pool(v4 + v6, 28)
        # SRV by (port, protocol), and (0, "") for every port: one per ready endpoint
        # and port. The target is written whole each time (RFC 2782: never compressed),
        # and its owner in the additional section is counted whole too.
        domain = sum(len(label) + 1 for label in zone.domain.labels)
        namespace = len(endpoints.namespace) + 1 + len(_TASK) + 1
        self.srv: dict[tuple[int, str], _Pool] = {}
        every: list[_Entry] = []
        cost = 1
        for spec in endpoints.ports:
            entries: list[_Entry] = []
            for address, found in ready:
                number = address.target(spec)
                if number is None:  # the task has no port of that name
                    continue
                key = (address.task, number, address.address)
                entry = self.records.get(key) or old_records.get(key)
                if entry is None:
                    target = zone._task_name(endpoints.namespace, address)
                    srv = dns.rdtypes.IN.SRV.SRV(
                        _IN, _SRV, _SRV_PRIORITY, _SRV_WEIGHT, number, target
                    )
                    entry = _Entry(srv, target, found.record)
                self.records[key] = entry
                entries.append(entry)
                target_bytes = len(address.task) + 1 + namespace + domain
                size = 4 if found.record.rdtype == _A else 16
                cost = max(cost, 2 * target_bytes + 30 + size)
            self.srv[(spec.port, spec.protocol.value)] = _Pool(entries, 1)
            every.extend(entries)
        for pool in self.srv.values():
            pool.cost = cost
        self.srv[(0, "")] = _Pool(every, cost)

    def pool(self, rdtype: int) -> _Pool:
        """The addresses a query of ``rdtype`` (A, AAAA or ANY) is answered from."""
        if rdtype == _A:
            return self.v4
        return self.v6 if rdtype == _AAAA else self.any


def _address_entry(text: str) -> _Entry | None:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return None
    if ip.version == 4:
        return _Entry(dns.rdtypes.IN.A.A(_IN, _A, str(ip)))
    return _Entry(dns.rdtypes.IN.AAAA.AAAA(_IN, _AAAA, str(ip)))


@dataclass
class _Node(Generic[Owned]):
    """What one DNS name stands for, by the key of each object written with it (one, or
    several whose names differ only in case, of which at most one is served), and the
    answers built for the one served until they change."""

    owners: dict[Key, Owned] = field(default_factory=dict)
    answers: dict[tuple[Key, Labels, int], Answer] = field(default_factory=dict)
    pools: dict[Key, _Pools] = field(default_factory=dict)


def served_spelling(spellings: Iterable[str]) -> str | None:
    """Which of the spellings of one DNS label is served: the only one, or the lower-case
    one; None when several are written and none is lower case."""
    found = list(spellings)
    if len(found) == 1:
        return found[0]
    return next((s for s in found if s == s.lower()), None)


class _Tree(Generic[Owned]):
    """The names of one kind (services, or tasks) by lower-cased namespace and name, and
    the spellings each namespace is written with."""

    def __init__(self) -> None:
        self.nodes: dict[tuple[bytes, bytes], _Node[Owned]] = {}
        self.spellings: dict[bytes, Counter[str]] = {}

    def clear(self) -> None:
        self.nodes.clear()
        self.spellings.clear()

    def namespace(self, lowered: bytes) -> str | None:
        """The spelling served for a lower-cased namespace; None: none (or none exists)."""
        spellings = self.spellings.get(lowered)
        return None if not spellings else served_spelling(spellings)

    def served(self, node: _Node[Owned], namespace: str) -> Key | None:
        """The key whose object ``node`` answers for, in the served ``namespace``."""
        keys = [key for key in node.owners if key[0] == namespace]
        if len(keys) == 1:
            return keys[0]
        name = served_spelling(key[1] for key in keys)
        return None if name is None else (namespace, name)

    def conflicts(self, kind: str) -> list[str]:
        """Each DNS name written in several spellings, and which one (if any) is served."""
        found = []
        for spellings in self.spellings.values():
            if len(spellings) > 1:
                found.append(_conflict(f"{kind} namespace", sorted(spellings)))
        for node in self.nodes.values():
            namespaces = {key[0] for key in node.owners}
            for namespace in namespaces:
                names = sorted(key[1] for key in node.owners if key[0] == namespace)
                if len(names) > 1:
                    found.append(_conflict(f"{kind}s in {namespace}", names))
        return sorted(found)


def _conflict(what: str, spellings: list[str]) -> str:
    served = served_spelling(spellings)
    shown = ", ".join(spellings)
    if served is None:
        return f"{what} {shown} differ only in case: none is served (none is lower case)"
    return f"{what} {shown} differ only in case: only {served} is served"


class Zone:
    """Every live service and task under ``domain``, kept current by ``set_service`` and
    ``set_task`` (or ``replace``), asked with ``answer``."""

    def __init__(
        self,
        domain: dns.name.Name | str = DEFAULT_DOMAIN,
        *,
        ttl: int = DEFAULT_TTL,
        serial: int = 1,
        cluster_ips: bool = False,
    ) -> None:
        self.domain = domain if isinstance(domain, dns.name.Name) else parse_domain(domain)
        # As CoreDNS answers: a service with a cluster IP is that address (a proxy leads it
        # to the endpoints), headless ones their endpoints.
        self.cluster_ips = cluster_ips
        self._vips: dict[ServiceKey, str] = {}
        self._cnames: dict[ServiceKey, dns.name.Name] = {}  # ExternalName services
        self.ttl = ttl
        self.serial = serial % 2**32
        self._services: _Tree[Endpoints] = _Tree()
        self._tasks: _Tree[str] = _Tree()
        self._soa: dns.rrset.RRset | None = None
        self._depth = len(self.domain.labels)
        # Bumped when a name gains or loses a second spelling: ``conflicts`` may differ.
        self.conflicts_changed = 0
        self.loaded = False  # until the first replace(): nothing read, nothing to answer
        # Responses rendered for the zone as it is, by the question they answer (the
        # responder's key); any change forgets them all, as it changes the SOA's serial
        # that every negative answer carries.
        self.prepared: dict[bytes, Prepared] = {}

    # -- keeping it current ---------------------------------------------------------------

    def replace(
        self,
        services: Iterable[Endpoints],
        tasks: Iterable[LiveTask],
        cluster_ips: Mapping[ServiceKey, str] | None = None,
        external_names: Mapping[ServiceKey, str] | None = None,
    ) -> None:
        """Everything at once, as a fresh read of the server tells it (``cluster_ips``:
        each service's cluster IP, if it has one, answered with ``cluster_ips=True``;
        ``external_names``: each ExternalName service's DNS name, answered as a CNAME)."""
        self._services.clear()
        self._tasks.clear()
        self._vips.clear()
        self._cnames.clear()
        vips, cnames = cluster_ips or {}, external_names or {}
        for key in {*vips, *cnames}:
            self._remember(key, vips.get(key), cnames.get(key))
        for endpoints in services:
            self._set(self._services, endpoints.key, endpoints)
        for task in tasks:
            self._set(self._tasks, task.key, task.address)
        self.loaded = True
        self._changed()

    def set_service(
        self,
        key: ServiceKey,
        endpoints: Endpoints | None,
        cluster_ip: str | None = None,
        external_name: str | None = None,
    ) -> None:
        """A service's endpoints now (None: the service is gone), its cluster IP and, for
        an ExternalName, its DNS name."""
        gone = endpoints is None
        moved = self._remember(key, None if gone else cluster_ip, None if gone else external_name)
        if self._set(self._services, key, endpoints) or moved:
            self._changed()

    def _remember(self, key: ServiceKey, cluster_ip: str | None, external_name: str | None) -> bool:
        """Keep what a service's name answers besides its endpoints (a cluster IP worth
        answering, an ExternalName's target); whether that changed. Both come from the
        log: an odd one is not kept."""
        vip = cluster_ip if cluster_ip and _is_vip(cluster_ip) else None
        cname = _cname(external_name) if external_name else None
        moved = self._vips.get(key) != vip or self._cnames.get(key) != cname
        _put(self._vips, key, vip)
        _put(self._cnames, key, cname)
        return moved

    def set_task(self, key: TaskKey, task: LiveTask | None) -> None:
        """A task's newest heartbeat (None: it is gone); only its address is answered, so
        a renewal changes nothing."""
        address = None if task is None else task.address
        if self._set(self._tasks, key, address):
            self._changed()

    def _set(self, tree: _Tree[Owned], key: Key, value: Owned | None) -> bool:
        """Put ``value`` under ``key`` (remove it for None); whether anything changed."""
        namespace, name = key
        lowered = (namespace.lower().encode(), name.lower().encode())
        node = tree.nodes.get(lowered)
        if value is None:
            if node is None or key not in node.owners:
                return False
            spellings = tree.spellings[lowered[0]]
            if len(node.owners) > 1 or (spellings[namespace] == 1 and len(spellings) > 1):
                self.conflicts_changed += 1
            del node.owners[key]
            node.pools.pop(key, None)
            node.answers.clear()
            if not node.owners:
                del tree.nodes[lowered]
            spellings[namespace] -= 1
            if not spellings[namespace]:
                del spellings[namespace]
                if not spellings:
                    del tree.spellings[lowered[0]]
            return True
        if node is None:
            node = tree.nodes[lowered] = _Node()
        elif node.owners.get(key) == value:
            return False
        if key not in node.owners:
            spellings = tree.spellings.setdefault(lowered[0], Counter())
            if node.owners or (namespace not in spellings and spellings):
                self.conflicts_changed += 1
            spellings[namespace] += 1
        node.owners[key] = value
        node.answers.clear()
        if isinstance(value, Endpoints):
            pools = node.pools
            pools[key] = _Pools(self, value, pools.get(key))
        return True

    def _changed(self) -> None:
        self.serial = (self.serial + 1) % 2**32
        self._soa = None
        self.prepared.clear()

    # -- asking ---------------------------------------------------------------------------

    def answer(
        self, qname: dns.name.Name, rdtype: int, *, room: int = TCP_ROOM, turn: int | None = None
    ) -> Answer:
        """The answer for ``qname`` (any case) and ``rdtype``, whose records take at most
        ``room`` bytes in the response (at least one record is given, whatever the room):
        for a name with more records than that, window ``turn`` of them (see
        ``Answer.windows``), or with None the window after the one it last gave."""
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
            return self._service_answer(relative, rdtype, room, turn)
        if kind == _TASK:
            return self._task_answer(relative, rdtype)
        return self._nxdomain()

    def _service_answer(self, relative: Labels, rdtype: int, room: int, turn: int | None) -> Answer:
        depth = len(relative)
        if depth == 1:  # svc.<domain>: always there, holds namespaces
            return self._nodata()
        namespace = self._services.namespace(relative[-2])
        if namespace is None:
            return self._nxdomain()
        if depth == 2:  # <namespace>.svc.<domain>
            return self._nodata()
        node = self._services.nodes.get((relative[-2], relative[-3]))
        key = None if node is None else self._services.served(node, namespace)
        if node is None or key is None or depth > 5:
            return self._nxdomain()
        endpoints, pools = node.owners[key], node.pools[key]
        owner = dns.name.Name(relative).concatenate(self.domain)
        cname = self._cnames.get(key)
        if cname is not None:  # an ExternalName: its own name stands for another
            if depth == 3:
                rdata = dns.rdtypes.ANY.CNAME.CNAME(_IN, _CNAME, cname)
                return self._positive([dns.rrset.from_rdata_list(owner, self.ttl, [rdata])])
            return self._nxdomain()
        vip = self._vips.get(key) if self.cluster_ips else None
        if vip is not None:
            return self._cluster_ip_answer(relative, rdtype, owner, vip, endpoints)
        if depth == 3:  # the service itself
            if rdtype in (_A, _AAAA, _ANY):
                return pools.pool(rdtype).take(self, owner, room, turn)
            if rdtype == _SRV:
                return pools.srv[(0, "")].take(self, owner, room, turn)
            return self._nodata()
        protocol = _PROTOCOLS.get(relative[-4])
        if protocol is None or not any(p.protocol.value == protocol for p in endpoints.ports):
            return self._nxdomain()
        if depth == 4:  # _<proto>.<service>...: an empty non-terminal
            return self._nodata()
        port = _port_number(relative[0], endpoints.ports, protocol)
        pool = None if port is None else pools.srv.get((port, protocol))
        if pool is None:
            return self._nxdomain()
        if rdtype == _SRV:
            return pool.take(self, owner, room, turn)
        return self._nodata()

    def _cluster_ip_answer(
        self, relative: Labels, rdtype: int, owner: dns.name.Name, vip: str, endpoints: Endpoints
    ) -> Answer:
        """A service's names answered with its cluster IP: A is the address; SRV points at
        the service's own name and port (the proxy leads them to an endpoint)."""
        depth = len(relative)
        service = dns.name.Name(relative[-3:]).concatenate(self.domain)
        if depth == 3:
            if rdtype in (_A, _ANY):
                return self._positive(_address_rrsets(owner, [vip], _A, self.ttl))
            if rdtype == _SRV and endpoints.ports:
                return self._positive([self._srv(owner, service, endpoints.ports)])
            return self._nodata()
        protocol = _PROTOCOLS.get(relative[-4])
        ports = [p for p in endpoints.ports if p.protocol.value == protocol]
        if protocol is None or not ports:
            return self._nxdomain()
        if depth == 4:
            return self._nodata()
        number = _port_number(relative[0], ports, protocol)
        ports = [p for p in ports if p.port == number]
        if not ports:
            return self._nxdomain()
        if rdtype == _SRV:
            return self._positive([self._srv(owner, service, ports)])
        return self._nodata()

    def _srv(
        self, owner: dns.name.Name, target: dns.name.Name, ports: Iterable[Port]
    ) -> dns.rrset.RRset:
        records = [
            dns.rdtypes.IN.SRV.SRV(_IN, _SRV, _SRV_PRIORITY, _SRV_WEIGHT, number, target)
            for number in sorted({p.port for p in ports})
        ]
        return dns.rrset.from_rdata_list(owner, self.ttl, records)

    def _task_name(self, namespace: str, address: EndpointAddress) -> dns.name.Name:
        labels = (address.task.lower().encode(), namespace.lower().encode(), _TASK)
        return dns.name.Name(labels).concatenate(self.domain)

    def _task_answer(self, relative: Labels, rdtype: int) -> Answer:
        depth = len(relative)
        if depth == 1:  # task.<domain>
            return self._nodata()
        namespace = self._tasks.namespace(relative[-2])
        if namespace is None:
            return self._nxdomain()
        if depth == 2:  # <namespace>.task.<domain>
            return self._nodata()
        node = self._tasks.nodes.get((relative[1], relative[0]))
        key = None if node is None else self._tasks.served(node, namespace)
        if node is None or key is None or depth > 3:
            return self._nxdomain()
        cached = node.answers.get((key, relative, rdtype))
        if cached is None:
            if rdtype in (_A, _AAAA, _ANY):
                owner = dns.name.Name(relative).concatenate(self.domain)
                rrsets = _address_rrsets(owner, [node.owners[key]], rdtype, self.ttl)
                cached = self._positive(rrsets)
            else:
                cached = self._nodata()
            if rdtype in _KEPT and cached.rcode == dns.rcode.NOERROR:
                node.answers[(key, relative, rdtype)] = cached
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
        return {"services": len(self._services.nodes), "tasks": len(self._tasks.nodes)}

    @property
    def conflicts(self) -> list[str]:
        """Namespaces, services and tasks written in spellings that differ only in case,
        each with the one served (if any): the others answer nothing."""
        return self._services.conflicts("service") + self._tasks.conflicts("task")


def _port_number(label: bytes, ports: Iterable[Port], protocol: str) -> int | None:
    """The service port a ``_<port>`` label names: ``_80`` -> 80, ``_http`` -> the number
    of the ``protocol`` port named ``http`` (names compared without case, as DNS does);
    None for anything else."""
    if not label.startswith(b"_"):
        return None
    text = label[1:]
    if text.isdigit() and len(text) <= 5:
        number = int(text)
        return number if 1 <= number <= 65535 else None
    name = text.lower().decode("ascii", "replace")
    return next((p.port for p in ports if p.name == name and p.protocol.value == protocol), None)


def _put(table: dict[ServiceKey, V], key: ServiceKey, value: V | None) -> None:
    if value is None:
        table.pop(key, None)
    else:
        table[key] = value


def _cname(text: str) -> dns.name.Name | None:
    """An ExternalName's target as an absolute name (the log is untrusted: None if not)."""
    try:
        return dns.name.from_text(text.rstrip(".") + ".")
    except (dns.exception.DNSException, ValueError):
        return None


def _is_vip(address: str) -> bool:
    """A cluster IP worth answering: an address, not "None" (headless)."""
    try:
        return isinstance(ipaddress.ip_address(address), ipaddress.IPv4Address)
    except ValueError:
        return False


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
