"""Changing a service in place, from manifests and from the command line, the way
kubectl users do it, on a real server."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from events import Service, ServiceUpdated
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.services.projection import Change
from registry.services.watch import Snapshot
from registry.services.when import AtSequence
from tests.helpers import last_seq, skyctl, stream_last_seq


def manifest(ns: str, name: str, port: int = 80, target: int = 8080, **extra: object) -> str:
    doc = {
        "apiVersion": "skyflow.io/v1",
        "kind": "Service",
        "metadata": {"name": name, "namespace": ns, **extra.pop("metadata", {})},  # type: ignore[dict-item]
        "spec": {
            "type": "ClusterIP",
            "selector": {"app": name},
            "ports": [{"port": port, "targetPort": target, "protocol": "TCP"}],
            **extra,
        },
    }
    return yaml.safe_dump(doc)


def apply(url: str, text: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")} | {"NATS_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "cli", "apply", "-f", "-", *args],
        input=text,
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )


def test_apply_creates_configures_and_leaves_alone(url: str, ns: str) -> None:
    assert apply(url, manifest(ns, "web")).stdout == "service/web created\n"
    assert apply(url, manifest(ns, "web")).stdout == "service/web unchanged\n"
    before = last_seq(url)
    assert apply(url, manifest(ns, "web", target=9090)).stdout == "service/web configured\n"
    assert last_seq(url) == before + 1
    history = skyctl("history", "svc", "web", "-n", ns, url=url)
    assert history.lines[-1].split()[4] == "ServiceUpdated"
    assert history.lines[-1].endswith("ports: 80:8080/TCP -> 80:9090/TCP")
    got = yaml.safe_load(skyctl("get", "svc", "web", "-n", ns, "-o", "yaml", url=url).out)
    created = json.loads(skyctl("history", "svc", "web", "-n", ns, "-o", "json", url=url).out)[0]
    assert got["metadata"]["uid"] == created["event"]["id"]  # the uid survives the update
    assert got["metadata"]["resourceVersion"] == str(before + 1)
    assert got["spec"]["ports"][0]["targetPort"] == 9090


def test_get_yaml_applied_back_writes_nothing(url: str, ns: str) -> None:
    assert (
        skyctl("create", "svc", "rt", "-n", ns, "-p", "80:8080", "--labels", "team=a", url=url).code
        == 0
    )
    shown = skyctl("get", "svc", "rt", "-n", ns, "-o", "yaml", url=url).out
    before = last_seq(url)
    result = apply(url, shown)
    assert result.stdout == "service/rt unchanged\n", result.stderr
    assert last_seq(url) == before


def test_a_stale_resource_version_is_refused_and_writes_nothing(url: str, ns: str) -> None:
    apply(url, manifest(ns, "old"))
    stale = manifest(ns, "old", target=1, metadata={"resourceVersion": "1"})
    apply(url, manifest(ns, "old", target=2))  # someone else changes it
    before = last_seq(url)
    result = apply(url, stale)
    assert result.returncode == 1
    assert "changed since revision 1" in result.stderr and result.stderr.count("\n") == 1
    assert last_seq(url) == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("apiVersion: skyflow.io/v1\nkind: Pod\nmetadata: {name: x}\n", "kind"),
        ("apiVersion: skyflow.io/v1\nkind: Service\nmetadata: {}\n", "metadata.name"),
        (
            "apiVersion: skyflow.io/v1\nkind: Service\nmetadata: {name: x}\nspec: {color: red}\n",
            "spec.color: unknown field",
        ),
        ("apiVersion: skyflow.io/v1\nkind: Service\nmetadata: {name: 'a b'}\n", "metadata.name"),
        ("kind: Service\n  bad: [indent\n", "line"),
    ],
    ids=["wrong-kind", "no-name", "unknown-field", "bad-name", "not-yaml"],
)
def test_a_bad_manifest_is_one_line_naming_file_document_and_field(
    url: str, ns: str, tmp_path: Path, text: str, message: str
) -> None:
    good = manifest(ns, "fine")
    path = tmp_path / "mixed.yaml"
    path.write_text(good + "---\n" + text)  # a good document before the bad one
    before = last_seq(url)
    result = skyctl("apply", "-f", str(path), url=url)
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert str(path) in result.err and message in result.err
    assert "document 2" in result.err or "not-yaml" in message or "line" in message
    assert last_seq(url) == before  # nothing written from that file


def test_files_directories_lists_stdin_and_the_other_verbs(
    url: str, ns: str, tmp_path: Path
) -> None:
    folder = tmp_path / "services"
    folder.mkdir()
    (folder / "a.yaml").write_text(manifest(ns, "a") + "---\n" + manifest(ns, "b"))
    (folder / "c.json").write_text(json.dumps(yaml.safe_load(manifest(ns, "c"))))
    (folder / "notes.txt").write_text("not a manifest")
    listing = {
        "apiVersion": "skyflow.io/v1",
        "kind": "List",
        "items": [yaml.safe_load(manifest(ns, "d"))],
    }
    (tmp_path / "list.yaml").write_text(yaml.safe_dump(listing))
    result = skyctl("apply", "-f", str(folder), "-f", str(tmp_path / "list.yaml"), url=url)
    assert result.code == 0, result.err
    assert result.lines == [f"service/{n} created" for n in "abcd"]
    again = skyctl("create", "-f", str(folder), url=url)
    assert again.code == 1 and "already exists" in again.err
    dry = skyctl("delete", "-f", str(folder), "--dry-run", url=url)
    assert dry.lines == [f"service/{n} deleted (dry run)" for n in "abc"]
    assert [r.split()[0] for r in skyctl("get", "svc", "-n", ns, url=url).lines[1:]] == list("abcd")
    gone = skyctl("delete", "-f", str(folder), url=url)
    assert gone.lines == [f"service/{n} deleted" for n in "abc"]
    assert skyctl("create", "-f", str(folder), url=url).code == 0


def test_dry_runs_write_nothing(url: str, ns: str) -> None:
    before = last_seq(url)
    made = skyctl("create", "svc", "dry", "-n", ns, "--dry-run", "-p", "80", url=url)
    assert made.out == "service/dry created (dry run)\n"
    assert apply(url, manifest(ns, "dry"), "--dry-run").stdout.splitlines() == [
        "service/dry created (dry run)",
        "  type: <none> -> ClusterIP",
        "  selector: <none> -> app=dry",
        "  ports: <none> -> 80:8080/TCP",
    ]
    assert last_seq(url) == before
    assert skyctl("delete", "svc", "dry", "-n", ns, "--dry-run", url=url).code == 1  # not there


def test_label_edit_describe_and_events_for(url: str, ns: str, tmp_path: Path) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    assert skyctl("label", "svc", "web", "tier=front", "-n", ns, url=url).out == (
        "service/web labeled\n"
    )
    refused = skyctl("label", "svc", "web", "tier=back", "-n", ns, url=url)
    assert refused.code == 2 and "--overwrite is false" in refused.err
    assert (
        skyctl("label", "svc", "web", "tier-", "-n", ns, url=url).out == "service/web unlabeled\n"
    )
    editor = tmp_path / "editor.sh"
    editor.write_text('#!/bin/sh\nsed -i "s/targetPort: 8080/targetPort: 9999/" "$1"\n')
    editor.chmod(0o755)
    edited = skyctl("edit", "svc", "web", "-n", ns, url=url, env={"SKYFLOW_EDITOR": str(editor)})
    assert edited.out == "service/web edited\n", edited.err
    noop = tmp_path / "noop.sh"
    noop.write_text("#!/bin/sh\ntrue\n")
    noop.chmod(0o755)
    cancelled = skyctl("edit", "svc", "web", "-n", ns, url=url, env={"SKYFLOW_EDITOR": str(noop)})
    assert cancelled.code == 0 and "no changes" in cancelled.err
    described = skyctl("describe", "svc", "web", "-n", ns, url=url)
    assert described.code == 0, described.err
    text = described.out
    assert "Name:" in text and "TargetPort:       9999/TCP" in text and "Revision:" in text
    assert "ports: 80:8080/TCP -> 80:9999/TCP" in text
    assert "labels: <none> -> tier=front" in text and "labels: tier=front -> <none>" in text
    events = skyctl("events", "-n", ns, "--for", "service/web", url=url)
    assert [line.split()[4] for line in events.lines[1:]] == [
        "ServiceCreated",
        "ServiceUpdated",
        "ServiceUpdated",
        "ServiceUpdated",
    ]
    details = [line.rsplit(" labels=", 1)[-1] for line in events.lines[1:3]]
    assert "labels=" not in events.lines[1] and details[1] == "tier=front"


async def test_an_update_is_one_modified_change_everywhere(url: str, ns: str) -> None:
    async with await Registry.connect(url) as registry:
        created = await registry.create(Service(namespace=ns, name="w", selector={"a": "1"}))
        seen: list[Snapshot | Change] = []
        ready = asyncio.Event()

        async def watcher() -> None:
            async for item in registry.watch(ns):
                seen.append(item)
                ready.set()

        task = asyncio.create_task(watcher())
        await asyncio.wait_for(ready.wait(), 10)
        async with registry.subscribe(ns, start="beginning", durable=f"d-{ns}") as sub:
            changed = Service(namespace=ns, name="w", selector={"a": "2"})
            done = await registry.apply(changed)
            assert done.action == "configured" and done.record is not None
            kinds = []
            async for change in sub.changes():
                kinds.append((change.kind, change.record.service.selector))
                if len(kinds) == 2:
                    break
        assert kinds == [("ADDED", {"a": "1"}), ("MODIFIED", {"a": "2"})]
        for _ in range(50):
            if len(seen) >= 2:
                break
            await asyncio.sleep(0.1)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        modified = seen[1]
        assert isinstance(modified, Change) and modified.kind == "MODIFIED"
        assert modified.record.event_id == created.event_id  # same uid
        assert isinstance(modified.event, ServiceUpdated)
        # And the past: before the update, and after it.
        then = await registry.at(_seq(created.seq), ns, "w")
        assert then.projection.select()[0].service.selector == {"a": "1"}
        now = await registry.at(_seq(done.record.seq), ns, "w")
        assert now.projection.select()[0].service.selector == {"a": "2"}


def _seq(seq: int) -> AtSequence:
    return AtSequence(seq)


def test_twelve_concurrent_applies_each_sit_on_the_revision_they_read(
    fresh_server: NatsServer, ns: str, tmp_path: Path
) -> None:
    # A server of its own: `audit verify` checks the whole log, and other tests poison
    # the shared one on purpose.
    url = fresh_server.url
    assert apply(url, manifest(ns, "hot")).returncode == 0
    env = {k: v for k, v in os.environ.items() if not k.startswith("NATS_")} | {"NATS_URL": url}
    files = []
    for target in range(9000, 9012):
        path = tmp_path / f"hot-{target}.yaml"
        path.write_text(manifest(ns, "hot", target=target))
        files.append(path)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "cli", "apply", "-f", str(path)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for path in files
    ]
    outputs = [proc.communicate(timeout=60) for proc in procs]
    codes = [proc.returncode for proc in procs]
    assert all(code in (0, 1) for code in codes), outputs
    configured = [out for out, _ in outputs if out == "service/hot configured\n"]
    items = json.loads(skyctl("history", "svc", "hot", "-n", ns, "-o", "json", url=url).out)
    updates = [i for i in items if i["event"]["type"] == "ServiceUpdated"]
    assert len(updates) == len(configured) >= 1
    # Each update was written on top of the revision its writer read: the chain holds.
    audit = skyctl("audit", "verify", url=url)
    assert audit.code == 0, audit.out + audit.err


async def test_applying_a_thousand_services_goes_through_the_bulk_path(
    url: str, ns: str, tmp_path: Path
) -> None:
    docs = "---\n".join(manifest(ns, f"s{i}", port=80 + i % 7) for i in range(1000))
    path = tmp_path / "many.yaml"
    path.write_text(docs)
    before = await stream_last_seq(url)
    result = await asyncio.to_thread(skyctl, "apply", "-f", str(path), url=url, timeout=120)
    assert result.code == 0, result.err
    assert len(result.lines) == 1000 and {line.split()[1] for line in result.lines} == {"created"}
    assert await stream_last_seq(url) == before + 2 * 1000  # each service and its cluster IP
    again = await asyncio.to_thread(skyctl, "apply", "-f", str(path), url=url, timeout=120)
    assert {line.split()[1] for line in again.lines} == {"unchanged"}
    assert await stream_last_seq(url) == before + 2 * 1000  # each service and its cluster IP


def named_ports_manifest(ns: str, **port: object) -> str:
    doc = {
        "apiVersion": "skyflow.io/v1",
        "kind": "Service",
        "metadata": {"name": "named", "namespace": ns},
        "spec": {
            "selector": {"app": "named"},
            "ports": [{"name": "web", "port": 80, "targetPort": "http", **port}],
        },
    }
    return yaml.safe_dump(doc)


def test_a_named_target_port_applies_prints_and_applies_back_unchanged(url: str, ns: str) -> None:
    created = skyctl("apply", "-f", "-", url=url, stdin=named_ports_manifest(ns))
    assert created.code == 0 and created.out == "service/named created\n", created.err
    shown = skyctl("get", "svc", "named", "-n", ns, "-o", "yaml", url=url)
    assert shown.code == 0, shown.err
    (port,) = yaml.safe_load(shown.out)["spec"]["ports"]
    assert port == {"name": "web", "port": 80, "targetPort": "http", "protocol": "TCP"}
    before = last_seq(url)
    again = skyctl("apply", "-f", "-", url=url, stdin=shown.out)
    assert again.code == 0 and again.out == "service/named unchanged\n", again.err
    assert last_seq(url) == before
    described = skyctl("describe", "svc", "named", "-n", ns, url=url).out
    assert "TargetPort:       http/TCP" in described, described


@pytest.mark.parametrize(
    ("port", "message"),
    [
        ({"targetPort": "Http"}, "spec.ports[0].targetPort: 'Http' is not a port name"),
        ({"targetPort": "8080"}, "spec.ports[0].targetPort: '8080' is not a port name"),
        ({"targetPort": "h" * 16}, "spec.ports[0].targetPort: 'hhhhhhhhhhhhhhhh' is not a port"),
        ({"targetPort": 0}, "spec.ports[0].targetPort: 0 is outside 1-65535"),
        ({"targetPort": 65536}, "spec.ports[0].targetPort: 65536 is outside 1-65535"),
        ({"targetPort": True}, "spec.ports[0].targetPort: true is not a port (YAML reads yes"),
        ({"name": "x_y"}, "spec.ports[0].name: 'x_y' is not a port name"),
        ({"name": "web-"}, "spec.ports[0].name: 'web-' is not a port name"),
    ],
    ids=["upper", "digits-string", "too-long", "zero", "too-big", "yaml-on", "underscore", "dash"],
)
def test_a_bad_port_name_or_target_is_one_line_naming_the_field(
    url: str, ns: str, port: dict[str, object], message: str
) -> None:
    before = last_seq(url)
    result = skyctl("apply", "-f", "-", url=url, stdin=named_ports_manifest(ns, **port))
    assert result.code == 2 and result.err.count("\n") == 1, result.err
    assert result.err.startswith('error: invalid manifest "<stdin>": ' + message), result.err
    assert "constrained" not in result.err and "valid integer" not in result.err
    assert last_seq(url) == before
