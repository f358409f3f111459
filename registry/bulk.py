"""Many creates or deletes at once, each the same conditional, idempotent write as one.

A bulk call first validates every item (nothing is written if one is bad), reads the
current last message of every subject involved in a few batched direct gets, then
decides and appends each event exactly as ``Registry.create``/``delete`` do: the event
carries its own ``Nats-Msg-Id`` and ``Nats-Expected-Last-Subject-Sequence``, so the
server still refuses a write that lost a race, and a loser re-reads its subject and
decides again. Up to ``concurrency`` appends are in flight at once.

Each item's outcome is returned in input order: its ``ServiceRecord``, or the
``ServiceError`` that refused it (already exists, not found, conflict). A server-side
failure (unreachable, permission, unconfirmed write) stops the whole call and is raised;
what was appended before it stays appended.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import Any, TypeVar

from pydantic import ValidationError

from events import Service, new_event_id, subject_for, utc_now
from events.names import check_name
from registry.commands import (
    Applied,
    Unchanged,
    applied,
    decide_apply,
    decide_create,
    decide_delete,
)
from registry.current import DEFAULT_CONCURRENCY, Signing, decidable, write
from registry.errors import InvalidInput, ServiceError
from registry.projection import ServiceRecord
from registry.projector import SkipHandler
from registry.transport import Log

__all__ = ["DEFAULT_CONCURRENCY", "Outcome", "apply_many", "create_many", "delete_many"]

Outcome = ServiceRecord | ServiceError
T = TypeVar("T")


def _validated_services(items: Iterable[Service | Mapping[str, Any]]) -> list[Service]:
    services = []
    for index, item in enumerate(items):
        if isinstance(item, Service):
            services.append(item)
            continue
        try:
            services.append(Service.model_validate(item))
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(p) for p in error["loc"]) or "service"
            raise InvalidInput(
                f"service #{index} {where}", error.get("input", ""), error["msg"]
            ) from None
    return services


def _validated_keys(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    keys = []
    for namespace, name in items:
        for what, value in (("namespace", namespace), ("name", name)):
            try:
                check_name(value)
            except ValueError as exc:
                raise InvalidInput(what, value, str(exc)) from None
        keys.append((namespace, name))
    return keys


async def _run(
    count: int, step: Callable[[int], Awaitable[T]], concurrency: int
) -> list[T | ServiceError]:
    """``step(i)`` for every index, at most ``concurrency`` at a time, outcomes in order."""
    results: list[T | ServiceError | None] = [None] * count
    indices = iter(range(count))

    async def worker() -> None:
        for index in indices:
            try:
                results[index] = await step(index)
            except ServiceError as exc:
                results[index] = exc

    workers = [asyncio.create_task(worker()) for _ in range(max(1, min(concurrency, count)))]
    try:
        await asyncio.gather(*workers)
    except BaseException:
        for task in workers:
            task.cancel()
        await asyncio.gather(*workers, return_exceptions=True)
        raise
    return [r for r in results if r is not None]


async def create_many(
    log: Log,
    items: Iterable[Service | Mapping[str, Any]],
    *,
    actor: str,
    on_skipped: SkipHandler,
    retry_for: float = 10.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    sign: Signing | None = None,
) -> list[Outcome]:
    """Create every service that is not live; see the module docstring."""
    services = _validated_services(items)
    subjects = [subject_for(s.namespace, s.name) for s in services]
    known = await log.last_many(subjects)

    async def create(index: int) -> ServiceRecord:
        service, subject = services[index], subjects[index]
        seq, event, data, headers, _ = await write(
            log,
            service.namespace,
            service.name,
            lambda current: decide_create(
                service, current, event_id=new_event_id(), time=utc_now(), actor=actor
            ),
            on_skipped,
            current=await decidable(
                log, service.namespace, service.name, on_skipped, last=known.get(subject)
            ),
            retry_for=retry_for,
            sign=sign,
        )
        return ServiceRecord.from_event(seq, event, data, headers)

    return await _run(len(services), create, concurrency)


async def delete_many(
    log: Log,
    keys: Iterable[tuple[str, str]],
    *,
    actor: str,
    on_skipped: SkipHandler,
    retry_for: float = 10.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    sign: Signing | None = None,
) -> list[Outcome]:
    """Delete every live service of ``(namespace, name)`` keys; see the module docstring."""
    targets: Sequence[tuple[str, str]] = _validated_keys(keys)
    subjects = [subject_for(namespace, name) for namespace, name in targets]
    known = await log.last_many(subjects)

    async def delete(index: int) -> ServiceRecord:
        (namespace, name), subject = targets[index], subjects[index]
        _, _, _, _, current = await write(
            log,
            namespace,
            name,
            lambda current: decide_delete(
                namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
            ),
            on_skipped,
            current=await decidable(log, namespace, name, on_skipped, last=known.get(subject)),
            retry_for=retry_for,
            sign=sign,
        )
        record = current.record()
        assert record is not None  # decide_delete checked it is live
        return record

    return await _run(len(targets), delete, concurrency)


async def apply_many(
    log: Log,
    items: Sequence[tuple[Service, int | None]],
    *,
    actor: str,
    on_skipped: SkipHandler,
    retry_for: float = 10.0,
    concurrency: int = DEFAULT_CONCURRENCY,
    sign: Signing | None = None,
) -> list[Applied | ServiceError]:
    """``Registry.apply`` for many ``(service, expected revision or None)``, pipelined."""
    subjects = [subject_for(s.namespace, s.name) for s, _ in items]
    if len(set(subjects)) != len(subjects):
        twice = next(s for s in subjects if subjects.count(s) > 1)
        raise InvalidInput("manifests", twice.removeprefix("skyflow.svc."), "named twice")
    known = await log.last_many(subjects)

    async def apply(index: int) -> Applied:
        (service, expected), subject = items[index], subjects[index]
        try:
            seq, event, data, headers, _ = await write(
                log,
                service.namespace,
                service.name,
                lambda current: decide_apply(
                    service,
                    current,
                    expected_revision=expected,
                    event_id=new_event_id(),
                    time=utc_now(),
                    actor=actor,
                ),
                on_skipped,
                current=await decidable(
                    log, service.namespace, service.name, on_skipped, last=known.get(subject)
                ),
                retry_for=retry_for,
                sign=sign,
            )
        except Unchanged as same:
            return Applied("unchanged", same.record)
        return Applied(applied(event), ServiceRecord.from_event(seq, event, data, headers))

    return await _run(len(items), apply, concurrency)
