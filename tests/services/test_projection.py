"""The fold, with no server: its meaning, and the property every fast read relies on."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from events import Service, ServiceCreated, ServiceDeleted, encode, subject_for
from registry.log.entry import Entry
from registry.services.projection import Projection, fold

T0 = datetime(2026, 11, 25, tzinfo=UTC)


def created(seq: int, namespace: str, name: str, port: int = 80) -> Entry:
    from events import Port

    service = Service(namespace=namespace, name=name, ports=(Port(port=port, target_port=port),))
    event = ServiceCreated(id=f"e{seq}", time=T0, actor="a@h", service=service)
    return Entry(seq, subject_for(namespace, name), event, encode(event))


def deleted(seq: int, namespace: str, name: str) -> Entry:
    event = ServiceDeleted(id=f"e{seq}", time=T0, actor="a@h", namespace=namespace, name=name)
    return Entry(seq, subject_for(namespace, name), event, encode(event))


def test_create_then_delete() -> None:
    state = fold(
        [created(1, "default", "web"), created(2, "default", "db"), deleted(3, "default", "web")]
    )
    assert list(state.services) == [("default", "db")]
    assert state.last_seq == 3


def test_changes_say_what_happened() -> None:
    projection = Projection()
    assert projection.apply(created(1, "default", "web")).kind == "ADDED"  # type: ignore[union-attr]
    assert projection.apply(created(2, "default", "web")).kind == "MODIFIED"  # type: ignore[union-attr]
    change = projection.apply(deleted(3, "default", "web"))
    assert change is not None and change.kind == "DELETED" and change.record.seq == 2
    assert projection.apply(deleted(4, "default", "web")) is None  # nothing visible changed


def test_an_event_already_folded_is_not_folded_again() -> None:
    projection = fold([created(1, "a", "x"), deleted(2, "a", "x")])
    assert projection.apply(created(1, "a", "x")) is None
    assert projection.services == {}


def test_fold_does_not_touch_the_state_it_starts_from() -> None:
    start = fold([created(1, "a", "x")])
    after = fold([deleted(2, "a", "x")], start)
    assert list(start.services) == [("a", "x")]
    assert after.services == {}


def test_select_filters_and_sorts() -> None:
    state = fold([created(1, "b", "z"), created(2, "a", "y"), created(3, "b", "a")])
    assert [r.key for r in state.select()] == [("a", "y"), ("b", "a"), ("b", "z")]
    assert [r.key for r in state.select("b")] == [("b", "a"), ("b", "z")]


# A random history: create or delete on a few names in two namespaces, as the command
# side would allow it (create only when not live, delete only when live).
ops = st.lists(
    st.tuples(st.booleans(), st.sampled_from(["n1", "n2"]), st.sampled_from(["a", "b", "c", "d"])),
    max_size=60,
)


def history(
    operations: list[tuple[bool, str, str]],
) -> tuple[list[Entry], dict[tuple[str, str], int]]:
    entries: list[Entry] = []
    model: dict[tuple[str, str], int] = {}
    for is_create, namespace, name in operations:
        seq = len(entries) + 1
        key = (namespace, name)
        if is_create and key not in model:
            entries.append(created(seq, namespace, name, port=seq))
            model[key] = seq
        elif not is_create and key in model:
            entries.append(deleted(seq, namespace, name))
            del model[key]
    return entries, model


@given(ops)
def test_fold_equals_a_plain_dict_model(operations: list[tuple[bool, str, str]]) -> None:
    entries, model = history(operations)
    state = fold(entries)
    assert {k: r.seq for k, r in state.services.items()} == model
    assert all(r.service.ports[0].port == r.seq for r in state.services.values())


@given(ops)
def test_last_event_per_subject_folds_to_the_same_state(
    operations: list[tuple[bool, str, str]],
) -> None:
    """Why ``get`` may read one message: the last event of each subject is enough."""
    entries, _ = history(operations)
    last: dict[str, Entry] = {}
    for entry in entries:
        last[entry.subject] = entry
    assert fold(sorted(last.values(), key=lambda e: e.seq)).services == fold(entries).services
