"""Text on its way to a terminal, made harmless.

Whatever skyctl prints may come from the log or the server, where anyone with write access
could have put an escape sequence (to recolour, move the cursor or rewrite a line) or a
newline (to forge a table row or a second error line). Every character that is not
printable is shown as its Python escape instead, so ``\\x1b[31m`` appears as written.
"""

from __future__ import annotations

import sys

__all__ = ["forget_warnings", "safe", "warn_once"]


def safe(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


_WARNED: set[str] = set()


def warn_once(text: str) -> None:
    """``warning: ...`` on stderr, once per command however often it comes up (the same
    unreadable message met by several reads of one command, say)."""
    shown = safe(text)
    if shown not in _WARNED:
        _WARNED.add(shown)
        print(f"warning: {shown}", file=sys.stderr, flush=True)


def forget_warnings() -> None:
    """A new command starts with no warning given (``cli.main.main`` calls it)."""
    _WARNED.clear()
