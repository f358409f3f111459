"""Where every error leaves the CLI: one line on stderr, one exit code per kind.

Exit codes: 0 success; 1 the registry refused (not found, already exists, conflict);
2 bad input or usage; 3 the server side failed (unreachable, permission, stream);
130 interrupted.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from cli.terminal import safe
from registry.errors import InvalidInput, RegistryError, ServerError, ServiceError, TaskError

__all__ = ["EXIT_INVALID", "EXIT_REFUSED", "EXIT_SERVER", "exit_code", "fail"]

EXIT_REFUSED = 1
EXIT_INVALID = 2
EXIT_SERVER = 3


def exit_code(error: RegistryError) -> int:
    if isinstance(error, InvalidInput):
        return EXIT_INVALID
    if isinstance(error, ServiceError | TaskError):
        return EXIT_REFUSED
    if isinstance(error, ServerError):
        return EXIT_SERVER
    return EXIT_REFUSED


def fail(message: str, code: int) -> NoReturn:
    # One line, whatever the message quotes: a bad value a user typed, or a server's words.
    print(f"error: {safe(message)}", file=sys.stderr, flush=True)
    raise SystemExit(code)
