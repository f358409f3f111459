"""One DNS query's bytes in, one response's bytes out (or nothing), as the RFCs say.

**A query costs reading its question and copying a prepared response.** Rendering a
response with dnspython takes about 0.2 ms; a plain query (opcode QUERY, one question
of class IN, no other record but an OPT of EDNS version 0 without options) is instead
read by hand (about 1.5 us in all), and its question (lower-cased) with the room it
has is the key of a response the zone keeps rendered (``Zone.prepared``): the bytes
``render`` made for the same query lower-cased, with id 0 and RD clear, into which the
query's id, RD bit and question as asked are copied. That is what ``render`` answers
the query itself, since nothing else in the query changes the response: the question
is the same length whatever its case, so the compression pointers into it stay valid,
and dnspython points at the question for any name equal to it ignoring case. Records
come in another order: where dnspython shuffles them, each prepared answer of several
records is rendered once per record, each first in turn (at most ``MAX_ROTATIONS`` per
name), and a name served a window at a time has a rendering per window, given in the
zone's rotation. The zone forgets every prepared response when it changes, so a
response is rendered once per change and question, on first use, never per query; at
most ``MAX_PREPARED`` are kept (then all are forgotten: a client asking made-up names
costs others a rendering each, as before). Anything else, odd or hostile, is left to
``render``.

``render`` writes the wire format with dnspython, both ways: nothing there writes a
packet by hand. What it decides is the protocol around the zone's answer:

- what is not a query is dropped: fewer bytes than a header, or a response (answering
  one could loop two servers into each other);
- a query that cannot be parsed, holds other than one question (RFC 9619), or is longer
  than any honest query (``MAX_QUERY_BYTES``) is answered FORMERR, with the id it
  carried and nothing else: there is no trustworthy question to echo;
- other opcodes are NOTIMP, other classes and zone transfers REFUSED, an EDNS version
  above 0 BADVERS (RFC 6891);
- over UDP an answer is at most 512 bytes, or ``UDP_PAYLOAD`` if the client's EDNS
  buffer allows that much; over TCP the 65,535 bytes of the length prefix. The zone is
  told how much room its records have and answers a window of a large service's records
  that fits, so an answer is never an empty truncated one. The TC bit (whole RRsets
  only, RFC 2181 9) is left for what should never happen: a window that does not fit;
- no EDNS padding: it hides sizes on encrypted transports (RFC 8467), and this server
  has none; padding would only take the room the records need.
"""

from __future__ import annotations

import dns.exception
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdataclass
import dns.rdatatype
import dns.rrset

from registry.dns.zone import Answer, Prepared, Zone

__all__ = [
    "MAX_PREPARED",
    "MAX_QUERY_BYTES",
    "TCP_MAX",
    "UDP_MIN",
    "UDP_PAYLOAD",
    "render",
    "respond",
]

# The EDNS buffer this server offers and honours at most: DNS Flag Day 2020's 1,232
# bytes, which crosses a 1,280-byte IPv6 path without fragmenting.
UDP_PAYLOAD = 1232
UDP_MIN = 512  # without EDNS (RFC 1035)
TCP_MAX = 65535
# A query is one question (a name of at most 255 bytes) and an OPT record; 512 bytes
# leave room for EDNS options (a cookie, padding to 128-byte blocks). Anything longer
# is not a query this server can owe an answer to.
MAX_QUERY_BYTES = 512
_HEADER = 12
_OPT = 11  # an OPT record without options: what a response carries
_ZONE_TRANSFERS = frozenset({dns.rdatatype.AXFR, dns.rdatatype.IXFR})
_CLASSES = frozenset({dns.rdataclass.IN, dns.rdataclass.ANY})
# Prepared responses kept at most: every name of a large registry, in each type and
# room it is asked in, with room to spare; about 15 MB if all were 1,232-byte answers.
MAX_PREPARED = 10_000
# Renderings of one answer with its records in turn first (a client that takes the
# first address spreads its load as with dnspython's shuffle): one per record, or per
# window of a large name's, up to this many.
MAX_ROTATIONS = 64
# The header of a plain query after its id: QDCOUNT 1, ANCOUNT and NSCOUNT 0.
_ONE_QUESTION = b"\x00\x01\x00\x00\x00\x00"
_IN_CLASS = b"\x00\x01"
_NO_OPT, _ONE_OPT = b"\x00\x00", b"\x00\x01"
# An OPT record's root name and type; its EDNS version 0 and extended rcode 0; no data.
_OPT_HEAD = b"\x00\x00\x29"
_PLAIN_TTL = b"\x00\x00"
_PREPARED_RCODES = frozenset({dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED})


def respond(zone: Zone, wire: bytes, *, tcp: bool) -> bytes | None:
    """The response to the query ``wire`` (received over TCP or UDP); None: drop it.
    Equal to ``render``'s, from a prepared copy where the query is a plain one."""
    key = _plain(wire, tcp)
    if key is None or not zone.loaded:
        return render(zone, wire, tcp=tcp)
    prepared = zone.prepared.get(key)
    if prepared is None:
        return _prepare(zone, wire, key, tcp)
    variants = prepared.variants
    if len(variants) == 1:
        made = variants[0]
    else:
        rotation = prepared.rotation
        window = 0 if rotation is None else rotation.next()
        if window == 0:  # a round of the windows: the next records first
            prepared.spin = (prepared.spin + 1) % prepared.spins
        at = prepared.spin * prepared.windows + window
        made = variants[at]
        if made is None:
            made = variants[at] = _render(zone, prepared.query, tcp, window, prepared.spin)[0]
    if made is None:  # never for a query once answered; if so, as if never prepared
        return render(zone, wire, tcp=tcp)
    return _copy(wire, made, len(key) - 1)


def _plain(wire: bytes, tcp: bool) -> bytes | None:
    """The key of a plain query's prepared response: its question with the name
    lower-cased, and one byte for the room (UDP without EDNS, UDP with a small or a
    large buffer, or TCP) and whether the response carries an OPT record. None for
    anything else (left to ``render``)."""
    size = len(wire)
    if size < 17 or wire[2] & 0xF8 or wire[4:10] != _ONE_QUESTION:  # QR, opcode
        return None
    at = 12
    while True:  # the name: labels of 1 to 63 bytes, no compression, at most 255 bytes
        length = wire[at]
        if length == 0:
            break
        if length > 63:
            return None
        at += length + 1
        if at >= size or at > 266:
            return None
    end = at + 5
    if at - 11 > 255 or wire[at + 3 : end] != _IN_CLASS:
        return None
    room = 4 if tcp else 0
    additional = wire[10:12]
    if additional == _NO_OPT:
        if end != size:
            return None
    elif additional == _ONE_OPT:
        opt = wire[end : end + 11]
        if (
            size != end + 11
            or opt[:3] != _OPT_HEAD
            or opt[5:7] != _PLAIN_TTL
            or opt[9:11] != _NO_OPT
        ):
            return None
        large = not tcp and int.from_bytes(opt[3:5], "big") >= UDP_PAYLOAD
        room |= 3 if large else 1
    else:
        return None
    return wire[12:at].lower() + wire[at:end] + bytes((room,))


def _prepare(zone: Zone, wire: bytes, key: bytes, tcp: bool) -> bytes | None:
    """Render the response to the plain query ``wire`` as asked in lower case (the next
    window, if its name has several), keep it in the zone, and answer ``wire`` with it."""
    question = len(key) - 1
    query = b"\x00\x00" + bytes((wire[2] & 0xFE,)) + wire[3:12] + key[:question]
    query += wire[12 + question :]
    made, answer = _render(zone, query, tcp, None, 0)
    # Only an answer to the question is copied into: never what dnspython refused.
    if made is None or made[4:6] != b"\x00\x01" or made[3] & 0x0F not in _PREPARED_RCODES:
        return render(zone, wire, tcp=tcp)
    if len(zone.prepared) >= MAX_PREPARED:
        zone.prepared.clear()
    prepared = zone.prepared[key] = Prepared(query, answer, _spins(answer))
    prepared.variants[0 if answer is None else answer.window] = made
    return _copy(wire, made, question)


def _spins(answer: Answer | None) -> int:
    """How many renderings of each window to prepare, each with other records first:
    one per record of its largest RRset, fewer for a name with many windows (whose
    rotation already puts other records first)."""
    if answer is None:
        return 1
    largest = max((len(rrset) for rrset in answer.answer), default=1)
    return max(1, min(largest, MAX_ROTATIONS // answer.windows))


def _copy(wire: bytes, made: bytes, question: int) -> bytes:
    """``made`` with the query's id, RD bit and question (as asked: any case)."""
    end = 12 + question
    flags = bytes((made[2] | (wire[2] & 0x01),))
    return b"".join((wire[:2], flags, made[3:12], wire[12:end], made[end:]))


def render(zone: Zone, wire: bytes, *, tcp: bool) -> bytes | None:
    """The response to the query ``wire``, rendered with dnspython (see the module's
    docstring): what ``respond`` answers, every time at a rendering's cost."""
    return _render(zone, wire, tcp, None, None)[0]


def _render(
    zone: Zone, wire: bytes, tcp: bool, turn: int | None, spin: int | None
) -> tuple[bytes | None, Answer | None]:
    """``render``'s response, given window ``turn`` of a large name's records (None:
    the next) with each RRset's records rotated ``spin`` places (None: shuffled); and
    the zone's answer it holds (None: the zone was not asked)."""
    if len(wire) < _HEADER:
        return None, None
    flags = int.from_bytes(wire[2:4], "big")
    if flags & dns.flags.QR:
        return None, None
    if len(wire) > MAX_QUERY_BYTES:
        return _error(wire, flags, dns.rcode.FORMERR), None
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # whatever the parser tripped on, the query is malformed
        return _error(wire, flags, dns.rcode.FORMERR), None
    if query.opcode() != dns.opcode.QUERY:
        return _error(wire, flags, dns.rcode.NOTIMP), None
    if len(query.question) != 1:
        return _error(wire, flags, dns.rcode.FORMERR), None
    answer = None
    response = dns.message.make_response(query, our_payload=UDP_PAYLOAD, pad=0)
    limit = _limit(query, tcp)
    question = query.question[0]
    if query.edns > 0:
        response.set_rcode(dns.rcode.BADVERS)
    elif question.rdclass not in _CLASSES or question.rdtype in _ZONE_TRANSFERS:
        response.set_rcode(dns.rcode.REFUSED)  # not served: another class, a transfer
    elif not zone.loaded:
        response.set_rcode(dns.rcode.SERVFAIL)  # the registry is not read yet
    else:
        room = _room(query, limit)
        answer = zone.answer(question.name, question.rdtype, room=room, turn=turn)
        response.set_rcode(answer.rcode)
        if answer.rcode != dns.rcode.REFUSED:
            response.flags |= dns.flags.AA
        if spin is None:
            response.answer.extend(answer.answer)
        else:
            response.answer.extend(_rotated(rrset, spin) for rrset in answer.answer)
        response.authority.extend(answer.authority)
        response.additional.extend(answer.additional)
    shuffle = spin is None  # dnspython's default: a random order each time
    out = response.to_wire(max_size=limit, prefer_truncation=True, want_shuffle=shuffle)
    return out, answer


def _rotated(rrset: dns.rrset.RRset, spin: int) -> dns.rrset.RRset:
    """``rrset`` with its records in order from the ``spin``-th one, round."""
    if len(rrset) < 2:
        return rrset
    records = list(rrset)
    at = spin % len(records)
    return dns.rrset.from_rdata_list(rrset.name, rrset.ttl, records[at:] + records[:at])


def _limit(query: dns.message.Message, tcp: bool) -> int:
    """How large the response may be: one of three sizes, so the zone keeps windows of
    few sizes (a client offering less than ``UDP_PAYLOAD`` gets 512-byte answers)."""
    if tcp:
        return TCP_MAX
    if query.edns < 0 or query.payload < UDP_PAYLOAD:
        return UDP_MIN
    return UDP_PAYLOAD


def _room(query: dns.message.Message, limit: int) -> int:
    """What is left for the records once the header, the question and the OPT record
    are written."""
    name = sum(len(label) + 1 for label in query.question[0].name.labels)
    return limit - _HEADER - name - 4 - (_OPT if query.edns >= 0 else 0)


def _error(wire: bytes, flags: int, rcode: dns.rcode.Rcode) -> bytes:
    """A response with only the query's id, opcode and RD bit, and ``rcode``: for a
    query whose question cannot be trusted or is not served."""
    response = dns.message.Message(id=int.from_bytes(wire[:2], "big"))
    opcode = dns.opcode.to_flags(dns.opcode.from_flags(flags))
    response.flags = dns.flags.QR | opcode | (flags & dns.flags.RD)
    response.set_rcode(rcode)
    return response.to_wire()
