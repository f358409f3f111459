"""``skyctl edit service NAME``: the service as YAML in an editor, applied back on top of the
revision that was shown ($SKYFLOW_EDITOR, else $EDITOR, else vi)."""

from __future__ import annotations

import asyncio
import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.manifest import parse_documents, read_text
from cli.options import NamespaceOpt
from cli.parse import parse_name
from cli.render import service_object, to_yaml
from cli.verbs import register, verb_app
from registry.errors import InvalidInput

if TYPE_CHECKING:
    from registry.services.decisions import Applied
    from registry.services.projection import ServiceRecord

__all__ = ["edit_app"]

edit_app = verb_app("Edit a resource in your editor.")


def editor_command() -> list[str]:
    text = os.environ.get("SKYFLOW_EDITOR") or os.environ.get("EDITOR") or "vi"
    try:
        command = shlex.split(text)
    except ValueError as exc:
        raise InvalidInput("editor", text, str(exc)) from None
    if not command:
        raise InvalidInput("editor", text, "it names no program")
    return command


@connection_options
def edit_service(
    name: Annotated[str, typer.Argument(metavar="NAME", help="Service name.", show_default=False)],
    namespace: NamespaceOpt = "default",
    *,
    conn: Connection,
) -> None:
    """Edit a service as YAML; saved changes are applied if no one changed it meanwhile.

    Example:  EDITOR=nano skyctl edit service web -n shop
    """
    namespace, name = parse_name(namespace, "namespace"), parse_name(name)
    command = editor_command()

    async def read() -> ServiceRecord:
        async with await conn.open(writes=True) as registry:
            record = await registry.get(namespace, name)
            await registry.prover(None).place([record])  # for createdByProof
            return record

    record = asyncio.run(read())
    shown = to_yaml(service_object(record)) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yaml", prefix=f"skyctl-{name}-", delete=False
    ) as tmp:
        tmp.write(shown)
    path = Path(tmp.name)
    try:
        status = subprocess.call([*command, str(path)])
    except OSError as exc:
        path.unlink(missing_ok=True)
        raise InvalidInput("editor", command[0], exc.strerror or str(exc)) from None
    if status != 0:
        raise InvalidInput(
            "editor",
            command[0],
            f"exited with status {status}; nothing applied (your copy: {path})",
        )
    try:
        edited = read_text(path, "edited file")
    except InvalidInput as exc:
        kept = " (your copy is kept)" if path.is_file() else ""
        raise InvalidInput(exc.what, exc.value, f"{exc.reason}; nothing applied{kept}") from None
    if edited == shown:
        path.unlink(missing_ok=True)
        print("Edit cancelled, no changes made.", file=sys.stderr)
        return
    try:
        manifests = parse_documents(edited, str(path), namespace=namespace)
        if len(manifests) != 1 or manifests[0].service.name != name:
            raise InvalidInput("manifest", str(path), f"it must describe service {name} only")
    except InvalidInput as exc:
        raise InvalidInput(exc.what, exc.value, f"{exc.reason} (your copy is kept)") from None
    manifest = manifests[0]
    revision = manifest.resource_version or record.seq

    async def apply() -> Applied:
        async with await conn.open(writes=True) as registry:
            return await registry.apply(manifest.service, expected_revision=revision)

    done = asyncio.run(apply())
    path.unlink(missing_ok=True)
    print(f"service/{name} {'edited' if done.action == 'configured' else done.action}")


register(edit_app, edit_service, short_help="Edit a service as YAML in your editor.")
