"""Operator-mode NATS for tests: an operator, a system account, an account and a user,
as JWTs signed with real NKeys, and the user's ``.creds`` file (what ``nsc`` would make)."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import nkeys

if TYPE_CHECKING:
    from registry.jetstream.server import NatsServer

_LIMITS: dict[str, Any] = {
    "subs": -1,
    "data": -1,
    "payload": -1,
    "imports": -1,
    "exports": -1,
    "wildcards": True,
    "conn": -1,
    "leaf": -1,
}
_JETSTREAM = {"mem_storage": -1, "disk_storage": -1, "streams": -1, "consumer": -1}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _keypair(prefix: int) -> tuple[str, str, nkeys.KeyPair]:
    seed = nkeys.encode_seed(os.urandom(32), prefix)
    pair = nkeys.from_seed(bytearray(seed))
    return seed.decode(), pair.public_key.decode(), pair


def _jwt(claims: dict[str, Any], signer: nkeys.KeyPair) -> str:
    header = _b64(json.dumps({"typ": "JWT", "alg": "ed25519-nkey"}).encode())
    claims = {"iat": int(time.time()), **claims}
    digest = hashlib.sha256(json.dumps(claims, sort_keys=True).encode()).digest()
    claims["jti"] = base64.b32encode(digest).decode().rstrip("=")
    body = _b64(json.dumps(claims).encode())
    return f"{header}.{body}.{_b64(signer.sign(f'{header}.{body}'.encode()))}"


def operator_setup(
    directory: Path, user_name: str, others: Mapping[str, Mapping[str, Any]] | None = None
) -> tuple[Path, Path]:
    """Write ``operator.conf`` (include it in a server config) and ``<user>.creds``; with
    ``others``, also ``<name>.creds`` for each further user of the same account, its JWT
    given those extra claims (``{"exp": ...}``)."""
    _, op_pub, operator = _keypair(nkeys.PREFIX_BYTE_OPERATOR)
    _, sys_pub, _ = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    _, acc_pub, account = _keypair(nkeys.PREFIX_BYTE_ACCOUNT)
    op_jwt = _jwt(
        {
            "iss": op_pub,
            "sub": op_pub,
            "name": "skyflow",
            "nats": {"type": "operator", "version": 2},
        },
        operator,
    )
    sys_jwt = _jwt(
        {
            "iss": op_pub,
            "sub": sys_pub,
            "name": "SYS",
            "nats": {"type": "account", "version": 2, "limits": _LIMITS},
        },
        operator,
    )
    acc_jwt = _jwt(
        {
            "iss": op_pub,
            "sub": acc_pub,
            "name": "registry",
            "nats": {"type": "account", "version": 2, "limits": {**_LIMITS, **_JETSTREAM}},
        },
        operator,
    )

    def user_creds(name: str, extra: Mapping[str, Any]) -> Path:
        user_seed, user_pub, _ = _keypair(nkeys.PREFIX_BYTE_USER)
        user_jwt = _jwt(
            {
                "iss": acc_pub,
                "sub": user_pub,
                "name": name,
                "nats": {
                    "type": "user",
                    "version": 2,
                    "pub": {},
                    "sub": {},
                    "subs": -1,
                    "data": -1,
                    "payload": -1,
                },
                **extra,
            },
            account,
        )
        creds = directory / f"{name}.creds"
        creds.write_text(
            f"-----BEGIN NATS USER JWT-----\n{user_jwt}\n------END NATS USER JWT------\n\n"
            f"-----BEGIN USER NKEY SEED-----\n{user_seed}\n------END USER NKEY SEED------\n"
        )
        return creds

    config = directory / "operator.conf"
    config.write_text(
        f"operator: {op_jwt}\nsystem_account: {sys_pub}\nresolver: MEMORY\n"
        f"resolver_preload: {{ {acc_pub}: {acc_jwt}, {sys_pub}: {sys_jwt} }}\n"
    )
    creds = user_creds(user_name, {})
    for name, extra in (others or {}).items():
        user_creds(name, extra)
    return config, creds


@contextlib.contextmanager
def operator_server(
    directory: Path, user_name: str, others: Mapping[str, Mapping[str, Any]] | None = None
) -> Iterator[tuple[NatsServer, Path]]:
    """An operator-mode nats-server (``operator_setup``'s users) with the registry made
    and ``web`` in ``shop``, by ``user_name``; yields it and that user's creds file."""
    from registry.jetstream.server import NatsServer
    from tests.helpers import skyctl

    included, creds = operator_setup(directory, user_name, others)
    config = directory / "server.conf"
    config.write_text(
        "listen: 127.0.0.1:4222\njetstream { store_dir: $SKYFLOW_STORE_DIR }\n"
        f"include ./{included.name}\n"
    )
    with NatsServer(directory / "store", config=config) as server:
        for step in (("init",), ("create", "svc", "web", "-n", "shop", "-s", "app=web")):
            done = skyctl(*step, "--creds", str(creds), url=server.url)
            assert done.code == 0, (step, done.err)
        yield server, creds
