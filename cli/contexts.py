"""The nats CLI's contexts (ADR-21), read and written as the nats CLI does, and the default
namespace ``skyctl`` keeps beside each.

A context is ``$XDG_CONFIG_HOME/nats/context/<name>.json`` (``~/.config`` without
``XDG_CONFIG_HOME``); ``nats/context.txt`` names the selected one, and
``nats/previous-context.txt`` the one selected before it. Which context a command uses:
``--context NAME``, else ``$SKYFLOW_CONTEXT``, else ``$NATS_CONTEXT`` (the nats CLI's
variable), else the selected one, else none. A context's settings rank below flags and
the environment and above the defaults (``cli/connection.py``).

What each field of a context becomes (the names are natscli's, ``natscontext``):

- ``url`` the server, ``user``/``password``, ``token``, ``creds`` (a creds file), ``nkey`` (a
  seed file), ``ca``, ``cert``/``key`` (a client certificate) and ``inbox_prefix``: used,
  file names with ``~`` (and, for ``creds``, ``$VARIABLES``) expanded as natscli does;
- ``description``, ``color_scheme``: for people, nothing to do;
- anything else natscli knows (``jetstream_domain``, ``jetstream_api_prefix``, ``nsc``,
  ``socks_proxy``, ``user_jwt``, ``tls_first``, the Windows certificate store): refused in
  one line naming the field when set, since ``skyctl`` cannot honour it and going ahead
  without it would talk to another server, domain or identity than the context means.

The namespace lives in ``skyctl``'s own file, ``$XDG_CONFIG_HOME/skyflow/contexts/<name>.json``
(``{"namespace": "shop"}``), not in the nats CLI's: natscli reads its files leniently (Go's
``json.Unmarshal`` ignores unknown keys) but writes back only the fields of its struct
(``nats context edit``, ``nats context save``), so a key of ours there would vanish the next
time the user edits the context with ``nats``. Writing the nats CLI's file, ``skyctl`` keeps
every key it does not set, unknown ones included, and replaces the file atomically with
mode 0600, as natscli writes it.

Secrets (``password``, ``token``, a URL's password) are never printed from here: errors
name the context, the file and the field, never a value.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cli import hosted
from registry.errors import InvalidInput

__all__ = [
    "CONTEXT_ENV",
    "NATS_CONTEXT_ENV",
    "NatsContext",
    "chosen",
    "chosen_name",
    "config_home",
    "context_dir",
    "known",
    "load",
    "save",
    "select",
    "selected",
]

CONTEXT_ENV = hosted.CONTEXT_ENV
NATS_CONTEXT_ENV = hosted.NATS_CONTEXT_ENV

# A context's field -> the Connection field it sets.
CONNECTION_FIELDS = {
    "url": "server",
    "user": "user",
    "password": "password",
    "token": "token",
    "creds": "creds",
    "nkey": "nkey",
    "ca": "tlsca",
    "cert": "tlscert",
    "key": "tlskey",
    "inbox_prefix": "inbox_prefix",
}
_FILES = frozenset({"creds", "nkey", "ca", "cert", "key"})
_FOR_PEOPLE = frozenset({"name", "description", "color_scheme"})
# Set, these change where or as whom the nats CLI connects; skyctl cannot do them.
_UNSUPPORTED = {
    "jetstream_domain": "skyctl does not use JetStream domains: connect to the domain's "
    "own servers instead",
    "jetstream_api_prefix": "skyctl does not use a JetStream API prefix",
    "jetstream_event_prefix": "skyctl does not use a JetStream event prefix",
    "nsc": "skyctl does not look credentials up in nsc: give the creds file (creds)",
    "socks_proxy": "skyctl does not connect through a SOCKS proxy",
    "user_jwt": "skyctl does not take a bare user JWT: give a creds file (creds)",
    "tls_first": "skyctl does not do the TLS handshake first",
    "windows_cert_store": "skyctl does not read the Windows certificate store",
    "windows_cert_match_by": "skyctl does not read the Windows certificate store",
    "windows_cert_match": "skyctl does not read the Windows certificate store",
    "windows_ca_certs_match": "skyctl does not read the Windows certificate store",
}
SECRET_FIELDS = frozenset({"password", "token"})


def config_home(env: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME``, else ``~/.config``, as natscli finds it."""
    return Path(hosted.config_home(os.environ if env is None else env))


def context_dir() -> Path:
    return config_home() / "nats" / "context"


def _namespace_file(name: str) -> Path:
    return Path(hosted.skyctl_context_file(name))


def _selected_file() -> Path:
    return config_home() / "nats" / "context.txt"


def _check_name(name: str, where: str = "context") -> str:
    # natscli's rule (validName), and no control characters: a name becomes a file name.
    if (
        not name
        or ".." in name
        or "/" in name
        or "\\" in name
        or any(ord(c) < 32 or c == "\x7f" for c in name)
    ):
        raise InvalidInput(where, name, "give a context's name, not a path: no '/', '\\' or '..'")
    return name


@dataclass(frozen=True)
class NatsContext:
    """One nats CLI context as its file holds it, and skyctl's namespace for it."""

    name: str
    path: Path
    settings: Mapping[str, Any] = field(default_factory=dict, repr=False)  # secrets
    namespace: str | None = None
    agent: str | None = None  # skyctl's: the node agent's socket for this context

    def text(self, key: str) -> str | None:
        """A field's value, None when unset (absent or empty); refused if not text."""
        value = self.settings.get(key)
        if value is None or value == "":
            return None
        if not isinstance(value, str):
            raise self.refuse(f"{key} must be a string in {self.path}")
        return value

    def refuse(self, reason: str) -> InvalidInput:
        return InvalidInput("context", self.name, reason)

    def connection(self) -> dict[str, str]:
        """The Connection fields this context sets; refused, naming the field, when it sets
        something skyctl cannot honour."""
        for key, why in _UNSUPPORTED.items():
            value = self.settings.get(key)
            if value not in (None, "", False, []):
                raise self.refuse(f"{key} is set in {self.path}; {why}")
        values: dict[str, str] = {}
        for key, target in CONNECTION_FIELDS.items():
            value = self.text(key)
            if value is None:
                continue
            if key in _FILES:
                value = os.path.expanduser(value)
                if key == "creds":
                    value = os.path.expandvars(value)
            values[target] = value
        return values

    @property
    def server(self) -> str | None:
        return self.text("url")

    @property
    def identity(self) -> str:
        """Who the context connects as, for a listing: a user name, or the kind of
        credential (never a secret)."""
        user = self.text("user")
        if user:
            return user
        for key, shown in (("creds", "creds"), ("nkey", "nkey"), ("token", "token")):
            value = self.text(key)
            if value:
                return f"({shown})" if key == "token" else f"({shown} {value})"
        return ""


def selected() -> str | None:
    """The name in ``context.txt``, if any (as natscli reads it: trimmed)."""
    return hosted.selected_context()


def chosen_name(flag: str | None = None) -> str | None:
    """Which context a command uses: the flag, ``$SKYFLOW_CONTEXT``, ``$NATS_CONTEXT``, the
    selected one, or none (``cli.hosted.context_name``: the thin client decides the same)."""
    return hosted.context_name(flag)


def chosen(flag: str | None = None) -> NatsContext | None:
    """The context a command uses (``chosen_name``), loaded; None when there is none."""
    name = chosen_name(flag)
    return load(name) if name else None


def known() -> list[str]:
    """Every context's name, sorted (as ``nats context ls``: ``.json`` files, not empty)."""
    try:
        entries = list(context_dir().iterdir())
    except OSError:
        return []
    names = []
    for entry in entries:
        try:
            if entry.suffix == ".json" and entry.is_file() and entry.stat().st_size > 0:
                names.append(entry.stem)
        except OSError:
            continue
    return sorted(names)


def _read_object(path: Path, name: str) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise InvalidInput("context", name, f"no such context ({path} does not exist)") from None
    except OSError as exc:
        raise InvalidInput("context", name, f"cannot read {path}: {exc.strerror}") from None
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidInput("context", name, f"{path} is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        # The position only: the text around it may be a password.
        raise InvalidInput(
            "context", name, f"{path} is not valid JSON (line {exc.lineno} column {exc.colno})"
        ) from None
    if not isinstance(data, dict):
        raise InvalidInput("context", name, f"{path} does not hold a JSON object")
    return data


def load(name: str) -> NatsContext:
    """The context ``name``: its nats CLI file, and skyctl's namespace and agent for it."""
    _check_name(name)
    path = context_dir() / f"{name}.json"
    settings = _read_object(path, name)
    kept: dict[str, str | None] = {"namespace": None, "agent": None}
    extra = _namespace_file(name)
    if extra.exists():
        found = _read_object(extra, name)
        for key in kept:
            value = found.get(key)
            if value is not None and not isinstance(value, str):
                raise InvalidInput("context", name, f"{key} must be a string in {extra}")
            kept[key] = value or None
    return NatsContext(name, path, settings, kept["namespace"], kept["agent"])


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` all at once, readable by its owner only (0600), in a
    directory only its owner can list (0700) when this makes it."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o600)  # O_CREAT's mode applies to new files only
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def save(
    name: str,
    updates: Mapping[str, str | None],
    namespace: str | None = None,
    agent: str | None = None,
) -> tuple[NatsContext, bool]:
    """Create or update the context ``name``: each of ``updates`` set (an empty value
    removes the field), every other key kept as it was; ``namespace`` and ``agent`` (""
    forgets one) in skyctl's own file. The context, and whether it is new."""
    _check_name(name)
    path = context_dir() / f"{name}.json"
    created = not path.exists()
    settings: dict[str, Any] = {} if created else _read_object(path, name)
    if created and not updates.get("url"):
        settings["url"] = "nats://127.0.0.1:4222"  # what natscli writes for a new context
    for key, value in updates.items():
        if value is None:
            continue
        if value == "":
            settings.pop(key, None)
        else:
            settings[key] = value
    try:
        _write_atomically(path, json.dumps(settings, indent=2) + "\n")
        ours = {"namespace": namespace, "agent": agent}
        if any(value is not None for value in ours.values()):
            extra = _namespace_file(name)
            kept: dict[str, Any] = _read_object(extra, name) if extra.exists() else {}
            for key, value in ours.items():
                if value:
                    kept[key] = value
                elif value is not None:
                    kept.pop(key, None)
            _write_atomically(extra, json.dumps(kept, indent=2) + "\n")
    except OSError as exc:
        raise InvalidInput("context", name, f"cannot write it: {exc.strerror}") from None
    return load(name), created


def select(name: str) -> None:
    """Make ``name`` the selected context, as ``nats context select`` does (the one it
    replaces goes to ``previous-context.txt``)."""
    _check_name(name)
    if name not in known():
        raise InvalidInput("context", name, f"no such context in {context_dir()}")
    before = selected()
    try:
        if before and before != name:
            _write_atomically(_selected_file().with_name("previous-context.txt"), before)
        _write_atomically(_selected_file(), name)
    except OSError as exc:
        raise InvalidInput("context", name, f"cannot select it: {exc.strerror}") from None
