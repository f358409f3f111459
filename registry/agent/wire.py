"""What a ``skyctl`` client and the node agent say to each other over the unix socket.

A request is one line of JSON: the command line, the environment and the working
directory the command would have run with (so the agent runs it exactly as the client
would have). A reply is one line of JSON (``status``, exit code, and the sizes of what
the command wrote), then the bytes it wrote to stdout, then those it wrote to stderr:

- ``done``: the agent ran the command; the client writes the bytes and exits with the code;
- ``direct``: the agent does not serve this command as asked (another server or user,
  a watch, a lost connection: ``why`` says which); the client runs it itself;
- ``refused``: the asker may not use this agent (``why``).

Stdlib only, and no dataclasses: the thin client pays for nothing it does not use.
Everything read here comes from the other end of a socket and is checked.
"""

from __future__ import annotations

import json

TYPE_CHECKING = False  # (typing's own import is a cost the thin client avoids)
if TYPE_CHECKING:
    from typing import Any

__all__ = [
    "MAX_REQUEST",
    "VERSION",
    "BadMessage",
    "Reply",
    "Request",
    "decode_reply_header",
    "decode_request",
    "encode_reply",
    "encode_request",
]

VERSION = 1
# A command line and an environment fit in far less; more is not a client of ours.
MAX_REQUEST = 1 << 20
STATUSES = ("done", "direct", "refused", "status")


class BadMessage(ValueError):
    """What came over the socket is not a message of this protocol."""


class Request:
    """A command to run as the client would have run it; ``status`` asks for the agent's
    state instead."""

    __slots__ = ("argv", "cwd", "env", "status")

    def __init__(
        self, argv: list[str], env: dict[str, str], cwd: str, *, status: bool = False
    ) -> None:
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.status = status


class Reply:
    """What the agent answers (see the module's docstring for ``status``)."""

    __slots__ = ("code", "info", "status", "stderr", "stdout", "why")

    def __init__(
        self,
        status: str,
        *,
        code: int = 0,
        stdout: bytes = b"",
        stderr: bytes = b"",
        why: str = "",
        info: dict[str, Any] | None = None,
    ) -> None:
        self.status = status
        self.code = code
        self.stdout = stdout
        self.stderr = stderr
        self.why = why
        self.info = info or {}


def encode_request(request: Request) -> bytes:
    body = {
        "v": VERSION,
        "argv": request.argv,
        "env": request.env,
        "cwd": request.cwd,
        "status": request.status,
    }
    # surrogateescape: arguments and variables that are not UTF-8 travel as they are.
    text = json.dumps(body, ensure_ascii=True, separators=(",", ":"))
    return text.encode("ascii") + b"\n"


def decode_request(line: bytes) -> Request:
    """A request line, checked field by field (``BadMessage`` names what is wrong)."""
    if len(line) > MAX_REQUEST:
        raise BadMessage(f"a request of more than {MAX_REQUEST} bytes")
    try:
        body = json.loads(line)
    except (ValueError, RecursionError):
        raise BadMessage("a request that is not JSON") from None
    if not isinstance(body, dict) or body.get("v") != VERSION:
        raise BadMessage(f"a request not of version {VERSION}")
    argv, env, cwd, status = body.get("argv"), body.get("env"), body.get("cwd"), body.get("status")
    if not isinstance(argv, list) or not all(isinstance(a, str) for a in argv):
        raise BadMessage("argv must be a list of strings")
    if not isinstance(env, dict) or not all(
        isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
        for k, v in env.items()
    ):
        raise BadMessage("env must map names to strings")
    if not isinstance(cwd, str) or not cwd.startswith("/") or "\0" in cwd:
        raise BadMessage("cwd must be an absolute path")
    if "\0" in "".join(argv):
        raise BadMessage("an argument holds a NUL byte")
    return Request(argv, env, cwd, status=status is True)


def encode_reply(reply: Reply) -> bytes:
    header = {
        "v": VERSION,
        "status": reply.status,
        "code": reply.code,
        "stdout": len(reply.stdout),
        "stderr": len(reply.stderr),
        "why": reply.why,
        "info": reply.info,
    }
    line = json.dumps(header, ensure_ascii=True, separators=(",", ":")).encode("ascii")
    return line + b"\n" + reply.stdout + reply.stderr


def decode_reply_header(line: bytes) -> tuple[Reply, int, int]:
    """A reply's header line: the reply without its bytes, and how many bytes of stdout
    and of stderr follow."""
    try:
        header = json.loads(line)
    except (ValueError, RecursionError):
        raise BadMessage("a reply that is not JSON") from None
    if not isinstance(header, dict) or header.get("v") != VERSION:
        raise BadMessage(f"a reply not of version {VERSION}")
    status, code, out, err = (header.get(k) for k in ("status", "code", "stdout", "stderr"))
    why, info = header.get("why", ""), header.get("info", {})
    if status not in STATUSES or not isinstance(why, str) or not isinstance(info, dict):
        raise BadMessage("a reply with an unknown status")
    for value in (code, out, err):
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 40:
            raise BadMessage("a reply with a bad exit code or size")
    assert isinstance(code, int) and isinstance(out, int) and isinstance(err, int)
    return Reply(status, code=code, why=why, info=info), out, err
