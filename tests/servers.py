"""The project's own server configurations with users and TLS, as tests and benchmarks run
them: the passwords they are given, and certificates from a throwaway CA (trustme)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from registry.jetstream.server import NatsServer

__all__ = ["AUTH_ENV", "PASSWORDS", "ROOT", "TlsFiles", "auth_server", "tls_files", "tls_server"]

ROOT = Path(__file__).parent.parent
PASSWORDS = {
    "admin": "adm-secret",
    "shop-writer": "shop-secret",
    "viewer": "view-secret",
    "shop-agent": "agent-secret",
    "controller": "ctl-secret",
}
AUTH_ENV = {
    "SKYFLOW_ADMIN_PASSWORD": PASSWORDS["admin"],
    "SKYFLOW_SHOP_PASSWORD": PASSWORDS["shop-writer"],
    "SKYFLOW_VIEWER_PASSWORD": PASSWORDS["viewer"],
    "SKYFLOW_AGENT_PASSWORD": PASSWORDS["shop-agent"],
    "SKYFLOW_CONTROLLER_PASSWORD": PASSWORDS["controller"],
}

# What an admin's ``skyctl init`` gives the teams of ``nats-server-auth.conf``: their
# namespaces' task intakes.
INIT_TEAMS = ("--namespace", "shop", "--namespace", "shop-staging")


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path


def tls_files(directory: Path) -> TlsFiles:
    """A new CA, and a certificate it signed for 127.0.0.1 and localhost, as PEM files."""
    import trustme  # a test extra

    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1", "localhost")
    files = TlsFiles(directory / "ca.pem", directory / "cert.pem", directory / "key.pem")
    ca.cert_pem.write_to_path(str(files.ca))
    cert.cert_chain_pems[0].write_to_path(str(files.cert))
    cert.private_key_pem.write_to_path(str(files.key))
    return files


@contextlib.contextmanager
def auth_server(directory: Path) -> Iterator[NatsServer]:
    """``nats-server-auth.conf``: admin, shop-writer and viewer, with ``PASSWORDS``."""
    config = ROOT / "nats-server-auth.conf"
    with NatsServer(directory / "store", config=config, env=AUTH_ENV) as server:
        yield server


@contextlib.contextmanager
def tls_server(directory: Path) -> Iterator[tuple[NatsServer, TlsFiles]]:
    """``nats-server-tls.conf`` (the auth configuration over TLS), and its certificates."""
    files = tls_files(directory / "tls")
    env = {**AUTH_ENV, "SKYFLOW_TLS_CERT": str(files.cert), "SKYFLOW_TLS_KEY": str(files.key)}
    config = ROOT / "nats-server-tls.conf"
    with NatsServer(directory / "store", config=config, env=env) as server:
        yield server, files
