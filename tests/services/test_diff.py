"""``skyctl diff -f`` and ``apply --dry-run``: what apply would change, in the words of
``history``'s CHANGES, with kubectl diff's exit codes (0 same, 1 different, >1 error), and
nothing written."""

from __future__ import annotations

from pathlib import Path

from tests.helpers import last_seq, skyctl


def manifest(ns: str, name: str, port: str = "8080", labels: str = "{}") -> str:
    return f"""apiVersion: skyflow.io/v1
kind: Service
metadata:
  name: {name}
  namespace: {ns}
  labels: {labels}
spec:
  type: ClusterIP
  selector: {{app: {name}}}
  ports:
  - port: 80
    targetPort: {port}
"""


def test_diff_exit_codes_and_changes_as_history_shows_them(
    url: str, ns: str, tmp_path: Path
) -> None:
    same = tmp_path / "web.yaml"
    same.write_text(manifest(ns, "web"))
    assert skyctl("apply", "-f", str(same), url=url).code == 0

    unchanged = skyctl("diff", "-f", str(same), url=url)
    assert (unchanged.code, unchanged.out, unchanged.err) == (0, "", "")

    changed = tmp_path / "changed.yaml"
    changed.write_text(manifest(ns, "web", port="9090", labels="{tier: front}"))
    before = last_seq(url)
    differs = skyctl("diff", "-f", str(changed), url=url)
    assert differs.code == 1, differs.err
    assert differs.lines == [
        "service/web configured",
        "  ports: 80:8080/TCP -> 80:9090/TCP",
        "  labels: <none> -> tier=front",
    ]
    # The same words as history's CHANGES once it is applied.
    assert skyctl("apply", "-f", str(changed), url=url).code == 0
    history = skyctl("history", "service", "web", "-n", ns, url=url)
    assert "ports: 80:8080/TCP -> 80:9090/TCP; labels: <none> -> tier=front" in history.out
    assert last_seq(url) > before

    # A new service, from standard input, beside an unchanged one: every field it sets.
    both = manifest(ns, "db") + "---\n" + changed.read_text()
    created = skyctl("diff", "-f", "-", url=url, stdin=both)
    assert created.code == 1
    assert created.lines[0] == "service/db created"
    assert "  selector: <none> -> app=db" in created.lines
    assert not any(line.startswith("service/web") for line in created.lines)


def test_diff_errors_exit_above_one_and_write_nothing(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    before = last_seq(url)
    bad = tmp_path / "bad.yaml"
    bad.write_text(manifest(ns, "web").replace("kind: Service", "kind: Pod"))
    invalid = skyctl("diff", "-f", str(bad), url=url)
    assert invalid.code == 2 and invalid.out == ""
    assert len(invalid.err.splitlines()) == 1 and "bad.yaml" in invalid.err
    missing = skyctl("diff", "-f", str(tmp_path / "nope.yaml"), url=url)
    assert missing.code == 2 and "nope.yaml" in missing.err
    # A refusal by the registry (a stale resourceVersion) is an error, not a difference.
    stale = tmp_path / "stale.yaml"
    stale.write_text(
        manifest(ns, "web").replace("  labels: {}", "  labels: {}\n  resourceVersion: '999999'")
    )
    refused = skyctl("diff", "-f", str(stale), url=url)
    assert refused.code > 1 and "changed since revision 999999" in refused.err, refused.err
    assert last_seq(url) == before


def test_apply_dry_run_prints_the_change_and_writes_nothing(
    url: str, ns: str, tmp_path: Path
) -> None:
    path = tmp_path / "web.yaml"
    path.write_text(manifest(ns, "web"))
    assert skyctl("apply", "-f", str(path), url=url).code == 0
    path.write_text(manifest(ns, "web", port="9090"))
    before = last_seq(url)
    dry = skyctl("apply", "-f", str(path), "--dry-run", url=url)
    assert dry.code == 0, dry.err
    assert dry.lines == ["service/web configured (dry run)", "  ports: 80:8080/TCP -> 80:9090/TCP"]
    assert last_seq(url) == before
    got = skyctl(
        "get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.ports[0].targetPort}", url=url
    )
    assert got.out.strip() == "8080"
    path.write_text(manifest(ns, "web"))
    same = skyctl("apply", "-f", str(path), "--dry-run", url=url)
    assert same.lines == ["service/web unchanged (dry run)"]
