"""``edit`` as kubectl edit: an edit that cannot be applied reopens the editor with the
reason on top and the edit kept; saved again unchanged, it stops and says where the copy
is; a service changed meanwhile is never overwritten, and the edit is kept in a file whose
path is printed."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

from tests.helpers import skyctl


def script(path: Path, body: str) -> dict[str, str]:
    """An editor (a shell script run on the file) and the environment that picks it."""
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(0o755)
    return {"SKYFLOW_EDITOR": str(path)}


def copy_in(text: str) -> Path:
    match = re.search(r"(/\S+\.yaml)", text)
    assert match, text
    return Path(match[1].rstrip(")"))


def test_an_invalid_edit_reopens_with_the_error_on_top(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    seen = tmp_path / "seen"
    # First save: a port that is no port. Second: keep what was shown, fix the port.
    env = script(
        tmp_path / "editor.sh",
        f'n=$(ls {seen}.* 2>/dev/null | wc -l); cp "$1" {seen}.$n\n'
        'if [ "$n" = 0 ]; then sed -i "s/targetPort: 8080/targetPort: 99999/" "$1";\n'
        'else sed -i "s/targetPort: 99999/targetPort: 9090/" "$1"; fi\n',
    )
    edited = skyctl("edit", "svc", "web", "-n", ns, url=url, env=env)
    assert edited.code == 0, edited.err
    assert edited.out == "service/web edited\n"
    first, second = (tmp_path / "seen.0").read_text(), (tmp_path / "seen.1").read_text()
    assert first.startswith("# Edit the service below") and "not applied" not in first
    # Reopened: the reason on top, in comments, then the edit as it was saved.
    top, _, rest = second.partition("\napiVersion:")
    assert "# The edit was not applied:" in top and "99999" in top
    assert all(line.startswith("#") for line in top.splitlines())
    assert "targetPort: 99999" in rest and top.count("# Edit the service below") == 1
    got = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert got["spec"]["ports"][0]["targetPort"] == 9090


def test_saving_the_error_unchanged_keeps_the_copy(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    env = script(tmp_path / "editor.sh", 'sed -i "s/type: ClusterIP/type: Nonsense/" "$1"\n')
    edited = skyctl("edit", "svc", "web", "-n", ns, url=url, env=env)
    assert edited.code != 0 and edited.out == ""
    assert "no valid change was saved" in edited.err and len(edited.err.splitlines()) == 1
    copy = copy_in(edited.err)
    assert "type: Nonsense" in copy.read_text()  # the edit is not lost
    copy.unlink()
    got = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert got["spec"]["type"] == "ClusterIP"


def test_a_conflict_says_where_the_edit_is(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    # While the editor is open, someone labels the service.
    env = script(
        tmp_path / "editor.sh",
        f"{sys.executable} -m cli label svc web tier=x -n {ns} >/dev/null\n"
        'sed -i "s/targetPort: 8080/targetPort: 7070/" "$1"\n',
    )
    edited = skyctl("edit", "svc", "web", "-n", ns, url=url, env=env)
    assert edited.code != 0 and edited.out == ""
    assert "changed since revision" in edited.err and "your edit is kept in" in edited.err
    copy = copy_in(edited.err)
    assert "targetPort: 7070" in copy.read_text()
    copy.unlink()
    got = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert got["spec"]["ports"][0]["targetPort"] == 8080  # their change stands, not ours
    assert got["metadata"]["labels"] == {"tier": "x"}
