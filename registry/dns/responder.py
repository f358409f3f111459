"""One DNS query's bytes in, one response's bytes out (or nothing), as the RFCs say.

The wire format is dnspython's, both ways: nothing here writes a packet by hand. What this
module decides is the protocol around the zone's answer:

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

from registry.dns.zone import Zone

__all__ = ["MAX_QUERY_BYTES", "TCP_MAX", "UDP_MIN", "UDP_PAYLOAD", "respond"]

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


def respond(zone: Zone, wire: bytes, *, tcp: bool) -> bytes | None:
    """The response to the query ``wire`` (received over TCP or UDP); None: drop it."""
    if len(wire) < _HEADER:
        return None
    flags = int.from_bytes(wire[2:4], "big")
    if flags & dns.flags.QR:
        return None
    if len(wire) > MAX_QUERY_BYTES:
        return _error(wire, flags, dns.rcode.FORMERR)
    try:
        query = dns.message.from_wire(wire)
    except Exception:  # whatever the parser tripped on, the query is malformed
        return _error(wire, flags, dns.rcode.FORMERR)
    if query.opcode() != dns.opcode.QUERY:
        return _error(wire, flags, dns.rcode.NOTIMP)
    if len(query.question) != 1:
        return _error(wire, flags, dns.rcode.FORMERR)
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
        answer = zone.answer(question.name, question.rdtype, room=_room(query, limit))
        response.set_rcode(answer.rcode)
        if answer.rcode != dns.rcode.REFUSED:
            response.flags |= dns.flags.AA
        response.answer.extend(answer.answer)
        response.authority.extend(answer.authority)
        response.additional.extend(answer.additional)
    return response.to_wire(max_size=limit, prefer_truncation=True)


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
