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
# Warnings shown per command: a namespace that fills its intake with unreadable messages
# would otherwise print one line for each of them to everyone who lists its tasks.
MAX_WARNINGS = 20


def warn_once(text: str) -> None:
    """``warning: ...`` on stderr, once per command however often it comes up (the same
    unreadable message met by several reads of one command, say)."""
    if len(_WARNED) > MAX_WARNINGS:
        return
    shown = safe(text)
    if shown not in _WARNED:
        _WARNED.add(shown)
        if len(_WARNED) > MAX_WARNINGS:
            print(
                f"warning: more than {MAX_WARNINGS} problems; the rest are not shown",
                file=sys.stderr,
                flush=True,
            )
            return
        print(f"warning: {shown}", file=sys.stderr, flush=True)


def forget_warnings() -> None:
    """A new command starts with no warning given (``cli.main.main`` calls it)."""
    _WARNED.clear()
