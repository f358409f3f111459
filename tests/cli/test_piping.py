"""kubectl's piping habits through the real CLI on a real server: ``TYPE/NAME`` wherever a
service name is, several names at once, ``get -o name`` fed to ``delete`` as xargs would,
``-l`` and ``--all`` on ``delete`` and ``label``, ``describe`` without a name."""

from __future__ import annotations

import pytest

from tests.helpers import Result, last_seq, skyctl


def create(url: str, ns: str, name: str, *flags: str) -> None:
    result = skyctl("create", "service", name, "-n", ns, "-p", "80", *flags, url=url)
    assert result.code == 0, result.err


def names(url: str, ns: str) -> list[str]:
    result = skyctl("get", "svc", "-n", ns, "-o", "name", url=url)
    assert result.code == 0, result.err
    return result.lines


def labels(url: str, ns: str, name: str) -> str:
    result = skyctl("get", "svc", name, "-n", ns, "-o", "jsonpath={.metadata.labels}", url=url)
    assert result.code == 0, result.err
    return result.out


def refused(result: Result, *words: str) -> None:
    """One line naming what is wrong, exit 2."""
    assert result.code == 2, (result.out, result.err)
    assert len(result.err.strip().splitlines()) == 1, result.err
    for word in words:
        assert word in result.err


# -- TYPE/NAME and several names ------------------------------------------------------------


@pytest.mark.parametrize("ref", ["svc/web", "service/web", "services/web"])
def test_type_slash_name_gets_the_service(url: str, ns: str, ref: str) -> None:
    create(url, ns, "web")
    result = skyctl("get", ref, "-n", ns, "-o", "name", url=url)
    assert (result.code, result.out) == (0, "service/web\n"), result.err
    # ...and as a name after the noun.
    result = skyctl("get", "svc", ref, "-n", ns, "-o", "name", url=url)
    assert (result.code, result.out) == (0, "service/web\n"), result.err


def test_type_slash_name_for_describe_label_and_history(url: str, ns: str) -> None:
    create(url, ns, "web")
    described = skyctl("describe", "svc/web", "-n", ns, url=url)
    assert described.code == 0, described.err
    assert described.lines[0].split() == ["Name:", "web"]
    labeled = skyctl("label", "svc/web", "tier=front", "-n", ns, url=url)
    assert (labeled.code, labeled.out) == (0, "service/web labeled\n"), labeled.err
    assert labels(url, ns, "web") == '{"tier":"front"}'
    history = skyctl("history", "service/web", "-n", ns, url=url)
    assert history.code == 0, history.err
    assert len(history.lines) == 3  # header, created, labeled


def test_several_names_are_got_in_the_order_given(url: str, ns: str) -> None:
    for name in ("a", "b", "c"):
        create(url, ns, name)
    result = skyctl("get", "svc", "c", "a", "-n", ns, "-o", "name", url=url)
    assert (result.code, result.lines) == (0, ["service/c", "service/a"]), result.err
    # One missing: the others are printed, the missing one named, exit 1.
    result = skyctl("get", "svc", "a", "nope", "b", "-n", ns, "-o", "name", url=url)
    assert result.code == 1
    assert result.lines == ["service/a", "service/b"]
    assert result.err == f'error: service "nope" not found in namespace "{ns}"\n'


def test_get_o_name_piped_into_delete_as_xargs_would(url: str, ns: str) -> None:
    for name in ("a", "b", "c"):
        create(url, ns, name)
    listed = names(url, ns)
    assert listed == ["service/a", "service/b", "service/c"]
    # `skyctl get svc -o name | xargs skyctl delete -n NS`: no noun, TYPE/NAME arguments.
    result = skyctl("delete", *listed, "-n", ns, url=url)
    assert result.code == 0, result.err
    assert result.lines == ["service/a deleted", "service/b deleted", "service/c deleted"]
    assert names(url, ns) == []


def test_delete_several_names_with_a_noun(url: str, ns: str) -> None:
    for name in ("a", "b", "c"):
        create(url, ns, name)
    result = skyctl("delete", "svc", "a", "service/c", "-n", ns, url=url)
    assert (result.code, result.lines) == (0, ["service/a deleted", "service/c deleted"])
    assert names(url, ns) == ["service/b"]


@pytest.mark.parametrize("verb", ["get", "delete", "describe", "label"])
def test_a_type_that_is_not_a_service_is_one_line_naming_it(url: str, ns: str, verb: str) -> None:
    create(url, ns, "web")
    before = last_seq(url)
    refused(skyctl(verb, "pod/web", "-n", ns, url=url), '"pod"')
    # After the noun too.
    extra = ["k=v"] if verb == "label" else []
    refused(skyctl(verb, "svc", "pod/web", *extra, "-n", ns, url=url), '"pod"')
    assert last_seq(url) == before


# -- -l and --all on delete and label ---------------------------------------------------------


def test_delete_by_selector_and_all(url: str, ns: str) -> None:
    create(url, ns, "a", "--labels", "tier=front")
    create(url, ns, "b", "--labels", "tier=front")
    create(url, ns, "c", "--labels", "tier=back")
    create(url, ns, "d")
    dry = skyctl("delete", "svc", "-l", "tier=front", "--dry-run", "-n", ns, url=url)
    assert dry.lines == ["service/a deleted (dry run)", "service/b deleted (dry run)"]
    result = skyctl("delete", "svc", "-l", "tier=front", "-n", ns, url=url)
    assert (result.code, result.lines) == (0, ["service/a deleted", "service/b deleted"])
    assert names(url, ns) == ["service/c", "service/d"]
    nothing = skyctl("delete", "svc", "-l", "tier in (nobody)", "-n", ns, url=url)
    assert (nothing.code, nothing.out) == (0, "")
    assert nothing.err == f"No resources found in {ns} namespace.\n"
    result = skyctl("delete", "svc", "--all", "-n", ns, url=url)
    assert (result.code, result.lines) == (0, ["service/c deleted", "service/d deleted"])
    assert names(url, ns) == []


def test_delete_refuses_names_with_a_selector_and_nothing_at_all(url: str, ns: str) -> None:
    create(url, ns, "a", "--labels", "tier=front")
    before = last_seq(url)
    refused(skyctl("delete", "svc", "a", "-l", "tier=front", "-n", ns, url=url), "tier=front")
    refused(skyctl("delete", "svc", "a", "--all", "-n", ns, url=url), '"a"', "--all")
    refused(skyctl("delete", "svc", "-n", ns, url=url), "--all")
    refused(skyctl("delete", "svc", "-l", "tier in (", "-n", ns, url=url), "tier in (")
    assert last_seq(url) == before


def test_label_by_selector_all_and_several_names(url: str, ns: str) -> None:
    create(url, ns, "a", "--labels", "tier=front")
    create(url, ns, "b", "--labels", "tier=front")
    create(url, ns, "c", "--labels", "tier=back")
    result = skyctl("label", "svc", "-l", "tier=front", "team=t1", "-n", ns, url=url)
    assert (result.code, result.lines) == (0, ["service/a labeled", "service/b labeled"])
    assert labels(url, ns, "c") == '{"tier":"back"}'
    result = skyctl("label", "svc", "--all", "owner=me", "-n", ns, url=url)
    assert result.lines == ["service/a labeled", "service/b labeled", "service/c labeled"]
    result = skyctl("label", "svc", "a", "svc/c", "owner-", "-n", ns, url=url)
    assert (result.code, result.lines) == (0, ["service/a unlabeled", "service/c unlabeled"])
    assert labels(url, ns, "a") == '{"team":"t1","tier":"front"}'
    assert labels(url, ns, "b") == '{"owner":"me","team":"t1","tier":"front"}'


def test_label_refuses_before_writing(url: str, ns: str) -> None:
    create(url, ns, "a")
    before = last_seq(url)
    refused(skyctl("label", "svc", "a", "-n", ns, url=url), '"a"', "KEY=VALUE")
    refused(skyctl("label", "svc", "a", "-l", "x=y", "k=v", "-n", ns, url=url), "x=y")
    refused(skyctl("label", "svc", "--all", "b@d=v", "-n", ns, url=url), "b@d")
    missing = skyctl("label", "svc", "a", "nope", "k=v", "-n", ns, url=url)
    assert missing.code == 1 and '"nope" not found' in missing.err
    assert last_seq(url) == before  # no service labeled when one of them is missing


# -- describe without a name ------------------------------------------------------------------


def test_describe_without_a_name_describes_every_service(url: str, ns: str) -> None:
    create(url, ns, "a", "--labels", "tier=front")
    create(url, ns, "b")
    result = skyctl("describe", "service", "-n", ns, url=url)
    assert result.code == 0, result.err
    described = [line.split()[1] for line in result.lines if line.startswith("Name:")]
    assert described == ["a", "b"]
    assert "" in result.lines  # a blank line between two
    picked = skyctl("describe", "svc", "-l", "tier=front", "-n", ns, url=url)
    assert [line for line in picked.lines if line.startswith("Name:")] == ["Name:             a"]
    empty = skyctl("describe", "svc", "-n", f"{ns}-empty", url=url)
    assert (empty.code, empty.out) == (0, "")
    assert empty.err == f"No resources found in {ns}-empty namespace.\n"


# -- get namespaces ---------------------------------------------------------------------------


def test_get_namespaces_lists_those_with_live_services(url: str, ns: str) -> None:
    create(url, ns, "a")
    create(url, f"{ns}-b", "a")
    table = skyctl("get", "namespaces", url=url)
    assert table.code == 0, table.err
    assert table.lines[0].split() == ["NAME", "STATUS", "AGE"]
    rows = {line.split()[0]: line.split()[1:] for line in table.lines[1:]}
    assert rows[ns][0] == rows[f"{ns}-b"][0] == "Active"
    named = skyctl("get", "ns", ns, f"{ns}-b", "-o", "name", url=url)
    assert named.lines == [f"namespace/{ns}", f"namespace/{ns}-b"]
    one = skyctl("get", f"namespace/{ns}", "-o", "json", url=url)
    assert one.code == 0, one.err
    assert '"kind": "Namespace"' in one.out and f'"name": "{ns}"' in one.out
    # A namespace whose last service is deleted is no longer in use.
    assert skyctl("delete", "svc", "a", "-n", f"{ns}-b", url=url).code == 0
    gone = skyctl("get", "ns", f"{ns}-b", url=url)
    assert gone.code == 1 and f'"{ns}-b"' in gone.err and gone.out == ""
    assert f"{ns}-b" not in skyctl("get", "ns", "-o", "name", url=url).out


# -- --dry-run=client|server|none ---------------------------------------------------------------


@pytest.mark.parametrize("mode", ["client", "server"])
def test_dry_run_client_and_server_write_nothing(url: str, ns: str, mode: str) -> None:
    create(url, ns, "a")
    before = last_seq(url)
    flag = f"--dry-run={mode}"
    made = skyctl("create", "svc", "b", "-n", ns, flag, url=url)
    assert (made.code, made.out) == (0, "service/b created (dry run)\n"), made.err
    gone = skyctl("delete", "svc", "a", "-n", ns, flag, url=url)
    assert (gone.code, gone.out) == (0, "service/a deleted (dry run)\n"), gone.err
    labeled = skyctl("label", "svc", "a", "k=v", "-n", ns, flag, url=url)
    assert (labeled.code, labeled.out) == (0, "service/a labeled (dry run)\n"), labeled.err
    assert last_seq(url) == before
    assert names(url, ns) == ["service/a"]


def test_dry_run_none_does_it_and_a_bad_mode_is_refused(url: str, ns: str) -> None:
    made = skyctl("create", "svc", "a", "-n", ns, "--dry-run=none", url=url)
    assert (made.code, made.out) == (0, "service/a created\n"), made.err
    before = last_seq(url)
    refused(skyctl("create", "svc", "b", "-n", ns, "--dry-run=maybe", url=url), '"maybe"')
    assert last_seq(url) == before
    plain = skyctl("delete", "svc", "a", "-n", ns, "--dry-run", url=url)
    assert plain.out == "service/a deleted (dry run)\n"


# -- create --dry-run -o yaml | apply -f - --------------------------------------------------


def test_create_dry_run_yaml_piped_into_apply_creates_it(url: str, ns: str) -> None:
    printed = skyctl(
        "create", "svc", "web", "-n", ns, "-s", "app=web", "-p", "80:8080",
        "--labels", "tier=front", "--dry-run=client", "-o", "yaml", url=url,
    )  # fmt: skip
    assert printed.code == 0, printed.err
    assert names(url, ns) == []
    assert "resourceVersion" not in printed.out  # not stored: no revision to apply on top of
    applied = skyctl("apply", "-f", "-", url=url, stdin=printed.out)
    assert (applied.code, applied.out) == (0, "service/web created\n"), applied.err
    got = skyctl("get", "svc", "web", "-n", ns, "-o", "jsonpath={.spec.ports[0].targetPort} "
                 "{.metadata.labels.tier} {.spec.selector.app}", url=url)  # fmt: skip
    assert got.out == "8080 front web"
    again = skyctl("apply", "-f", "-", url=url, stdin=printed.out)
    assert (again.code, again.out) == (0, "service/web unchanged\n"), again.err


def test_revision_zero_creates_only(url: str, ns: str) -> None:
    """A manifest saying resourceVersion 0 (a service not stored yet) creates it, and is
    refused, truthfully, once the service exists."""
    text = (
        "apiVersion: skyflow.io/v1\nkind: Service\n"
        f"metadata:\n  name: web\n  namespace: {ns}\n  resourceVersion: '0'\n"
        "spec:\n  ports:\n  - port: 80\n"
    )
    made = skyctl("apply", "-f", "-", url=url, stdin=text)
    assert (made.code, made.out) == (0, "service/web created\n"), made.err
    before = last_seq(url)
    again = skyctl("apply", "-f", "-", url=url, stdin=text)
    assert again.code == 1
    assert again.err == f'error: service "web" already exists in namespace "{ns}"\n'
    assert last_seq(url) == before


def test_a_stale_revision_says_whether_the_service_ever_existed(url: str, ns: str) -> None:
    def at(name: str, revision: int) -> str:
        return (
            "apiVersion: skyflow.io/v1\nkind: Service\n"
            f"metadata:\n  name: {name}\n  namespace: {ns}\n  resourceVersion: '{revision}'\n"
            "spec:\n  ports:\n  - port: 80\n"
        )

    before = last_seq(url)
    never = skyctl("apply", "-f", "-", url=url, stdin=at("never", 5))
    assert never.code == 1
    assert "deleted" not in never.err
    assert f'service "never" in namespace "{ns}" does not exist' in never.err
    assert last_seq(url) == before
    create(url, ns, "gone")
    revision = int(
        skyctl("get", "svc", "gone", "-n", ns, "-o", "jsonpath={.metadata.resourceVersion}",
               url=url).out
    )  # fmt: skip
    assert skyctl("delete", "svc", "gone", "-n", ns, url=url).code == 0
    deleted = skyctl("apply", "-f", "-", url=url, stdin=at("gone", revision))
    assert deleted.code == 1
    assert f"changed since revision {revision} (it was deleted)" in deleted.err
