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

- ``verified``: both signatures hold, the actor is the JWT's user, and the reader trusts
  the user's key or the key that issued its JWT (``Trust``: a file of public keys);
- ``signed``: both signatures hold and the actor is the JWT's user, but nothing the
  reader trusts vouches for that key (anyone can make a key and a JWT for it);
- ``unproven``: unsigned: the actor is a claim (user/password and token writers, and
  servers without authentication, cannot sign);
- ``forged``: a signature does not hold, or the actor is not the signer.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from registry.errors import InvalidInput

__all__ = ["SIGNATURE", "SIGNER", "Proof", "Signer", "Trust", "prove"]

SIGNER = "Skyflow-Signer"
SIGNATURE = "Skyflow-Signature"

Status = Literal["verified", "signed", "unproven", "forged"]

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
        import nkeys

        text = path.read_text(errors="replace")
        jwt, seed = _JWT.search(text), _SEED.search(text)
        if jwt is None or seed is None:
            raise InvalidInput("creds file", str(path), "it holds no user JWT and NKey seed")
        try:
            claims = _claims(jwt.group(1))
            pair = nkeys.from_seed(bytearray(seed.group(1).encode()))
            user = pair.public_key.decode()
        except (ValueError, KeyError, nkeys.ErrInvalidSeed) as exc:
            raise InvalidInput("creds file", str(path), f"it cannot be read ({exc})") from None
        if claims.get("sub") != user:
            raise InvalidInput("creds file", str(path), "its JWT is not for its NKey")
        name = claims.get("name")
        return cls(jwt.group(1), seed.group(1).encode(), user, str(name) if name else None)

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
            lines = path.read_text().splitlines()
        except OSError as exc:
            raise InvalidInput("trust file", str(path), exc.strerror or str(exc)) from None
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
    detail: str = ""  # why, for forged and signed ones

    def __str__(self) -> str:
        return self.status


def prove(
    subject: str, data: bytes, headers: Mapping[str, str], actor: str, trust: Trust | None
) -> Proof:
    """What the headers of a stored event prove about its ``actor``."""
    jwt, signature = headers.get(SIGNER), headers.get(SIGNATURE)
    if jwt is None and signature is None:
        return Proof("unproven", "not signed")
    if jwt is None or signature is None:
        return Proof("forged", "half a signature")
    try:
        claims = _claims(jwt)
        user, issuer = str(claims["sub"]), str(claims["iss"])
        if not (_KEY.fullmatch(user) and user[0] == "U" and _KEY.fullmatch(issuer)):
            return Proof("forged", "the signer's JWT names no user key")
        header, body, jwt_signature = jwt.split(".")
        _verify(issuer, f"{header}.{body}".encode(), _b64decode(jwt_signature))
        _verify(user, _signed_bytes(subject, data), _b64decode(signature))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        return Proof("forged", f"a signature does not hold ({exc or type(exc).__name__})")
    name = claims.get("name")
    signer = actor_of(user, str(name) if name else None)
    if actor != signer:
        return Proof("forged", f"signed by {signer}, claims {actor}")
    if trust is not None and (user in trust.keys or issuer in trust.keys):
        return Proof("verified")
    return Proof("signed", f"by {user}, issued by {issuer}: not a trusted key")


def _claims(jwt: str) -> dict[str, Any]:
    parts = jwt.split(".")
    if len(parts) != 3:
        raise ValueError("not a JWT")
    claims = json.loads(_b64decode(parts[1]))
    if not isinstance(claims, dict):
        raise ValueError("not a JWT")
    return claims


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
