"""Setting where new addresses come from (``skyctl init --service-cidr --node-port-range``).

The ranges are one record on ``skyflow.config.ranges`` in the service stream, so every
writer reads the same ones; a change is conditional on the record it replaces, so two
admins cannot overwrite each other unseen. Addresses already held are not touched: each
stays with its service until the service gives it up, inside or outside the new range.
"""

from __future__ import annotations

import contextlib
import ipaddress

from events import (
    RANGES_SUBJECT,
    AddressRangesSet,
    DecodeError,
    NodePortRange,
    decode_ranges,
    encode,
    new_event_id,
    utc_now,
)
from registry.addresses.allocator import Allocator
from registry.addresses.holdings import Ranges
from registry.errors import InvalidInput, ServerError
from registry.log.port import Log, WrongLastSequence
from registry.log.stored import chain_hash

__all__ = ["parse_cidr", "parse_port_range", "set_ranges"]

_ATTEMPTS = 5


def parse_cidr(text: str) -> ipaddress.IPv4Network:
    """A service CIDR: an IPv4 network in canonical form with room for addresses."""
    try:
        network = ipaddress.IPv4Network(text.strip(), strict=True)
    except ValueError as exc:
        raise InvalidInput("--service-cidr", text, f"not an IPv4 network ({exc})") from None
    if network.prefixlen > 30:
        raise InvalidInput("--service-cidr", text, "leaves no addresses (use /30 or wider)")
    return network


def parse_port_range(text: str) -> tuple[int, int]:
    """``A-B``: node ports from A to B, inclusive."""
    first, dash, last = text.strip().partition("-")
    if not dash or not (first.isascii() and first.isdigit() and last.isascii() and last.isdigit()):
        raise InvalidInput("--node-port-range", text, "give it as FIRST-LAST, e.g. 30000-32767")
    low, high = int(first), int(last)
    if not 1 <= low <= high <= 65535:
        raise InvalidInput(
            "--node-port-range", text, "must be ports 1-65535, the first not after the last"
        )
    return low, high


async def set_ranges(
    log: Log,
    allocator: Allocator,
    service_cidr: str | None,
    node_ports: tuple[int, int] | None,
    actor: str,
) -> tuple[Ranges, bool]:
    """Record the ranges (what is None stays as it is); the ranges now, and whether this
    call changed them."""
    network = parse_cidr(service_cidr) if service_cidr is not None else None
    for _ in range(_ATTEMPTS):
        last = await log.last(RANGES_SUBJECT)
        current = Ranges.default()
        if last is not None:
            with contextlib.suppress(DecodeError):  # replaced by a readable one below
                current = Ranges.of(decode_ranges(last.data))
        wanted = Ranges(
            network or current.network,
            *(node_ports or (current.first_port, current.last_port)),
        )
        if wanted == current and last is not None:
            return current, False
        event = AddressRangesSet(
            id=new_event_id(),
            time=utc_now(),
            actor=actor,
            prev=chain_hash(last.data) if last is not None else None,
            service_cidr=str(wanted.network),
            node_ports=NodePortRange(first=wanted.first_port, last=wanted.last_port),
        )
        try:
            await log.append(
                RANGES_SUBJECT,
                encode(event),
                msg_id=event.id,
                expected_last_subject_seq=last.seq if last is not None else 0,
            )
        except WrongLastSequence:
            continue
        allocator.forget_ranges()
        return wanted, wanted != current or last is None
    raise ServerError("the address ranges kept changing while we wrote them; try again")
