"""Asking the node agent, as ``skyctl``'s thin client does: stdlib only.

The client trusts a socket only if it is the asker's own (or root's): a socket planted
by another user at the agreed path could otherwise print whatever it liked as the
registry's answer. Any failure to get an answer (no socket, nobody listening, a broken
reply) is ``None`` with the reason, and the caller reads the server itself.
"""

from __future__ import annotations

import os
import socket
import stat

from registry.agent.wire import (
    BadMessage,
    Reply,
    Request,
    decode_reply_header,
    encode_request,
)

__all__ = ["ask", "replaceable", "trusted"]

# Generous: a listing of many services takes the agent a while to render, and a read
# that gives up just reads the server itself.
TIMEOUT_S = 60.0


def replaceable(folder: os.stat_result) -> bool:
    """Whether someone other than this user (or root) could put another file in place of
    one in ``folder``: it is theirs, or they may write it without the sticky bit."""
    return folder.st_uid not in (os.getuid(), 0) or bool(
        folder.st_mode & 0o022 and not folder.st_mode & stat.S_ISVTX
    )


def trusted(path: str) -> str | None:
    """Why the socket at ``path`` must not be used, or None: it must be a socket owned by
    this user or root, in a directory that others cannot replace it in."""
    try:
        info = os.lstat(path)
        folder = os.stat(os.path.dirname(os.path.abspath(path)))
    except OSError:
        return f"no agent socket at {path}"
    me = os.getuid()
    if not stat.S_ISSOCK(info.st_mode):
        return f"{path} is not a socket"
    if info.st_uid not in (me, 0):
        return f"{path} belongs to uid {info.st_uid}, not to you"
    if replaceable(folder):
        return f"the folder of {path} can be written by others"
    return None


def ask(path: str, request: Request, timeout: float = TIMEOUT_S) -> tuple[Reply | None, str]:
    """The agent's reply to ``request``, or None and why there is none."""
    why = trusted(path)
    if why is not None:
        return None, why
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(timeout)
        sock.connect(path)
        try:  # noqa: SIM105 (contextlib: an import the thin client does without)
            sock.sendall(encode_request(request))
        except BrokenPipeError:
            pass  # it answered without reading all of it (a refusal): read why
        received = bytearray()
        while True:
            chunk = sock.recv(1 << 16)
            if not chunk:
                break
            received += chunk
    except OSError as exc:
        return None, f"the agent at {path} did not answer ({exc.strerror or exc})"
    finally:
        sock.close()
    line, newline, rest = bytes(received).partition(b"\n")
    try:
        if not newline:
            raise BadMessage("a reply without a header")
        reply, out, err = decode_reply_header(line)
    except BadMessage as exc:
        return None, f"the agent at {path} answered {exc}"
    if len(rest) != out + err:
        return None, f"the agent at {path} sent a reply cut short"
    reply.stdout, reply.stderr = rest[:out], rest[out:]
    return reply, ""
