"""Text on its way to a terminal, made harmless.

Whatever skyctl prints may come from the log or the server, where anyone with write access
could have put an escape sequence (to recolour, move the cursor or rewrite a line) or a
newline (to forge a table row or a second error line). Every character that is not
printable is shown as its Python escape instead, so ``\\x1b[31m`` appears as written.
"""

from __future__ import annotations

__all__ = ["safe"]


def safe(text: str) -> str:
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)
