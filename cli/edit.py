"""``skyctl edit service NAME``: the service as YAML in an editor, applied back on top of the
revision that was shown ($SKYFLOW_EDITOR, else $EDITOR, else vi)."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.connection import Connection, connection_options
from cli.lifetime import run_command
from cli.manifest import parse_documents, read_text
from cli.options import NamespaceOpt
from cli.parse import parse_name
from cli.render import service_object, to_yaml
from cli.terminal import safe
from cli.verbs import register, verb_app
from registry.errors import Conflict, InvalidInput, Stale

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

    record = run_command(read())
    shown = to_yaml(service_object(record)) + "\n"
    with tempfile.NamedTemporaryFile(
        "w", suffix=".yaml", prefix=f"skyctl-{name}-", delete=False
    ) as tmp:
        tmp.write(HEADER + shown)
    path = Path(tmp.name)
    error: str | None = None  # why the last save was not applied
    opened = shown  # what the editor was last given, comments aside
    rounds = 0  # times reopened
    while True:
        edited = _run_editor(command, path)
        body = _content(edited)
        if not body:
            path.unlink(missing_ok=True)
            print("Edit cancelled, saved file was empty.", file=sys.stderr)
            return
        if body == _content(opened):
            if error is None:
                path.unlink(missing_ok=True)
                print("Edit cancelled, no changes made.", file=sys.stderr)
                return
            # Reopened with the error and saved as it was: the edit stops, kept.
            raise InvalidInput(
                "edit", f"service/{name}", f"no valid change was saved ({error}); your copy: {path}"
            )
        try:
            done = _apply(conn, edited, path, namespace, name, record.seq)
        except InvalidInput as exc:
            # Reopened with the error on top, the edit kept, as kubectl edit does; not
            # for ever: an editor that is a script makes the same mistake each time.
            rounds += 1
            if str(exc) == error or rounds > MAX_REOPENED:
                path.write_text(_with_error(_without_header(edited), str(exc)), encoding="utf-8")
                raise InvalidInput(
                    "edit", f"service/{name}", f"not applied ({exc}); your copy: {path}"
                ) from None
            error, opened = str(exc), _without_header(edited)
            path.write_text(_with_error(opened, error), encoding="utf-8")
            continue
        except (Stale, Conflict):
            # Someone changed it meanwhile: nothing is applied over their change, and the
            # edit is not lost.
            print(f"skyctl: your edit is kept in {path}", file=sys.stderr)
            raise
        path.unlink(missing_ok=True)
        print(f"service/{name} {'edited' if done.action == 'configured' else done.action}")
        return


MAX_REOPENED = 10  # then the edit stops, kept in its file
HEADER = (
    "# Edit the service below and save to apply it. Lines beginning with '#' are ignored;\n"
    "# an empty file, or one saved unchanged, cancels the edit. If the edit cannot be\n"
    "# applied, this file is reopened with the reason on top.\n"
    "#\n"
)


def _run_editor(command: list[str], path: Path) -> str:
    """The editor run on ``path`` to its end; what it saved."""
    try:
        status = subprocess.call([*command, str(path)])
    except OSError as exc:
        raise InvalidInput(
            "editor", command[0], f"{exc.strerror or exc}; nothing applied (your copy: {path})"
        ) from None
    if status != 0:
        raise InvalidInput(
            "editor",
            command[0],
            f"exited with status {status}; nothing applied (your copy: {path})",
        )
    try:
        return read_text(path, "edited file")
    except InvalidInput as exc:
        kept = f" (your copy: {path})" if path.is_file() else ""
        raise InvalidInput(exc.what, exc.value, f"{exc.reason}; nothing applied{kept}") from None


def _content(text: str) -> str:
    """What an edited file says, its comment lines left out."""
    lines = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return "\n".join(lines).strip()


def _without_header(text: str) -> str:
    """The edit without the comment block on top (the header, the last error), so that a
    reopened file carries one of each."""
    lines = text.splitlines(keepends=True)
    while lines and lines[0].lstrip().startswith("#"):
        lines.pop(0)
    return "".join(lines)


def _with_error(text: str, error: str) -> str:
    reason = "\n".join(f"# {line}" for line in safe(error).splitlines() or [""])
    return f"{HEADER}# The edit was not applied:\n{reason}\n#\n{text}"


def _apply(
    conn: Connection, edited: str, path: Path, namespace: str, name: str, shown_revision: int
) -> Applied:
    """Apply the edited manifest on top of the revision shown (InvalidInput: the edit is
    not a valid service; Stale: someone changed the service meanwhile)."""
    manifests = parse_documents(edited, str(path), namespace=namespace)
    if len(manifests) != 1 or manifests[0].service.name != name:
        raise InvalidInput("manifest", str(path), f"it must describe service {name} only")
    manifest = manifests[0]
    revision = manifest.resource_version or shown_revision

    async def apply() -> Applied:
        async with await conn.open(writes=True) as registry:
            return await registry.apply(manifest.service, expected_revision=revision)

    return run_command(apply())


register(edit_app, edit_service, short_help="Edit a service as YAML in your editor.")
