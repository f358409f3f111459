"""``--trust FILE``: whose signatures a reader accepts, and the PROOF column it fills.

See ``registry.services.proof`` for what each status means. Without a trust file nothing can be
``verified``; signed events show as ``signed`` (the signature holds, the key is unknown).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from registry.services.proof import Trust

__all__ = ["TRUST_ENV", "TrustOpt", "load_trust"]

TRUST_ENV = "SKYFLOW_TRUST"

TrustOpt = Annotated[
    str | None,
    typer.Option(
        "--trust",
        envvar=TRUST_ENV,
        metavar="FILE",
        help="Public keys whose signatures prove an actor: users (U...) or the accounts "
        "(A...) that issue them, one per line. Fills the PROOF column.",
    ),
]


def load_trust(path: str | None) -> Trust | None:
    if path is None:
        return None
    from registry.services.proof import Trust

    return Trust.from_file(Path(path))
