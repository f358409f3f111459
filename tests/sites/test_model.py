"""The site model without a server: leases, policies, the streams a site and the hub
need, and which mirrors the registry accepts as a site's log."""

from __future__ import annotations

import pytest

from events.sites import (
    SITE_HISTORY_MAX_BYTES,
    SITE_TASKS_MAX_BYTES,
    membership_view,
    mirror_of,
    service_mirror,
    tasks_view,
)
from events.stream import StreamSpec
from events.subjects import ALL_SUBJECTS
from registry.errors import InvalidInput
from registry.jetstream.protocol import outdated, stream_problems
from registry.sites.model import (
    DEFAULT_POLICY,
    Policy,
    Site,
    lease_state,
    parse_duration,
    parse_policy,
    public_url,
)


def test_policies_parse_and_print() -> None:
    assert parse_policy("keep-last-known") == Policy(grace_s=None)
    assert parse_policy("revoke-after") == DEFAULT_POLICY == Policy(grace_s=120.0)
    assert parse_policy("revoke-after 90s") == Policy(grace_s=90.0)
    assert parse_policy("revoke-after=2m") == Policy(grace_s=120.0)
    assert str(parse_policy("revoke-after 1h")) == "revoke-after 1h"
    assert str(Policy(grace_s=None)) == "keep-last-known"
    for bad in ("", "forget", "revoke-after soon", "keep-last-known 5s", "revoke-after 0s"):
        with pytest.raises(InvalidInput):
            parse_policy(bad)


def test_durations() -> None:
    assert parse_duration("500ms", "x", low=0.1, high=10) == 0.5
    assert parse_duration("5", "x", low=1, high=10) == 5.0
    assert parse_duration("2m", "x", low=1, high=3600) == 120.0
    with pytest.raises(InvalidInput, match='invalid --lease "1s": must be a duration from 2s'):
        parse_duration("1s", "--lease", low=2, high=3600)


@pytest.mark.parametrize(
    ("policy", "silent", "state"),
    [
        (DEFAULT_POLICY, 0.0, "live"),
        (DEFAULT_POLICY, 4.9, "live"),
        (DEFAULT_POLICY, 5.0, "stale"),
        (DEFAULT_POLICY, 119.0, "stale"),
        (DEFAULT_POLICY, 120.0, "revoked"),
        (DEFAULT_POLICY, None, "revoked"),  # never heard: nothing to keep
        (Policy(grace_s=None), 5.0, "stale"),
        (Policy(grace_s=None), 86400.0 * 365, "stale"),  # stale, never revoked, never live
        (Policy(grace_s=None), None, "stale"),
    ],
)
def test_the_lease(policy: Policy, silent: float | None, state: str) -> None:
    assert lease_state(Site("east", "east", policy=policy), silent) == state


def test_a_site_round_trips_through_its_metadata() -> None:
    site = Site("east", "east-domain", "nats://hub:4222", Policy(grace_s=None), 2.0)
    metadata = tasks_view(site.name, site.domain, site.record())["metadata"]
    assert Site.from_metadata({**metadata, "_nats.ver": "2.15.1"}) == site
    assert Site.from_metadata({}) is None
    assert Site.from_metadata({"skyflow.site": "Bad Name", "skyflow.domain": "d"}) is None


def test_the_hub_views_source_the_site_under_its_own_prefix() -> None:
    tasks = tasks_view("east", "east", {})
    (source,) = tasks["sources"]
    # Delivered under the site's own prefix: a secured hub lets east deliver there only.
    assert source["external"] == {"api": "$JS.east.API", "deliver": "$JS.S.east"}
    assert source["subject_transforms"] == [
        {"src": "skyflow.task.>", "dest": "site.east.skyflow.task.>"}
    ]
    assert tasks["subjects"] == [] and tasks["max_msgs_per_subject"] == 1
    assert "subject_delete_marker_ttl" not in tasks  # the site's markers arrive; none twice
    history = membership_view("east", "east", {}, 86400)
    assert history["deny_purge"] and history["deny_delete"]
    # Kept as long as the site keeps its own, within a bound: a site cannot fill the hub.
    assert history["max_age"] == 86400 * 10**9
    assert history["max_bytes"] == SITE_HISTORY_MAX_BYTES
    assert tasks["max_bytes"] == SITE_TASKS_MAX_BYTES
    assert history["sources"][0]["subject_transforms"][0]["dest"] == "site.east.skyflow.member.>"


def test_only_a_sites_mirror_of_the_hubs_log_is_accepted_as_a_log() -> None:
    spec = StreamSpec()
    mirror = service_mirror("east", "hub", "nats://hub:4222", spec)
    found = mirror_of(mirror)
    assert found is not None and (found.site, found.hub_domain) == ("east", "hub")
    # Filtered by a subject every one of the log's matches (so it copies all of it), and
    # delivered under the site's own prefix (docs/sites.md, "Securing the leaf link").
    assert mirror["mirror"]["filter_subject"] == "skyflow.>"
    assert all(subject.startswith("skyflow.") for subject in ALL_SUBJECTS)
    assert mirror["mirror"]["external"] == {"api": "$JS.hub.API", "deliver": "$JS.M.east"}
    # A mirror set up before it had the filter is still the site's mirror.
    unfiltered = {k: v for k, v in mirror["mirror"].items() if k != "filter_subject"}
    assert mirror_of({**mirror, "mirror": unfiltered}) is not None
    assert stream_problems(spec, mirror) == []
    assert outdated(spec, mirror) == []
    # Anything else that mirrors is still refused: another stream, another API, filtered.
    changes: tuple[dict[str, object], ...] = (
        {"mirror": {"name": "OTHER", "external": {"api": "$JS.hub.API"}}},
        {"mirror": {"name": spec.name, "external": {"api": "$JS.other.API"}}},
        {"mirror": {**mirror["mirror"], "filter_subject": "skyflow.svc.a.*"}},
        {"metadata": {}},
    )
    for changed in changes:
        config = {**mirror, **changed}
        assert mirror_of(config) is None
        assert any("mirrors or sources" in p for p in stream_problems(spec, config))
    # A mirror that could lose events is refused like any log.
    assert stream_problems(spec, {**mirror, "deny_purge": False})


def test_no_password_is_recorded() -> None:
    assert public_url("nats://alice:secret@hub:4222") == "nats://hub:4222"
    assert public_url("nats://a:b@h1:4222, tls://h2:4222") == "nats://h1:4222,tls://h2:4222"
    assert public_url("hub:4222") == "hub:4222"
