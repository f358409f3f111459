"""The plan in the kernel: one nftables table of our own, changed only where the plan did.

Layout (``ip skyflow``), after kube-proxy's nftables mode, with a fixed number of chains
whatever the number of services:

- ``service-ips``: a verdict map keyed by address . protocol . port, so a packet costs one
  lookup however many services there are; a frontend's element goes to the chain that
  picks among its N backends, ``pick-<protocol>-<N>-<bank>``, or is absent (no ready
  endpoint);
- ``pick-...``: one rule, ``dnat`` to the ``backends`` map at the packet's own frontend and
  ``numgen random mod N`` (plus the bank's offset): an even choice per connection, per
  flow for UDP. There is one such chain per protocol, count and bank in use, shared by
  every frontend with that many backends;
- ``backends``: frontend . index -> backend address . port;
- ``frontends``: every frontend, rejected (TCP reset, ICMP port unreachable) in the input,
  forward and output hooks. Those run after the nat hooks, so a packet whose destination
  was translated no longer matches: only a frontend with no ready endpoint is refused, at
  once, never black-holed;
- base chains on the nat prerouting and output hooks (locally generated traffic too: a
  process on the node can reach a cluster IP), and a postrouting masquerade of what came
  in from elsewhere and was translated.

Why changes only add: every deletion in an nf_tables transaction waits for an RCU grace
period (8-36 ms here, measured, whatever the table's size), additions do not (about 3 ms
for a whole ``nft`` run). Changing a frontend's backends therefore writes them in the
frontend's other *bank* of the ``backends`` map (indices offset by 65,536) and puts the
new verdict in ``overlay``, a verdict map looked up before ``service-ips``: both only
additions. What that leaves behind (the old bank, the overlay entry) is moved and removed
in a later transaction, off the path of any change (``tidy``). A second change to the
same frontend before the tidy pays the deletions itself. And since ``nft`` reads every
chain and set of the table before each command (nftables 1.0), keeping their number fixed
keeps a change's cost the same with 10 services or 10,000.

Every change is one ``nft -f -`` transaction: all of it or nothing. Rules stay when the
proxy stops (connections keep flowing across a restart, as with kube-proxy); a start
replaces the table in one transaction; ``--cleanup`` deletes it. Nothing here touches any
other table.

What the kernel holds is read back (``nft -j list table``) and compared with the plan:
untrusted, so anything odd in it only means "not equal", and the table is written again.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from registry.proxy.plan import Backend, Backends, Change, Frontend, Plan
from registry.proxy.transport import NftablesError, Transport, open_transport

__all__ = [
    "FAMILY",
    "TABLE",
    "Kernel",
    "Nftables",
    "NftablesError",
    "Observed",
    "change_script",
    "full_script",
    "observe",
    "observed_plan",
    "tidy_script",
]

FAMILY: Final = "ip"
TABLE: Final = "skyflow"
MARK: Final = 0x00020000  # came in from elsewhere: masqueraded once translated
BANK: Final = 65_536  # the second bank's offset in the backends map's index
PROTOCOLS: Final = ("tcp", "udp", "sctp")
_BASE_CHAINS: Final = frozenset(
    {
        "reject-chain",
        "services",
        "nat-prerouting",
        "nat-output",
        "nat-postrouting",
        "filter-input",
        "filter-forward",
        "filter-output",
    }
)
LEVELS: Final = 3  # changes to one frontend between tidies that only add
_OVERLAYS = tuple(f"overlay-{level}" for level in range(LEVELS, 0, -1))  # newest first
_MAPS = ("service-ips", *_OVERLAYS, "frontends")


Pick = tuple[str, int, int]  # protocol, number of backends, bank


def pick_chain(pick: Pick) -> str:
    protocol, count, bank = pick
    return f"pick-{protocol}-{count}-{bank}"


def _key(frontend: Frontend) -> str:
    return f"{frontend.address} . {frontend.protocol} . {frontend.port}"


@dataclass
class Kernel:
    """What our table holds, as our own transactions left it."""

    plan: dict[Frontend, Backends] = field(default_factory=dict)
    base: dict[Frontend, int] = field(default_factory=dict)  # bank service-ips points to
    # The overlay levels a frontend has used since the last tidy, oldest first: the bank
    # each points to (None: "return", no ready endpoint).
    overlay: dict[Frontend, list[int | None]] = field(default_factory=dict)
    banks: dict[Frontend, dict[int, int]] = field(default_factory=dict)  # bank -> elements
    picks: set[Pick] = field(default_factory=set)

    def saved(self, frontends: Iterable[Frontend]) -> Callable[[], None]:
        """What puts back these frontends' entries as they are now (a failed transaction
        changed nothing in the kernel): costs what they hold, not the whole table."""
        marker: Any = object()
        entries = [
            (table, f, table.get(f, marker))
            for f in set(frontends)
            for table in (self.plan, self.base, self.overlay, self.banks)
        ]
        copies = {
            id(v): (list(v) if isinstance(v, list) else dict(v))
            for _, _, v in entries
            if isinstance(v, (list, dict))
        }
        picks = set(self.picks)

        def restore() -> None:
            for table, f, value in entries:
                if value is marker:
                    table.pop(f, None)
                else:
                    table[f] = copies.get(id(value), value)
            self.picks = picks

        return restore

    def copy(self) -> Kernel:
        return Kernel(
            dict(self.plan),
            dict(self.base),
            {f: list(levels) for f, levels in self.overlay.items()},
            {f: dict(b) for f, b in self.banks.items()},
            set(self.picks),
        )

    def picks_in_use(self) -> set[Pick]:
        """Pick chains some element points to (an overlay's, or service-ips' beneath)."""
        pointed = [(f, b) for f, b in self.base.items()]
        pointed += [(f, b) for f, levels in self.overlay.items() for b in levels if b is not None]
        return {(f.protocol, self.banks[f][b], b) for f, b in pointed}

    @property
    def untidy(self) -> bool:
        return bool(self.overlay)


def _base(where: str) -> list[str]:
    verdicts = "{ type ipv4_addr . inet_proto . inet_service : verdict ; }"
    lines = [f"add table {where}", *(f"add map {where} {name} {verdicts}" for name in _MAPS)]
    lines += [
        # One per protocol: nftables 1.0 cannot read back a rule keyed on "th dport"
        # beside a protocol match ("conflicting protocols"), so each names its own.
        *(
            f"add map {where} backends-{p} {{ typeof ip daddr . {p} dport . "
            f"numgen random mod 2 : ip daddr . {p} dport ; }}"
            for p in PROTOCOLS
        ),
        f"add chain {where} reject-chain",
        f"add rule {where} reject-chain meta l4proto tcp reject with tcp reset",
        f"add rule {where} reject-chain reject",
        f"add chain {where} services",
        *(
            f"add rule {where} services ip daddr . meta l4proto . th dport vmap @{name}"
            for name in (*_OVERLAYS, "service-ips")
        ),
        f"add chain {where} nat-prerouting {{ type nat hook prerouting priority -100 ; "
        "policy accept ; }",
        # Marked while it is looked up: kept only if translated (dnat ends the chain).
        f"add rule {where} nat-prerouting meta mark set meta mark | {MARK:#x}",
        f"add rule {where} nat-prerouting jump services",
        f"add rule {where} nat-prerouting meta mark set meta mark & {~MARK & 0xFFFFFFFF:#x}",
        f"add chain {where} nat-output {{ type nat hook output priority -100 ; policy accept ; }}",
        f"add rule {where} nat-output jump services",
        f"add chain {where} nat-postrouting {{ type nat hook postrouting priority 100 ; "
        "policy accept ; }",
        f"add rule {where} nat-postrouting meta mark & {MARK:#x} == {MARK:#x} masquerade",
    ]
    for hook in ("input", "forward", "output"):
        lines += [
            f"add chain {where} filter-{hook} {{ type filter hook {hook} priority 0 ; "
            "policy accept ; }",
            f"add rule {where} filter-{hook} ip daddr . meta l4proto . th dport vmap @frontends",
        ]
    return lines


def _pick(where: str, pick: Pick) -> list[str]:
    protocol, count, bank = pick
    name = pick_chain(pick)
    return [
        f"add chain {where} {name}",
        f"add rule {where} {name} meta l4proto {protocol} dnat ip addr . port to "
        f"ip daddr . {protocol} dport . numgen random mod {count} offset {bank * BANK} "
        f"map @backends-{protocol}",
    ]


def _elements(where: str, map_name: str, items: Sequence[str], verb: str = "add") -> list[str]:
    # Batches keep each command's line a reasonable length for nft's parser.
    return [
        f"{verb} element {where} {map_name} {{ {', '.join(items[i : i + 500])} }}"
        for i in range(0, len(items), 500)
    ]


def _backend_items(frontend: Frontend, backends: Backends, bank: int) -> list[str]:
    return [
        f"{frontend.address} . {frontend.port} . {bank * BANK + i} : {b.address} . {b.port}"
        for i, b in enumerate(backends)
    ]


def _backend_keys(frontend: Frontend, count: int, bank: int) -> list[str]:
    return [f"{frontend.address} . {frontend.port} . {bank * BANK + i}" for i in range(count)]


def full_script(plan: Mapping[Frontend, Backends], kernel: Kernel, table: str = TABLE) -> str:
    """The whole table, replacing whatever is there, in one transaction; ``kernel`` is
    set to what it then holds."""
    where = f"{FAMILY} {table}"
    lines = [f"add table {where}", f"delete table {where}", *_base(where)]
    kernel.picks = set()
    for protocol, count in sorted({(f.protocol, len(b)) for f, b in plan.items() if b}):
        lines += _picks_near(where, protocol, count, kernel)
    forwarded = [
        f"{_key(f)} : goto {pick_chain((f.protocol, len(b), 0))}" for f, b in plan.items() if b
    ]
    lines += _elements(where, "service-ips", forwarded)
    lines += _elements(where, "frontends", [f"{_key(f)} : goto reject-chain" for f in plan])
    for protocol in PROTOCOLS:
        items = [
            item
            for f, b in plan.items()
            if f.protocol == protocol
            for item in _backend_items(f, b, 0)
        ]
        lines += _elements(where, f"backends-{protocol}", items)
    kernel.plan = dict(plan)
    kernel.base = {f: 0 for f, b in plan.items() if b}
    kernel.overlay = {}
    kernel.banks = {f: {0: len(b)} for f, b in plan.items() if b}
    return "\n".join(lines) + "\n"


def change_script(changes: Iterable[Change], kernel: Kernel, table: str = TABLE) -> str:
    """One transaction applying ``changes``: additions only where it can (see the module's
    docstring); ``kernel`` is updated to what the table holds after it."""
    where = f"{FAMILY} {table}"
    deletes: list[str] = []
    adds: list[str] = []
    for change in changes:
        frontend, after = change.frontend, change.after
        if after is None:
            deletes += _forget(where, frontend, kernel)
            continue
        if frontend not in kernel.plan:
            adds += _elements(where, "frontends", [f"{_key(frontend)} : goto reject-chain"])
        kernel.plan[frontend] = after
        levels = kernel.overlay.get(frontend, [])
        if frontend not in kernel.base and not levels:
            # Nothing points to it yet (new, or without endpoints so far): service-ips.
            if after:
                deletes += _drop_banks(where, frontend, kernel, keep=set())
                adds += _fill(where, frontend, after, 0, kernel)
                verdict = _goto(frontend, after, 0)
                adds += _elements(where, "service-ips", [f"{_key(frontend)} : {verdict}"])
                kernel.base[frontend] = 0
            continue
        if len(levels) >= LEVELS:
            # Its overlay levels are used up: this change pays for a tidy of its own.
            deletes += _fold(where, frontend, kernel)
            levels = []
        held = set(kernel.banks.get(frontend, {}))
        bank = min(set(range(LEVELS + 1)) - held)  # a bank nothing points to: empty
        verdict = "return"
        if after:
            adds += _fill(where, frontend, after, bank, kernel)
            verdict = _goto(frontend, after, bank)
        name = f"overlay-{len(levels) + 1}"
        adds += _elements(where, name, [f"{_key(frontend)} : {verdict}"])
        kernel.overlay[frontend] = [*levels, bank if after else None]
    return "\n".join([*deletes, *adds]) + "\n"


def _goto(frontend: Frontend, backends: Backends, bank: int) -> str:
    return f"goto {pick_chain((frontend.protocol, len(backends), bank))}"


def _fill(
    where: str, frontend: Frontend, backends: Backends, bank: int, kernel: Kernel
) -> list[str]:
    """Write ``backends`` into ``bank`` (empty before), with its pick chain."""
    lines = _picks_near(where, frontend.protocol, len(backends), kernel)
    lines += _elements(
        where, f"backends-{frontend.protocol}", _backend_items(frontend, backends, bank)
    )
    kernel.banks.setdefault(frontend, {})[bank] = len(backends)
    return lines


def _picks_near(where: str, protocol: str, count: int, kernel: Kernel) -> list[str]:
    """The pick chains for ``count`` backends and one more or fewer, in every bank, made
    now if missing: an endpoint joining or leaving then finds its chain there."""
    lines = []
    for near in (count - 1, count, count + 1):
        for bank in range(LEVELS + 1):
            pick = (protocol, near, bank)
            if near > 0 and pick not in kernel.picks:
                lines += _pick(where, pick)
                kernel.picks.add(pick)
    return lines


def _drop_banks(where: str, frontend: Frontend, kernel: Kernel, keep: set[int]) -> list[str]:
    banks = kernel.banks.get(frontend, {})
    lines = []
    for bank in sorted(set(banks) - keep):
        keys = _backend_keys(frontend, banks.pop(bank), bank)
        lines += _elements(where, f"backends-{frontend.protocol}", keys, "delete")
    return lines


def _fold(where: str, frontend: Frontend, kernel: Kernel) -> list[str]:
    """Point service-ips where the frontend's newest overlay level points and drop the
    rest (deletions: a tidy)."""
    levels = kernel.overlay.pop(frontend, [])
    if not levels:
        return []
    key = [_key(frontend)]
    lines = []
    for level in range(1, len(levels) + 1):
        lines += _elements(where, f"overlay-{level}", key, "delete")
    if kernel.base.pop(frontend, None) is not None:
        lines += _elements(where, "service-ips", key, "delete")
    newest = levels[-1]
    if newest is not None:
        count = kernel.banks[frontend][newest]
        verdict = f"goto {pick_chain((frontend.protocol, count, newest))}"
        lines += _elements(where, "service-ips", [f"{key[0]} : {verdict}"])
        kernel.base[frontend] = newest
    lines += _drop_banks(where, frontend, kernel, keep={newest} if newest is not None else set())
    return lines


def _forget(where: str, frontend: Frontend, kernel: Kernel) -> list[str]:
    """Everything of a frontend that goes (deletions: the slower path)."""
    if frontend not in kernel.plan:
        return []
    del kernel.plan[frontend]
    key = [_key(frontend)]
    lines = _elements(where, "frontends", key, "delete")
    for level in range(1, len(kernel.overlay.pop(frontend, [])) + 1):
        lines += _elements(where, f"overlay-{level}", key, "delete")
    if kernel.base.pop(frontend, None) is not None:
        lines += _elements(where, "service-ips", key, "delete")
    lines += _drop_banks(where, frontend, kernel, keep=set())
    kernel.banks.pop(frontend, None)
    return lines


def tidy_script(kernel: Kernel, table: str = TABLE) -> str:
    """Fold every overlay into ``service-ips`` and drop the banks it left behind, in one
    transaction; empty if there is nothing to tidy."""
    where = f"{FAMILY} {table}"
    lines: list[str] = []
    for frontend in sorted(kernel.overlay):
        lines += _fold(where, frontend, kernel)
    # Pick chains stay: there are few (one per protocol, count and bank), and making one
    # costs more than an element (nft reads the map it names).
    return "\n".join(lines) + "\n" if lines else ""


@dataclass(frozen=True)
class Observed:
    """What the kernel's table holds, as far as we read it."""

    maps: dict[str, dict[Frontend, str]]  # service-ips, overlay, frontends: -> verdict
    backends: dict[tuple[Frontend, int], Backend]
    picks: dict[str, Pick | None]  # pick chains: what their one rule does; None: odd
    base_chains: frozenset[str]


def observe(listing: Any) -> Observed | None:
    """``nft -j list table`` output read into what it forwards; None if it is not a
    listing we understand (then the table is simply written again)."""
    try:
        items = listing["nftables"]
        if not isinstance(items, list):
            return None
        maps: dict[str, dict[Frontend, str]] = {name: {} for name in _MAPS}
        backends: dict[tuple[Frontend, int], Backend] = {}
        picks: dict[str, Pick | None] = {}
        base: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                return None
            if "chain" in item:
                name = str(item["chain"]["name"])
                if name.startswith("pick-"):
                    picks.setdefault(name, None)
                else:
                    base.add(name)
            elif "map" in item:
                m = item["map"]
                name = str(m["name"])
                protocol = name.removeprefix("backends-")
                for key, data in m.get("elem") or []:
                    parts = key["concat"]
                    if protocol in PROTOCOLS:
                        frontend = Frontend(str(parts[0]), protocol, int(parts[1]))
                        address, port = data["concat"]
                        backends[(frontend, int(parts[2]))] = Backend(str(address), int(port))
                    elif name in maps:
                        frontend = Frontend(str(parts[0]), str(parts[1]), int(parts[2]))
                        maps[name][frontend] = _verdict(data)
            elif "rule" in item:
                rule = item["rule"]
                name = str(rule["chain"])
                if name.startswith("pick-"):
                    # A second rule is not one we wrote: the chain is not ours.
                    read = _read_pick(rule.get("expr") or [])
                    picks[name] = None if picks.get(name) is not None else read
        return Observed(maps, backends, picks, frozenset(base))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _verdict(data: Any) -> str:
    if "return" in data:
        return "return"
    if "goto" in data:
        return f"goto {data['goto']['target']}"
    return "?"


def _read_pick(exprs: list[Any]) -> Pick | None:
    if len(exprs) != 1 or "dnat" not in exprs[0]:
        return None
    mapping = exprs[0]["dnat"]["addr"]["map"]
    parts = mapping["key"]["concat"]
    if len(parts) != 3 or parts[0] != {"payload": {"protocol": "ip", "field": "daddr"}}:
        return None
    protocol = str(parts[1]["payload"]["protocol"])
    if parts[1]["payload"]["field"] != "dport" or mapping["data"] != f"@backends-{protocol}":
        return None
    numgen = parts[2]["numgen"]
    offset = int(numgen.get("offset", 0))
    if numgen["mode"] != "random" or offset % BANK or not 0 <= offset // BANK <= LEVELS:
        return None
    return protocol, int(numgen["mod"]), offset // BANK


def observed_plan(observed: Observed) -> Plan | None:
    """The plan the kernel's table carries out, or None if it is not one we could have
    written (a rule changed, a base chain missing, an element going nowhere)."""
    if not observed.base_chains >= _BASE_CHAINS:
        return None
    frontends = observed.maps["frontends"]
    if any(v != "goto reject-chain" for v in frontends.values()):
        return None
    plan: Plan = {}
    for frontend in frontends:
        verdict = next(
            (
                observed.maps[n][frontend]
                for n in (*_OVERLAYS, "service-ips")
                if frontend in observed.maps[n]
            ),
            "return",
        )
        if verdict == "return":
            plan[frontend] = ()
            continue
        pick = observed.picks.get(verdict.removeprefix("goto "))
        if pick is None or verdict != f"goto {pick_chain(pick)}" or pick[0] != frontend.protocol:
            return None
        _, count, bank = pick
        chosen = [observed.backends.get((frontend, bank * BANK + i)) for i in range(count)]
        if None in chosen:
            return None
        plan[frontend] = tuple(b for b in chosen if b is not None)
    for name in ("service-ips", *_OVERLAYS):
        if not set(observed.maps[name]) <= set(frontends):
            return None
    return plan


class Nftables:
    """The kernel forwarder: makes our table equal the plan, through ``transport``
    (libnftables in this process where it loads, else the ``nft`` program)."""

    def __init__(self, table: str = TABLE, transport: Transport | None = None) -> None:
        self.table = table
        self.transport = transport if transport is not None else open_transport()
        self.kernel = Kernel()
        self.transactions = 0

    @staticmethod
    def available() -> str | None:
        """Why the kernel mode cannot run here, or None if it can."""
        if shutil.which("nft") is None:
            return "nft is not installed (apt-get install nftables)"
        if os.geteuid() != 0:
            return "changing the kernel's tables needs root"
        return None

    async def sync(self, plan: Mapping[Frontend, Backends]) -> None:
        """Replace the table with ``plan``, in one transaction."""
        kernel = Kernel()
        await self._run(full_script(plan, kernel, self.table))
        self.kernel = kernel

    async def apply(self, changes: Sequence[Change]) -> None:
        """Apply only what changed, in one transaction (``tidy`` later)."""
        if not changes:
            return
        restore = self.kernel.saved(c.frontend for c in changes)
        try:
            await self._run(change_script(changes, self.kernel, self.table))
        except BaseException:
            restore()
            raise

    async def tidy(self) -> None:
        """Fold what changes left behind (off the path of any change: deletions wait)."""
        kernel = self.kernel.copy()
        script = tidy_script(kernel, self.table)
        if script:
            await self._run(script)
        self.kernel = kernel

    async def holds(self, plan: Mapping[Frontend, Backends]) -> bool:
        """Whether the kernel's table carries out exactly ``plan``."""
        listing = await self.listing()
        if listing is None:
            return False
        observed = observe(listing)
        return observed is not None and observed_plan(observed) == dict(plan)

    async def listing(self) -> Any:
        """The table as ``nft -j`` lists it; None if there is none."""
        try:
            out = await self._run(f"list table {FAMILY} {self.table}\n", json=True)
        except NftablesError as exc:
            if "no such file" in str(exc).lower():
                return None
            raise
        try:
            return json.loads(out)
        except ValueError:
            return {}

    async def cleanup(self) -> bool:
        """Delete our table; whether there was one."""
        if await self.listing() is None:
            return False
        await self._run(f"delete table {FAMILY} {self.table}\n")
        self.kernel = Kernel()
        return True

    def close(self) -> None:
        self.transport.close()

    async def _run(self, script: str, *, json: bool = False) -> str:
        self.transactions += 1
        return await self.transport.run(script, json=json)
