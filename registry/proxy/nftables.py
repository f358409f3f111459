"""The plan in the kernel: one nftables table of our own, changed only where the plan did.

Layout (``ip skyflow``), as kube-proxy's nftables mode does it:

- ``service-ips``: a verdict map keyed by address . protocol . port, so a packet costs one
  lookup however many services there are; each element jumps to the chain of its
  backends;
- ``svc-<hash>``: one rule, ``dnat`` to ``numgen random mod N`` over the backends (an even
  choice per connection, per flow for UDP), marking the packet for masquerade; the chain's
  name is a hash of its protocol and backends, so frontends with the same backends (a
  cluster IP and its node ports) share one, and a changed set of backends is a new chain
  put in place in the same transaction that drops the old;
- ``no-endpoints``: frontends with no ready endpoint, rejected (TCP reset, ICMP port
  unreachable) in the input, forward and output hooks: refused at once, never
  black-holed;
- base chains on the nat prerouting and output hooks (locally generated traffic too: a
  process on the node can reach a cluster IP) and a postrouting masquerade of what we
  marked.

Every change is one ``nft -f -`` transaction: all of it or nothing. Rules stay when the
proxy stops (connections keep flowing across a restart, as with kube-proxy); a start
replaces the table in one transaction; ``--cleanup`` deletes it. Nothing here touches any
other table.

What the kernel holds is read back (``nft -j list table``) and compared with the plan:
untrusted, so anything odd in it only means "not equal", and the table is written again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from registry.errors import ServerError
from registry.proxy.plan import Backend, Backends, Change, Frontend, Plan

__all__ = [
    "FAMILY",
    "TABLE",
    "Nftables",
    "Observed",
    "chain_name",
    "change_script",
    "full_script",
    "observe",
    "observed_plan",
]

FAMILY: Final = "ip"
TABLE: Final = "skyflow"
MARK: Final = 0x00020000  # our DNAT'd packets, masqueraded on the way out
_MAX_LISTING = 512 * 1024 * 1024  # bytes of `nft -j` output we are willing to parse


class NftablesError(ServerError):
    """``nft`` refused or failed; the message carries its first line of complaint."""


def chain_name(protocol: str, backends: Backends) -> str:
    """The chain for these backends: named by what it does, so equal ones are shared."""
    digest = hashlib.sha256((protocol + "|" + ",".join(map(str, backends))).encode()).hexdigest()
    return f"svc-{digest[:20]}"


def _key(frontend: Frontend) -> str:
    return f"{frontend.address} . {frontend.protocol} . {frontend.port}"


def _base(T: str) -> list[str]:
    lines = [
        f"add table {T}",
        f"add map {T} service-ips {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add map {T} no-endpoints {{ type ipv4_addr . inet_proto . inet_service : verdict ; }}",
        f"add chain {T} reject-chain",
        f"add rule {T} reject-chain meta l4proto tcp reject with tcp reset",
        f"add rule {T} reject-chain reject",
        f"add chain {T} services",
        f"add rule {T} services ip daddr . meta l4proto . th dport vmap @service-ips",
    ]
    for hook, priority in (("prerouting", -100), ("output", -100)):
        lines += [
            f"add chain {T} nat-{hook} {{ type nat hook {hook} priority {priority} ; "
            "policy accept ; }",
            f"add rule {T} nat-{hook} jump services",
        ]
    lines += [
        f"add chain {T} nat-postrouting {{ type nat hook postrouting priority 100 ; "
        "policy accept ; }",
        f"add rule {T} nat-postrouting meta mark & {MARK:#x} == {MARK:#x} masquerade",
    ]
    for hook in ("input", "forward", "output"):
        lines += [
            f"add chain {T} filter-{hook} {{ type filter hook {hook} priority 0 ; "
            "policy accept ; }",
            f"add rule {T} filter-{hook} ip daddr . meta l4proto . th dport vmap @no-endpoints",
        ]
    return lines


def _chain(T: str, protocol: str, backends: Backends) -> list[str]:
    name = chain_name(protocol, backends)
    choices = ", ".join(f"{i} : {b.address} . {b.port}" for i, b in enumerate(backends))
    return [
        f"add chain {T} {name}",
        f"add rule {T} {name} meta l4proto {protocol} meta mark set meta mark | {MARK:#x} "
        f"dnat ip addr . port to numgen random mod {len(backends)} map {{ {choices} }}",
    ]


def full_script(plan: Mapping[Frontend, Backends], table: str = TABLE) -> str:
    """The whole table, replacing whatever is there in one transaction."""
    T = f"{FAMILY} {table}"
    lines = [f"add table {T}", f"delete table {T}", *_base(T)]
    chains = {(f.protocol, b) for f, b in plan.items() if b}
    for protocol, backends in sorted(chains):
        lines += _chain(T, protocol, backends)
    forwarded = [f"{_key(f)} : goto {chain_name(f.protocol, b)}" for f, b in plan.items() if b]
    rejected = [f"{_key(f)} : goto reject-chain" for f, b in plan.items() if not b]
    lines += _elements(T, "service-ips", forwarded)
    lines += _elements(T, "no-endpoints", rejected)
    return "\n".join(lines) + "\n"


def _elements(T: str, map_name: str, items: Sequence[str]) -> list[str]:
    # Batches keep each command's line a reasonable length for nft's parser.
    return [
        f"add element {T} {map_name} {{ {', '.join(items[i : i + 500])} }}"
        for i in range(0, len(items), 500)
    ]


def change_script(
    changes: Iterable[Change], chains: Counter[tuple[str, Backends]], table: str = TABLE
) -> str:
    """One transaction applying ``changes``; ``chains`` (how many frontends use each
    chain) is updated to what the table holds after it."""
    T = f"{FAMILY} {table}"
    existing = {chain for chain, users in chains.items() if users > 0}
    delete_elements: list[str] = []
    add_chains: list[str] = []
    add_elements: list[str] = []
    for change in changes:
        frontend, before, after = change.frontend, change.before, change.after
        if before is not None:
            map_name = "service-ips" if before else "no-endpoints"
            delete_elements.append(f"delete element {T} {map_name} {{ {_key(frontend)} }}")
            if before:
                chains[(frontend.protocol, before)] -= 1
        if after is None:
            continue
        if not after:
            add_elements.append(
                f"add element {T} no-endpoints {{ {_key(frontend)} : goto reject-chain }}"
            )
            continue
        chain = (frontend.protocol, after)
        if chain not in existing and chains[chain] <= 0:
            add_chains += _chain(T, *chain)
        chains[chain] += 1
        add_elements.append(
            f"add element {T} service-ips {{ {_key(frontend)} : goto {chain_name(*chain)} }}"
        )
    delete_chains = []
    for chain, users in list(chains.items()):
        if users <= 0:
            del chains[chain]
            if chain in existing:
                delete_chains.append(f"delete chain {T} {chain_name(*chain)}")
    return "\n".join([*delete_elements, *add_chains, *add_elements, *delete_chains]) + "\n"


def chains_of(plan: Mapping[Frontend, Backends]) -> Counter[tuple[str, Backends]]:
    return Counter((f.protocol, b) for f, b in plan.items() if b)


@dataclass(frozen=True)
class Observed:
    """What the kernel's table holds, as far as we read it."""

    forwarded: dict[Frontend, str]  # service-ips: frontend -> chain
    rejected: frozenset[Frontend]  # no-endpoints
    chains: dict[str, tuple[str, Backends] | None]  # svc chains: (protocol, backends); None: odd
    base_chains: frozenset[str]


_BASE_CHAINS = frozenset(
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


def observe(listing: Any) -> Observed | None:
    """``nft -j list table`` output read into what it forwards; None if it is not a
    listing we understand (then the table is simply written again)."""
    try:
        items = listing["nftables"]
        if not isinstance(items, list):
            return None
        forwarded: dict[Frontend, str] = {}
        rejected: set[Frontend] = set()
        chains: dict[str, tuple[str, Backends] | None] = {}
        base: set[str] = set()
        for item in items:
            if not isinstance(item, dict):
                return None
            if "chain" in item:
                name = str(item["chain"]["name"])
                if name.startswith("svc-"):
                    chains.setdefault(name, None)
                else:
                    base.add(name)
            elif "map" in item:
                m = item["map"]
                for key, verdict in m.get("elem") or []:
                    parts = key["concat"]
                    frontend = Frontend(str(parts[0]), str(parts[1]), int(parts[2]))
                    if m["name"] == "service-ips":
                        forwarded[frontend] = str(verdict["goto"]["target"])
                    elif m["name"] == "no-endpoints":
                        rejected.add(frontend)
            elif "rule" in item:
                rule = item["rule"]
                name = str(rule["chain"])
                if name.startswith("svc-"):
                    if chains.get(name) is not None:
                        chains[name] = None  # more than one rule: not ours
                    else:
                        chains[name] = _read_rule(rule.get("expr") or [])
        return Observed(forwarded, frozenset(rejected), chains, frozenset(base))
    except (KeyError, TypeError, ValueError, IndexError, AttributeError):
        return None


def _read_rule(exprs: list[Any]) -> tuple[str, Backends] | None:
    protocol: str | None = None
    backends: list[tuple[int, Backend]] = []
    for expr in exprs:
        if "match" in expr and expr["match"]["left"] == {"meta": {"key": "l4proto"}}:
            protocol = str(expr["match"]["right"])
        elif "dnat" in expr:
            mapping = expr["dnat"]["addr"]["map"]
            for index, target in mapping["data"]["set"]:
                address, port = target["concat"]
                backends.append((int(index), Backend(str(address), int(port))))
    if protocol is None or not backends:
        return None
    backends.sort()
    if [i for i, _ in backends] != list(range(len(backends))):
        return None
    return protocol, tuple(b for _, b in backends)


def observed_plan(observed: Observed) -> Plan | None:
    """The plan the kernel's table carries out, or None if it is not one we could have
    written (a chain changed, a base chain missing, an element going nowhere)."""
    if not observed.base_chains >= _BASE_CHAINS:
        return None
    plan: Plan = {}
    for frontend, chain in observed.forwarded.items():
        content = observed.chains.get(chain)
        if content is None or chain != chain_name(*content) or content[0] != frontend.protocol:
            return None
        plan[frontend] = content[1]
    for frontend in observed.rejected:
        if frontend in plan:
            return None
        plan[frontend] = ()
    return plan


class Nftables:
    """The kernel backend: runs ``nft`` to make the table equal the plan."""

    def __init__(self, table: str = TABLE, nft: str = "nft") -> None:
        self.table = table
        self._nft = nft
        self._chains: Counter[tuple[str, Backends]] = Counter()
        self.transactions = 0

    @staticmethod
    def available() -> str | None:
        """Why the kernel mode cannot run here, or None if it can."""
        import os

        if shutil.which("nft") is None:
            return "nft is not installed (apt-get install nftables)"
        if os.geteuid() != 0:
            return "changing the kernel's tables needs root"
        return None

    async def sync(self, plan: Mapping[Frontend, Backends]) -> None:
        """Replace the table with ``plan``, in one transaction."""
        await self._run(["-f", "-"], full_script(plan, self.table))
        self._chains = chains_of(plan)

    async def apply(self, changes: Sequence[Change]) -> None:
        """Apply only what changed, in one transaction."""
        if not changes:
            return
        chains = self._chains.copy()
        script = change_script(changes, chains, self.table)
        await self._run(["-f", "-"], script)
        self._chains = chains

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
            out = await self._run(["-j", "list", "table", FAMILY, self.table], None)
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
        await self._run(["delete", "table", FAMILY, self.table], None)
        self._chains.clear()
        return True

    async def _run(self, args: list[str], script: str | None) -> bytes:
        proc = await asyncio.create_subprocess_exec(
            self._nft,
            *args,
            stdin=asyncio.subprocess.PIPE if script is not None else asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate(script.encode() if script is not None else None)
        self.transactions += 1
        if proc.returncode != 0:
            first = next((line for line in err.decode(errors="replace").splitlines() if line), "")
            raise NftablesError(f"nft {' '.join(args)} failed: {first[:300]}")
        return out[:_MAX_LISTING]
