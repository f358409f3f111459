"""Writes are conditional and idempotent, enforced by the server (invariants 3 and 4)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys

import pytest

from events import Service, ServiceCreated, encode, new_event_id, subject_for, utc_now
from registry.client import Registry
from registry.jetstream import open_log
from registry.log.port import WrongLastSequence
from registry.services.decisions import Current, decide_create
from tests.helpers import last_seq, raw_publish, stream_last_seq


def test_twelve_processes_create_the_same_name_once(url: str, ns: str) -> None:
    before = last_seq(url)
    env = {**os.environ, "NATS_URL": url}
    # Twelve real skyctl processes at once; on two cores their reads and writes interleave.
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cli",
                "create",
                "service",
                "contested",
                "-n",
                ns,
                "-p",
                f"{8000 + i}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for i in range(12)
    ]
    results = [(p.wait(60), *p.communicate()) for p in procs]
    winners = [r for r in results if r[0] == 0]
    losers = [r for r in results if r[0] != 0]
    assert len(winners) == 1
    assert winners[0][1] == "service/contested created\n"
    assert len(losers) == 11
    for code, out, err in losers:
        assert code == 1 and out == ""
        assert err == f'error: service "contested" already exists in namespace "{ns}"\n'
    assert last_seq(url) == before + 2  # the one service and its cluster IP


async def test_concurrent_creates_in_one_process(registry: Registry, ns: str) -> None:
    """All twenty read "not live" before any writes, so nineteen lose at the server."""
    service = Service(namespace=ns, name="hot")
    results = await asyncio.gather(
        *(registry.create(service) for _ in range(20)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert {type(r).__name__ for r in results if isinstance(r, BaseException)} == {"AlreadyExists"}


async def test_concurrent_deletes_delete_once(registry: Registry, ns: str) -> None:
    await registry.create(Service(namespace=ns, name="doomed"))
    results = await asyncio.gather(
        *(registry.delete(ns, "doomed") for _ in range(10)), return_exceptions=True
    )
    assert sum(not isinstance(r, BaseException) for r in results) == 1
    assert {type(r).__name__ for r in results if isinstance(r, BaseException)} == {"NotFound"}


def first_create(namespace: str, name: str) -> tuple[str, ServiceCreated]:
    service = Service(namespace=namespace, name=name)
    event = decide_create(
        service, Current(None, None), event_id=new_event_id(), time=utc_now(), actor="t@h"
    )
    return subject_for(namespace, name), event


async def test_stale_expectation_is_refused_by_the_server(url: str, ns: str) -> None:
    async with await open_log(url) as log:
        subject, event = first_create(ns, "svc")
        await log.append(subject, encode(event), msg_id=event.id, expected_last_subject_seq=0)
        other = event.model_copy(update={"id": new_event_id()})
        with pytest.raises(WrongLastSequence):
            await log.append(subject, encode(other), msg_id=other.id, expected_last_subject_seq=0)


async def test_a_retried_publish_is_not_appended_twice(url: str, ns: str) -> None:
    """The retry after a lost ack: same Nats-Msg-Id, now-stale expectation (R1 says 10071)."""
    async with await open_log(url) as log:
        subject, event = first_create(ns, "once")
        data = encode(event)
        first = await log.append(subject, data, msg_id=event.id, expected_last_subject_seq=0)
        before = await stream_last_seq(url)
        again = await log.append(subject, data, msg_id=event.id, expected_last_subject_seq=0)
        assert again == first
        # And a plain duplicate (no expectation in the way) is dropped by the server.
        ack = await raw_publish(url, subject, data, headers={"Nats-Msg-Id": event.id})
        assert ack.duplicate and ack.seq == first
        assert await stream_last_seq(url) == before
