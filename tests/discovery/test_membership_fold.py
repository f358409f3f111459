"""The membership fold without a server: which transitions a task's liveness calls for,
that recording them makes the history agree (so a second recorder records nothing), and
that what a history holds is read as strictly as a heartbeat."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import msgpack
from hypothesis import given
from hypothesis import strategies as st

from events.membership import (
    TaskJoined,
    TaskLeft,
    TaskReadinessChanged,
    encode_membership,
    member_subject,
)
from events.task import Task
from registry.discovery.membership import Departure, Members, member_from, transitions
from registry.discovery.tasks import LiveTask
from registry.log.entry import Skipped
from registry.log.stored import StoredMessage

T0 = datetime(2026, 12, 5, 14, 0, tzinfo=UTC)


def live(instance: str = "i1", ready: bool = True, draining: bool = False) -> LiveTask:
    return LiveTask(
        "shop",
        "web-1",
        {"app": "web"},
        "10.0.0.1",
        None,
        ready and not draining,
        instance,
        T0,
        15,
        1,
        0,
        {"http": 8080},
        draining,
        None if ready and not draining else "why",
    )


def record(members: Members, events: list[TaskJoined | TaskReadinessChanged | TaskLeft]) -> None:
    for index, event in enumerate(events):
        members.recorded(("shop", "web-1"), event, index + 1)


def decide(
    members: Members, state: LiveTask | None, *, exact: bool = True, after_ns: int | None = None
) -> list[TaskJoined | TaskReadinessChanged | TaskLeft]:
    return transitions(
        members.get(("shop", "web-1")),
        state,
        at_ns=int(T0.timestamp() * 1e9),
        source_seq=7,
        departure=Departure("withdrawn", "bye"),
        exact=exact,
        after_ns=after_ns,
    )


def test_a_join_a_flip_a_renewal_and_a_leave() -> None:
    members = Members()
    joined = decide(members, live())
    assert [type(e) for e in joined] == [TaskJoined] and joined[0].task.ports == {"http": 8080}
    record(members, joined)
    assert decide(members, live()) == []  # a renewal is no transition
    flipped = decide(members, live(ready=False))
    assert [type(e) for e in flipped] == [TaskReadinessChanged]
    record(members, flipped)
    left = decide(members, None)
    assert [(e.how, e.reason) for e in left if isinstance(e, TaskLeft)] == [("withdrawn", "bye")]
    assert len(left) == 1
    record(members, left)
    assert decide(members, None) == []  # gone stays gone


def test_another_run_under_the_name_replaces_the_first() -> None:
    members = Members()
    record(members, decide(members, live("i1")))
    events = decide(members, live("i2"))
    assert [type(e).__name__ for e in events] == ["TaskLeft", "TaskJoined"]
    assert isinstance(events[0], TaskLeft) and events[0].how == "replaced"
    assert events[0].instance == "i1"
    assert events[1].instance == "i2"


def test_found_late_is_marked_inexact_with_its_window() -> None:
    members = Members()
    after = int((T0 - timedelta(minutes=5)).timestamp() * 1e9)
    (joined,) = decide(members, live(), exact=False, after_ns=after)
    assert not joined.exact and joined.after == T0  # no earlier than its announcer began
    record(members, [joined])
    (flipped,) = decide(members, live(draining=True), exact=False, after_ns=after)
    assert not flipped.exact and flipped.after == T0 - timedelta(minutes=5)
    assert flipped.task.draining and not flipped.task.ready


_STATES = st.one_of(
    st.none(),
    st.builds(live, st.sampled_from(["i1", "i2"]), st.booleans(), st.booleans()),
)


@given(st.lists(_STATES, max_size=12))
def test_recording_makes_the_history_agree_so_nothing_is_recorded_twice(
    states: list[LiveTask | None],
) -> None:
    members = Members()
    for state in states:
        record(members, decide(members, state))
        assert decide(members, state) == []  # a second recorder finds nothing to add
        member = members.get(("shop", "web-1"))
        if state is None:
            assert member is None or not member.live
        else:
            assert member is not None and member.task is not None
            assert member.instance == state.instance
            assert (member.task.ready, member.task.draining) == (state.ready, state.draining)


def _stored(subject: str, data: bytes) -> StoredMessage:
    return StoredMessage(seq=3, subject=subject, data=data, headers={}, time_ns=0)


def test_what_a_history_holds_is_read_strictly() -> None:
    task = Task(namespace="shop", name="web-1", address="10.0.0.1")
    event = TaskJoined(at=T0, source_seq=1, instance="i1", since=T0, task=task)
    good = _stored(member_subject("shop", "web-1"), encode_membership(event))
    assert member_from(good) is not None
    future = msgpack.packb({"type": "TaskJoined", "version": 9})
    skipped: list[Skipped] = []
    for bad in (
        _stored(member_subject("shop", "other"), encode_membership(event)),  # wrong subject
        _stored(member_subject("shop", "web-1"), b"\xc1"),
        _stored(member_subject("shop", "web-1"), future),
        _stored("skyflow.member._recorder", encode_membership(event)),
    ):
        assert member_from(bad, skipped.append) is None
    assert len(skipped) == 4
    assert "on the subject of shop/other" in skipped[0].reason
