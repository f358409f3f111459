"""``skyctl rollback service``: a ``ServiceUpdated`` restoring a revision's definition,
written on top of the revision read, keeping the service's addresses; ``history`` shows
what it restored and ``audit verify`` still holds."""

from __future__ import annotations

import json

import pytest

from events import Service
from registry.client import Registry
from registry.jetstream.server import NatsServer
from registry.log.port import Log
from registry.services.history import HistoryItem
from tests.helpers import last_seq, skyctl


def revisions(url: str, ns: str, name: str) -> list[dict[str, object]]:
    history = skyctl("history", "service", name, "-n", ns, "-o", "json", url=url)
    assert history.code == 0, history.err
    items: list[dict[str, object]] = json.loads(history.out)
    return items


def test_rollback_restores_the_definition_before_the_last_change(
    fresh_server: NatsServer,
) -> None:
    url = fresh_server.url
    ns = "shop"
    made = skyctl(
        "create",
        "svc",
        "web",
        "-n",
        ns,
        "-t",
        "NodePort",
        "-s",
        "app=web",
        "-p",
        "80:8080",
        url=url,
    )
    assert made.code == 0, made.err
    first = revisions(url, ns, "web")[-1]
    created_seq = first["seq"]
    assert skyctl("label", "svc", "web", "tier=front", "-n", ns, url=url).code == 0
    edit = skyctl("get", "svc", "web", "-n", ns, "-o", "yaml", url=url).out.replace(
        "targetPort: 8080", "targetPort: 9090"
    )
    assert skyctl("apply", "-f", "-", url=url, stdin=edit).code == 0
    live = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    labelled_seq = revisions(url, ns, "web")[-2]["seq"]

    done = skyctl("rollback", "service", "web", "-n", ns, url=url)
    assert done.code == 0, done.err
    after = revisions(url, ns, "web")
    last = after[-1]
    assert done.out == (
        f"service/web rolled back to revision {labelled_seq} (now revision {last['seq']}): "
        "ports: 80:9090/TCP -> 80:8080/TCP\n"
    )
    event = last["event"]
    assert isinstance(event, dict) and event["type"] == "ServiceUpdated"
    assert last["changes"] == ["ports: 80:9090/TCP -> 80:8080/TCP"]
    table = skyctl("history", "service", "web", "-n", ns, url=url)
    assert table.lines[-1].split()[4] == "ServiceUpdated"
    assert table.lines[-1].endswith("ports: 80:9090/TCP -> 80:8080/TCP")
    # Addresses and origin kept: the same cluster IP, node port and uid.
    now = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert now["spec"]["clusterIP"] == live["spec"]["clusterIP"]
    assert now["spec"]["ports"][0]["nodePort"] == live["spec"]["ports"][0]["nodePort"]
    assert now["metadata"]["uid"] == live["metadata"]["uid"]
    assert now["metadata"]["labels"] == {"tier": "front"}

    # Further back, by revision: the labels go too.
    back = skyctl("rollback", "svc", "web", "-n", ns, "--to-revision", str(created_seq), url=url)
    assert back.code == 0, back.err
    assert "labels: tier=front -> <none>" in back.out
    # The current definition again: nothing to do, nothing written.
    seq = last_seq(url)
    again = skyctl("rollback", "svc", "web", "-n", ns, "--to-revision", str(created_seq), url=url)
    assert again.code == 0 and "skipped rollback" in again.out, again.err
    assert last_seq(url) == seq

    verify = skyctl("audit", "verify", url=url)
    assert verify.code == 0, verify.out + verify.err
    assert verify.out.endswith("every link holds\n")


def test_rollback_refuses_what_it_cannot_restore(url: str, ns: str) -> None:
    assert skyctl("create", "svc", "web", "-n", ns, "-p", "80:8080", url=url).code == 0
    assert skyctl("create", "svc", "db", "-n", ns, "-p", "5432:5432", url=url).code == 0
    db_seq = revisions(url, ns, "db")[-1]["seq"]
    before = last_seq(url)

    nothing = skyctl("rollback", "svc", "web", "-n", ns, url=url)
    assert nothing.code == 1 and "no earlier definition" in nothing.err, nothing.err
    other = skyctl("rollback", "svc", "web", "-n", ns, "--to-revision", str(db_seq), url=url)
    assert other.code == 2 and f'invalid --to-revision "{db_seq}"' in other.err, other.err
    assert "not a revision of service web" in other.err
    assert len(other.err.splitlines()) == 1
    zero = skyctl("rollback", "svc", "web", "-n", ns, "--to-revision", "0", url=url)
    assert zero.code == 2
    word = skyctl("rollback", "svc", "web", "-n", ns, "--to-revision", "last", url=url)
    assert word.code == 2 and "last" in word.err

    assert last_seq(url) == before
    assert skyctl("delete", "svc", "db", "-n", ns, url=url).code == 0
    before = last_seq(url)
    deleted = skyctl("rollback", "svc", "db", "-n", ns, "--to-revision", str(db_seq), url=url)
    assert deleted.code == 1 and "was deleted" in deleted.err, deleted.err
    missing = skyctl("rollback", "svc", "nope", "-n", ns, url=url)
    assert missing.code == 1 and "not found" in missing.err
    assert last_seq(url) == before


def test_rollback_is_refused_when_the_service_moved_on_meanwhile(
    url: str, ns: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another writer's change lands between the rollback's read of the history and its
    write: the server refuses the write (it is conditional on the revision read), and the
    other writer's change stands."""
    from registry.services import history

    read = history.service_history

    async def then_someone_writes(log: Log, namespace: str, name: str) -> list[HistoryItem]:
        items = await read(log, namespace, name)
        async with await Registry.connect(url) as other:
            await other.apply(
                Service(namespace=ns, name="web", selector={"app": "c"}, labels={"tier": "x"})
            )
        return items

    assert skyctl("create", "svc", "web", "-n", ns, "-s", "app=a", url=url).code == 0
    assert skyctl("label", "svc", "web", "tier=x", "-n", ns, url=url).code == 0
    read_at = revisions(url, ns, "web")[-1]["seq"]
    monkeypatch.setattr(history, "service_history", then_someone_writes)
    refused = skyctl("rollback", "svc", "web", "-n", ns, url=url)
    monkeypatch.undo()
    assert refused.code == 1, refused.out + refused.err
    assert f"changed since revision {read_at}" in refused.err
    assert "nothing was restored" in refused.err and len(refused.err.splitlines()) == 1
    now = json.loads(skyctl("get", "svc", "web", "-n", ns, "-o", "json", url=url).out)
    assert now["spec"]["selector"] == {"app": "c"}
    assert now["metadata"]["labels"] == {"tier": "x"}
