"""Who wrote an event, proven rather than claimed.

An event's ``actor`` is whatever its writer put there: anyone allowed to publish on a
service's subject can write ``"actor": "admin"``. A writer that authenticates with an
NKey (a ``.creds`` file) therefore signs what it appends, in two headers stored with the
message:

- ``Skyflow-Signer``: the user's JWT from the creds file (its ``sub`` is the user's public
  key, its ``iss`` the account, or an account signing key, that issued it);
- ``Skyflow-Signature``: the ed25519 signature, by the user's key, of the subject, a
  newline, and the event's bytes (base64url, no padding).

Any reader can check both later, with nothing but public keys. An event is

- ``verified``: both signatures hold, the actor is the JWT's user, the JWT was valid when
  the server stored the event, the event is where it was signed to be (below), and the
  reader trusts the user's key or the key that issued its JWT (``Trust``: a file of
  public keys);
- ``signed``: all that, but nothing the reader trusts vouches for that key (anyone can
  make a key and a JWT for it);
- ``unproven``: unsigned: the actor is a claim (user/password and token writers, and
  servers without authentication, cannot sign);
- ``replayed``: the signatures hold, but the event is not where it was signed to be. The
  signed bytes carry ``prev``, the hash of the message before it on its subject, so a
  signature names its place in the chain; a copy appended again later (anyone allowed to
  publish there can resend stored bytes and headers) follows another message;
- ``expired``: the signatures hold, but the JWT's ``exp`` had passed, or its ``nbf`` had
  not come, when the server stored the event (the server's clock, which no writer sets);
- ``forged``: a signature does not hold, the actor is not the signer, or the headers are
  not what a signer writes (too large, nested too deeply, not a user JWT): whatever a
  writer puts in a header, a reader answers with a status, never an error.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from registry.errors import InvalidInput
from registry.log.port import Log
from registry.log.stored import SIGNATURE, SIGNER, StoredMessage, chain_hash

if TYPE_CHECKING:
    from registry.services.projection import ServiceRecord

__all__ = [
    "MAX_JSON_DEPTH",
    "MAX_SIGNER_BYTES",
    "SIGNATURE",
    "SIGNER",
    "STATUSES",
    "Proof",
    "Prover",
    "Signer",
    "Trust",
    "placed",
    "prove",
    "record_proof",
]

Status = Literal["verified", "signed", "unproven", "replayed", "expired", "forged"]
STATUSES: Final[tuple[Status, ...]] = (
    "verified",
    "signed",
    "unproven",
    "replayed",
    "expired",
    "forged",
)

# A user JWT is a few hundred bytes (a long list of permissions makes a few KB); a larger
# header is refused before it is decoded, and so is JSON nested deeper than a JWT's own.
MAX_SIGNER_BYTES: Final = 8192
MAX_JSON_DEPTH: Final = 8
_JWT_SHAPE = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+={0,2}")
_SIGNATURE = re.compile(r"[A-Za-z0-9_-]{86}")
_ALGORITHMS = frozenset({"ed25519-nkey", "ed25519"})

_JWT = re.compile(r"-----BEGIN NATS USER JWT-----\s*([A-Za-z0-9_.=-]+)\s*------END NATS USER JWT")
_SEED = re.compile(r"-----BEGIN USER NKEY SEED-----\s*(SU[A-Z0-9]+)\s*------END USER NKEY SEED")
_KEY = re.compile(r"^[AU][A-Z2-7]{55}$")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _signed_bytes(subject: str, data: bytes) -> bytes:
    return subject.encode() + b"\n" + data


def actor_of(user: str, name: str | None) -> str:
    """How an NKey user is named as an actor: ``name (public key)``, as the server says."""
    return f"{name} ({user})" if name and name != user else user


@dataclass(frozen=True)
class Signer:
    """The writer's NKey and JWT, from its ``.creds`` file."""

    jwt: str
    seed: bytes
    user: str  # public key
    name: str | None

    @classmethod
    def from_creds(cls, path: Path) -> Signer:
        try:
            text = path.read_text(errors="replace")
        except OSError as exc:
            raise InvalidInput("creds file", str(path), exc.strerror or str(exc)) from None
        return cls.from_creds_text(text, str(path))

    @classmethod
    def from_creds_text(cls, text: str, source: str) -> Signer:
        """The signer of a creds file's contents (``source``: what to call them in an
        error). Checked before any client is given them: nats-py reads a user JWT and a
        seed from them without checking they are there."""
        import nkeys

        jwt, seed = _JWT.search(text), _SEED.search(text)
        if jwt is None or seed is None:
            raise InvalidInput("creds file", source, "it holds no user JWT and NKey seed")
        try:
            claims = _claims(jwt.group(1))
            pair = nkeys.from_seed(bytearray(seed.group(1).encode()))
            user = pair.public_key.decode()
        except (ValueError, KeyError, nkeys.ErrInvalidSeed) as exc:
            raise InvalidInput("creds file", source, f"it cannot be read ({exc})") from None
        if claims.get("sub") != user:
            raise InvalidInput("creds file", source, "its JWT is not for its NKey")
        name = claims.get("name")
        return cls(jwt.group(1), seed.group(1).encode(), user, str(name) if name else None)

    def creds_text(self) -> str:
        """The creds file these came from, as ``nsc`` writes one: what nats-py reads
        line by line (a pasted copy may have other line ends, or text around it)."""
        return (
            f"-----BEGIN NATS USER JWT-----\n{self.jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{self.seed.decode()}\n"
            "------END USER NKEY SEED------\n"
        )

    @property
    def actor(self) -> str:
        return actor_of(self.user, self.name)

    def headers(self, subject: str, data: bytes) -> dict[str, str]:
        import nkeys

        pair = nkeys.from_seed(bytearray(self.seed))
        signature = pair.sign(_signed_bytes(subject, data))
        return {SIGNER: self.jwt, SIGNATURE: _b64encode(signature)}


@dataclass(frozen=True)
class Trust:
    """Public keys a reader trusts: users (``U...``), and accounts or account signing keys
    (``A...``) whose users it trusts. One key per line in a file, ``#`` for comments."""

    keys: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def from_file(cls, path: Path) -> Trust:
        keys = set()
        try:
            lines = path.read_bytes().decode("utf-8").splitlines()
        except OSError as exc:
            raise InvalidInput("trust file", str(path), exc.strerror or str(exc)) from None
        except UnicodeDecodeError:
            raise InvalidInput("trust file", str(path), "it is not UTF-8 text") from None
        for number, line in enumerate(lines, 1):
            word = line.partition("#")[0].strip().split(" ")[0]
            if not word:
                continue
            if not _KEY.fullmatch(word):
                raise InvalidInput(
                    "trust file", f"{path}:{number}", f"{word[:60]!r} is not a user or account key"
                )
            keys.add(word)
        return cls(frozenset(keys))


@dataclass(frozen=True)
class Proof:
    status: Status
    detail: str = ""  # why, for every status but verified

    def __str__(self) -> str:
        return self.status

    @property
    def holds(self) -> bool:
        """Whether the signatures hold and name the actor: what a place in the chain and
        a trusted key are then checked for."""
        return self.status in ("verified", "signed")


def prove(
    subject: str,
    data: bytes,
    headers: Mapping[str, str],
    actor: str,
    trust: Trust | None,
    *,
    stored_ns: int = 0,
) -> Proof:
    """What the headers of a stored event prove about its ``actor``, the JWT judged at
    ``stored_ns`` (when the server stored it; 0: now). Never raises: a header no signer
    would write is ``forged``. Where the event stands in its chain is ``placed``'s to
    check."""
    jwt, signature = headers.get(SIGNER), headers.get(SIGNATURE)
    if jwt is None and signature is None:
        return Proof("unproven", "not signed")
    if jwt is None or signature is None:
        return Proof("forged", "half a signature")
    if not isinstance(jwt, str) or not isinstance(signature, str):
        return Proof("forged", "the signer headers are not text")
    try:
        user, issuer, claims = _read_jwt(jwt)
        if not _SIGNATURE.fullmatch(signature):
            raise ValueError("the signature is not 64 bytes of base64url")
    except (ValueError, TypeError, binascii.Error) as exc:
        return Proof("forged", _short(exc))
    try:
        _verify_jwt(jwt, issuer)
        _verify(user, _signed_bytes(subject, data), _b64decode(signature))
    except (ValueError, TypeError, binascii.Error) as exc:
        return Proof("forged", f"a signature does not hold ({_short(exc)})")
    name = claims.get("name")
    signer = actor_of(user, name if isinstance(name, str) else None)
    if actor != signer:
        return Proof("forged", f"signed by {signer}, claims {actor}")
    stored = stored_ns / 1e9 if stored_ns else time.time()
    expires, valid_from = claims.get("exp"), claims.get("nbf")
    if isinstance(expires, int) and expires and stored >= expires:
        return Proof("expired", f"its JWT expired at {_when(expires)}, before it was stored")
    if isinstance(valid_from, int) and stored < valid_from:
        return Proof("expired", f"its JWT was not valid until {_when(valid_from)}")
    if trust is not None and (user in trust.keys or issuer in trust.keys):
        return Proof("verified")
    return Proof("signed", f"by {user}, issued by {issuer}: not a trusted key")


def placed(proof: Proof, link: str | None, previous: str | None, previous_seq: int = 0) -> Proof:
    """``proof`` of an event that links to ``link`` (its ``prev``), stored right after a
    message whose ``chain_hash`` is ``previous`` (None: it is its subject's first): a
    signature that holds but was made for another place is ``replayed``."""
    if not proof.holds or link == previous:
        return proof
    where = f"seq {previous_seq}" if previous_seq else "the message before it"
    signed_for = f"after {link[:12]}…" if link else "as its subject's first event"
    stored_at = f"after {where} ({previous[:12]}…)" if previous else "first on its subject"
    return Proof("replayed", f"signed {signed_for}, stored {stored_at}")


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 120 else text[:117] + "..."


def _when(seconds: int) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return str(seconds)[:20]


@lru_cache(maxsize=1024)
def _verify_jwt(jwt: str, issuer: str) -> None:
    """ValueError unless ``issuer`` signed ``jwt``; remembered for the JWTs that hold (a
    log has few signers and many events)."""
    header, body, jwt_signature = jwt.split(".")
    _verify(issuer, f"{header}.{body}".encode(), _b64decode(jwt_signature))


@lru_cache(maxsize=1024)
def _read_jwt(jwt: str) -> tuple[str, str, dict[str, Any]]:
    """The user key, issuer key and claims of a user JWT, checked for shape before any of
    it is decoded; ValueError for anything a signer would not write."""
    if len(jwt) > MAX_SIGNER_BYTES:
        raise ValueError(f"the signer's JWT is {len(jwt)} bytes; at most {MAX_SIGNER_BYTES}")
    if not _JWT_SHAPE.fullmatch(jwt):
        raise ValueError("the signer is not a JWT")
    header_part, claims_part, _ = jwt.split(".")
    header = _bounded_json(_b64decode(header_part))
    if not isinstance(header, dict) or header.get("alg") not in _ALGORITHMS:
        raise ValueError("the signer's JWT is not signed with an NKey")
    claims = _bounded_json(_b64decode(claims_part))
    if not isinstance(claims, dict):
        raise ValueError("the signer's JWT holds no claims")
    user, issuer = claims.get("sub"), claims.get("iss")
    if not (isinstance(user, str) and _KEY.fullmatch(user) and user[0] == "U"):
        raise ValueError("the signer's JWT names no user key")
    if not (isinstance(issuer, str) and _KEY.fullmatch(issuer)):
        raise ValueError("the signer's JWT names no issuer key")
    nats_claims = claims.get("nats")
    if isinstance(nats_claims, dict) and nats_claims.get("type", "user") != "user":
        raise ValueError("the signer's JWT is not a user's")
    for key in ("exp", "nbf"):
        value = claims.get(key)
        if value is not None and (type(value) is not int or not 0 <= value < 2**63):
            raise ValueError(f"the signer's JWT has a malformed {key!r}")
    name = claims.get("name")
    if name is not None and not (isinstance(name, str) and len(name) <= 256):
        raise ValueError("the signer's JWT has a malformed name")
    return user, issuer, claims


def _bounded_json(raw: bytes) -> Any:
    """JSON of at most ``MAX_JSON_DEPTH`` levels, refused before parsing if deeper: a
    recursive parser given a header of nested brackets would exhaust the stack. One pass
    over the quotes, escapes and brackets (found by a regular expression with no
    backtracking), linear in the header's size."""
    depth = 0
    in_string = False
    for token in _JSON_TOKENS.findall(raw):
        if token == b'"':
            in_string = not in_string
        elif in_string or len(token) == 2:  # inside a string, or an escape
            continue
        elif token in b"[{":
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise ValueError(f"the signer's JWT nests deeper than {MAX_JSON_DEPTH} levels")
        else:
            depth -= 1
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # RecursionError: belt and braces
        raise ValueError(f"the signer's JWT is not JSON ({_short(exc)})") from None


_JSON_TOKENS = re.compile(rb'\\.|["\[\]{}]', re.S)


def _claims(jwt: str) -> dict[str, Any]:
    """The claims of a JWT from a creds file (the writer's own, read to sign)."""
    return _read_jwt(jwt)[2]


def _verify(public_key: str, data: bytes, signature: bytes) -> None:
    """ValueError unless ``signature`` is ``public_key``'s ed25519 signature of ``data``.

    An NKey public key is base32 of a prefix byte, the 32-byte ed25519 key and a CRC16;
    the nkeys package verifies only with a key pair, so the key is decoded here.
    """
    import nacl.exceptions
    import nacl.signing
    import nkeys

    raw = base64.b32decode(public_key + "=" * (-len(public_key) % 8))
    key = raw[1:-2]
    if len(key) != 32 or nkeys.crc16_checksum(raw[:-2]) != raw[-2:]:
        raise ValueError(f"{public_key[:12]}... is not a valid public key")
    try:
        nacl.signing.VerifyKey(key).verify(data, signature)
    except nacl.exceptions.BadSignatureError:
        raise ValueError("bad signature") from None


class Prover:
    """Proves events where a reader meets them, place in the chain included.

    Read in stream order from the start of their subjects (``from_start``), the message
    before each event is the one met before it; for one met without it (a read that began
    later, a service's last event), the log is asked, and only when the signatures hold:
    unsigned and forged events cost nothing more.
    """

    def __init__(self, trust: Trust | None, log: Log | None = None, *, from_start: bool) -> None:
        self.trust = trust
        self.log = log
        self.from_start = from_start
        self._last: dict[str, tuple[int, str]] = {}  # subject -> (seq, chain hash)

    def met(self, message: StoredMessage) -> None:
        """Note a message read (readable or not): the next on its subject follows it."""
        known = self._last.get(message.subject)
        if known is None or known[0] < message.seq:
            self._last[message.subject] = (message.seq, chain_hash(message.data))

    async def prove(self, message: StoredMessage, actor: str, link: str | None) -> Proof:
        """What ``message`` (an event by ``actor`` that links to ``link``) proves; notes
        it as met."""
        proof = self._signature(message, actor)
        known = self._known(message)
        if proof.holds and known is None and not self.from_start:
            place = (message.subject, message.seq)
            answers = await self._before([place])
            if place not in answers:  # the server could not say for certain
                self.met(message)
                return proof
            found = answers[place]
            known = (found.seq, chain_hash(found.data)) if found is not None else (0, None)
        self.met(message)
        return placed(proof, link, *_swap(known))

    def in_order(self, message: StoredMessage, actor: str, link: str | None) -> Proof:
        """``prove`` for a reader that met every message of the subject before this one
        (``from_start``): nothing to ask."""
        proof = self._signature(message, actor)
        known = self._known(message)
        self.met(message)
        return placed(proof, link, *_swap(known))

    def _signature(self, message: StoredMessage, actor: str) -> Proof:
        return prove(
            message.subject,
            message.data,
            message.headers,
            actor,
            self.trust,
            stored_ns=message.time_ns,
        )

    def _known(self, message: StoredMessage) -> tuple[int, str | None] | None:
        known = self._last.get(message.subject)
        if known is not None and known[0] < message.seq:
            return known
        return (0, None) if self.from_start else None

    async def place(self, records: Sequence[ServiceRecord]) -> None:
        """Find where each signed record's event stands (``ServiceRecord.previous``): one
        direct get each, many in flight; nothing for unsigned records."""
        asked = [
            r
            for r in records
            if r.previous is None and SIGNER in r.headers and SIGNATURE in r.headers
        ]
        found = await self._before([(r.subject, r.seq) for r in asked])
        for record in asked:
            place = (record.subject, record.seq)
            if place not in found:
                continue  # not known for certain: the signature alone is judged
            before = found[place]
            record.previous = (before.seq, chain_hash(before.data)) if before else (0, None)

    async def _before(
        self, places: list[tuple[str, int]]
    ) -> dict[tuple[str, int], StoredMessage | None]:
        if not places:
            return {}
        if self.log is None:
            raise RuntimeError("a Prover reading out of order needs the log")
        return await self.log.before_many(places)


def _swap(known: tuple[int, str | None] | None) -> tuple[str | None, int]:
    return (known[1], known[0]) if known is not None else (None, 0)


def record_proof(record: ServiceRecord, trust: Trust | None) -> Proof:
    """What a live service's last event proves about who wrote it (``last_actor``), and,
    when a reader has placed it (``Prover.place``), whether it stands where it was signed."""
    proof = prove(
        record.subject, record.data, record.headers, record.last_actor, trust,
        stored_ns=record.time_ns,
    )  # fmt: skip
    if record.previous is None:
        return proof
    seq, previous = record.previous
    return placed(proof, record.event.prev, previous, seq)
