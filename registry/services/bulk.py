"""Many creates, applies or deletes at once, each the same conditional, idempotent write
as one, sent as few atomic batches.

A bulk call first validates every item (nothing is written if one is bad), reads the
last message of every service subject in a few batched direct gets, decides every
write as ``Registry.create``/``apply``/``delete`` do, settles all their addresses in one
pass (``registry.addresses.allocator``), and composes each write's messages
(``registry.services.batch``).
Then it commits the writes of many services as one JetStream atomic batch (group commit:
one round trip and one fsync for hundreds of services), every message still carrying its
own ``Nats-Msg-Id`` and ``Nats-Expected-Last-Subject-Sequence``. If the server refuses a
group (someone wrote to one of its subjects first), nothing of it is stored, and each of
its writes is made again alone, the way a single write is (read, decide, retry).

Each item's outcome is returned in input order: its ``ServiceRecord``, or the
``ServiceError`` that refused it (already exists, not found, conflict, address taken). A
server-side failure (unreachable, permission, unconfirmed write) stops the whole call and
is raised; what was committed before it stays committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar, Union

from pydantic import ValidationError

from events import (
    Event,
    LiveEvent,
    Service,
    ServiceCreated,
    ServiceDeleted,
    ServiceUpdated,
    new_event_id,
    subject_for,
    utc_now,
)
from events.names import check_name
from registry.addresses.allocator import Request
from registry.errors import InvalidInput, ServiceError
from registry.log.port import MAX_BATCH, WrongLastSequence
from registry.services.batch import Prepared, compose, request_for
from registry.services.decisions import (
    Applied,
    Current,
    Unchanged,
    applied,
    decide_apply,
    decide_create,
    decide_delete,
)
from registry.services.projection import ServiceRecord
from registry.services.writer import DEFAULT_CONCURRENCY, Writer, Written, decidable
from registry.services.writer import write as write_one

__all__ = [
    "DEFAULT_CONCURRENCY",
    "Outcome",
    "apply_many",
    "create_many",
    "delete_many",
    "write_many",
]

Outcome = ServiceRecord | ServiceError
E = TypeVar("E", bound=Event)


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


# A group commit holds at most this many services (and at most ``MAX_BATCH`` messages):
# large enough that the per-batch round trip and fsync are shared by many writes, small
# enough that a refused group costs little to redo one by one.
GROUP_SERVICES = 250
# Groups in flight at once (the server allows 50 batches in flight per stream).
GROUPS_IN_FLIGHT = 2

Result = Union["Written[E]", ServiceError, Unchanged]


@dataclass(slots=True)
class _Write(Generic[E]):
    """One item of a bulk call on its way to the log."""

    namespace: str
    name: str
    decide: Callable[[Current], E]
    current: Current | None = None
    prepared: Prepared[E] | None = None
    result: Result[E] | None = None


async def write_many(
    writer: Writer,
    keys: Sequence[tuple[str, str]],
    decides: Sequence[Callable[[Current], E]],
    *,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Result[E]]:
    """Decide and write one event per ``(namespace, name)``, grouped into atomic batches;
    each outcome in order: what was written, the refusal, or ``Unchanged``."""
    writes = [_Write(ns, name, decide) for (ns, name), decide in zip(keys, decides, strict=True)]
    known = await writer.log.last_many([subject_for(w.namespace, w.name) for w in writes])
    asking: list[tuple[_Write[E], Current, E, Request]] = []
    for write in writes:
        try:
            current = await decidable(
                writer.log,
                write.namespace,
                write.name,
                writer.on_skipped,
                last=known.get(subject_for(write.namespace, write.name)),
            )
            event = write.decide(current)
        except (ServiceError, Unchanged) as refused:
            write.result = refused
            continue
        write.current = current
        request = request_for(current, event)
        if request is None:
            write.prepared = compose(current, event, None, sign=writer.sign)
        else:
            asking.append((write, current, event, request))
    settled = await writer.allocator.settle_many([request for *_, request in asking])
    for (write, current, event, _), allocation in zip(asking, settled, strict=True):
        if isinstance(allocation, ServiceError):
            write.result = allocation
        else:
            write.prepared = compose(current, event, allocation, sign=writer.sign)
    ready = [w for w in writes if w.prepared is not None]
    groups = list(_groups(ready))
    lanes = max(1, min(GROUPS_IN_FLIGHT, concurrency, len(groups)))
    queue = iter(groups)

    async def lane() -> None:
        for group in queue:
            await _commit(writer, group, concurrency)

    await _gather(*(lane() for _ in range(lanes)))
    results = [w.result for w in writes]
    assert all(r is not None for r in results)
    return [r for r in results if r is not None]


def _groups(writes: Sequence[_Write[E]]) -> Iterator[list[_Write[E]]]:
    """Cut the writes into batches the server takes: bounded, and each subject at most
    once (a service named twice in the input goes to the next batch, where its
    condition fails and it is decided again, alone)."""
    group: list[_Write[E]] = []
    subjects: set[str] = set()
    for write in writes:
        assert write.prepared is not None
        mine = [m.subject for m in write.prepared.messages]
        if group and (
            len(subjects) + len(mine) > MAX_BATCH
            or len(group) >= GROUP_SERVICES
            or not subjects.isdisjoint(mine)
        ):
            yield group
            group, subjects = [], set()
        group.append(write)
        subjects.update(mine)
    if group:
        yield group


async def _commit(writer: Writer, group: list[_Write[E]], concurrency: int) -> None:
    """Send one group as one atomic batch; if it is refused, write each of it alone."""
    messages = [m for w in group for m in (w.prepared.messages if w.prepared else [])]
    try:
        seqs = await writer.log.append_batch(messages, retry_for=writer.retry_for)
    except WrongLastSequence:
        pass
    else:
        position = 0
        for write in group:
            assert write.prepared is not None and write.current is not None
            prepared = write.prepared
            write.result = Written(
                seqs[position], prepared.event, prepared.data, prepared.headers, write.current
            )
            position += len(prepared.messages)
        return

    async def alone(write: _Write[E]) -> None:
        try:
            write.result = await write_one(writer, write.namespace, write.name, write.decide)
        except (ServiceError, Unchanged) as refused:
            write.result = refused

    pending = iter(group)

    async def worker() -> None:
        for write in pending:
            await alone(write)

    await _gather(*(worker() for _ in range(max(1, min(concurrency, len(group))))))


async def _gather(*coroutines: Awaitable[None]) -> None:
    """Run them all; on the first failure, cancel the rest and raise it."""
    tasks = [asyncio.ensure_future(c) for c in coroutines]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def _record(result: Result[LiveEvent]) -> Outcome:
    if isinstance(result, ServiceError):
        return result
    assert not isinstance(result, Unchanged)
    return result.record()


async def create_many(
    writer: Writer,
    items: Iterable[Service | Mapping[str, Any]],
    *,
    actor: str,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Outcome]:
    """Create every service that is not live; see the module docstring."""
    services = _validated_services(items)

    def decide(service: Service) -> Callable[[Current], LiveEvent]:
        return lambda current: decide_create(
            service, current, event_id=new_event_id(), time=utc_now(), actor=actor
        )

    results = await write_many(
        writer,
        [(s.namespace, s.name) for s in services],
        [decide(s) for s in services],
        concurrency=concurrency,
    )
    return [_record(r) for r in results]


async def delete_many(
    writer: Writer,
    keys: Iterable[tuple[str, str]],
    *,
    actor: str,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Outcome]:
    """Delete every live service of ``(namespace, name)`` keys; see the module docstring."""
    targets: Sequence[tuple[str, str]] = _validated_keys(keys)

    def decide(namespace: str, name: str) -> Callable[[Current], ServiceDeleted]:
        return lambda current: decide_delete(
            namespace, name, current, event_id=new_event_id(), time=utc_now(), actor=actor
        )

    results = await write_many(
        writer,
        targets,
        [decide(ns, name) for ns, name in targets],
        concurrency=concurrency,
    )
    outcomes: list[Outcome] = []
    for result in results:
        if isinstance(result, ServiceError):
            outcomes.append(result)
            continue
        assert not isinstance(result, Unchanged)
        record = result.decided_on.record()
        assert record is not None  # decide_delete checked it is live
        outcomes.append(record)
    return outcomes


async def apply_many(
    writer: Writer,
    items: Sequence[tuple[Service, int | None]],
    *,
    actor: str,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[Applied | ServiceError]:
    """``Registry.apply`` for many ``(service, expected revision or None)``."""
    subjects = [subject_for(s.namespace, s.name) for s, _ in items]
    if len(set(subjects)) != len(subjects):
        twice = next(s for s in subjects if subjects.count(s) > 1)
        raise InvalidInput("manifests", twice.removeprefix("skyflow.svc."), "named twice")

    def decide(service: Service, expected: int | None) -> Callable[[Current], LiveEvent]:
        return lambda current: decide_apply(
            service,
            current,
            expected_revision=expected,
            event_id=new_event_id(),
            time=utc_now(),
            actor=actor,
        )

    results = await write_many(
        writer,
        [(s.namespace, s.name) for s, _ in items],
        [decide(s, expected) for s, expected in items],
        concurrency=concurrency,
    )
    outcomes: list[Applied | ServiceError] = []
    for result in results:
        if isinstance(result, ServiceError):
            outcomes.append(result)
        elif isinstance(result, Unchanged):
            outcomes.append(Applied("unchanged", result.record))
        else:
            assert isinstance(result.event, ServiceCreated | ServiceUpdated)
            outcomes.append(Applied(applied(result.event), result.record()))
    return outcomes
