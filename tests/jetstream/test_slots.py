"""A user's read slots, from the permissions the server reports (no server needed)."""

from __future__ import annotations

from typing import Any

import pytest

from registry.jetstream.slots import read_slots, subject_matches


def publish(allow: list[Any] | None = None, deny: list[Any] | None = None) -> dict[str, Any]:
    rules: dict[str, Any] = {}
    if allow is not None:
        rules["allow"] = allow
    if deny is not None:
        rules["deny"] = deny
    return {"publish": rules, "subscribe": {"allow": ["_INBOX_u.>"]}}


@pytest.mark.parametrize(
    ("pattern", "subject", "matches"),
    [
        (">", "$JS.API.CONSUMER.CREATE.S", True),
        ("$JS.API.>", "$JS.API.CONSUMER.CREATE.S", True),
        ("$JS.API.CONSUMER.CREATE.S.>", "$JS.API.CONSUMER.CREATE.S", False),
        ("$JS.API.CONSUMER.*.S", "$JS.API.CONSUMER.CREATE.S", True),
        ("$JS.API.CONSUMER.*.S", "$JS.API.CONSUMER.CREATE.S.x", False),
        ("$JS.API.CONSUMER.CREATE.S", "$JS.API.CONSUMER.CREATE.T", False),
        ("a.*.c", "a.b", False),
    ],
)
def test_subject_matching_follows_nats(pattern: str, subject: str, matches: bool) -> None:
    assert subject_matches(pattern, subject) is matches


def test_the_server_names_consumers_for_admin_and_on_servers_without_users() -> None:
    assert read_slots("S", None) is None
    assert read_slots("S", {}) is None
    assert read_slots("S", publish([">"])) is None
    assert read_slots("S", publish(["$JS.API.CONSUMER.CREATE.S"])) is None
    assert read_slots("S", {"subscribe": {"allow": [">"]}}) is None  # publish unrestricted


def test_a_users_slots_are_the_names_its_permissions_give_it_on_that_stream() -> None:
    allow = [
        "$JS.API.CONSUMER.*.S.u-1",
        "$JS.API.CONSUMER.*.S.u-0",
        "$JS.API.CONSUMER.CREATE.S.u-2",
        "$JS.API.CONSUMER.DELETE.S.gone",  # deleting is not creating
        "$JS.API.CONSUMER.*.T.u-9",  # another stream
        "$JS.API.CONSUMER.*.S.*",  # no name: not a slot
        "$JS.API.CONSUMER.*.S.u-3.>",  # a filter in the subject: not one we make
        17,  # the server's answer is untrusted
    ]
    assert read_slots("S", publish(allow)) == ("u-0", "u-1", "u-2")
    assert read_slots("T", publish(allow)) == ("u-9",)


def test_denied_subjects_are_no_slots_and_no_plain_create() -> None:
    allow = ["$JS.API.>", "$JS.API.CONSUMER.*.S.u-0", "$JS.API.CONSUMER.*.S.u-1"]
    deny = ["$JS.API.CONSUMER.CREATE.S", "$JS.API.CONSUMER.CREATE.S.u-1"]
    assert read_slots("S", publish(allow, deny)) == ("u-0",)
    assert read_slots("S", publish(None, ["$JS.API.CONSUMER.CREATE.>"])) == ()


def test_no_slot_means_no_read_rather_than_the_plain_subject() -> None:
    assert read_slots("S", publish(["$JS.API.DIRECT.GET.S"])) == ()
    assert read_slots("S", publish("not a list")) == ()  # type: ignore[arg-type]
