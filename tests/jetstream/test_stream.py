"""The log stream keeps everything, and the registry refuses one that might not (invariant 6)."""

from __future__ import annotations

import uuid

import pytest
from nats.js.api import (
    PersistMode,
    RePublish,
    RetentionPolicy,
    StorageType,
    StreamConfig,
    SubjectTransform,
)
from nats.js.errors import ServerError as NatsServerError

from events import StreamSpec
from registry.errors import StreamMisconfigured
from registry.jetstream import open_log
from registry.jetstream.log import JetStreamLog
from tests.helpers import raw_nats


async def test_created_stream_denies_delete_and_purge_and_keeps_everything(url: str) -> None:
    async with await open_log(url) as log, raw_nats(url) as nc:
        js = nc.jetstream()
        info = await js.stream_info(log.spec.name)
        config = info.config
        assert config.deny_delete and config.deny_purge
        assert (config.max_msgs, config.max_bytes, config.max_msgs_per_subject) == (-1, -1, -1)
        assert not config.max_age
        assert config.subjects == [
            "skyflow.svc.*.*",
            "skyflow.addr.*.*",
            "skyflow.config.*",
            "skyflow.quota.*",
            "skyflow.usage.*",
            "skyflow.status.*.*",
        ]
        assert config.allow_atomic
        assert config.allow_direct
        with pytest.raises(NatsServerError):
            await js.purge_stream(log.spec.name)
        if info.state.last_seq:
            with pytest.raises(NatsServerError):
                await js.delete_msg(log.spec.name, info.state.last_seq)


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"max_age": 3600.0}, "max_age is 3600"),
        ({"max_msgs_per_subject": 1}, "max_msgs_per_subject is 1"),
        ({"max_msgs": 1000}, "max_msgs is 1000"),
        ({"max_bytes": 1 << 30}, "max_bytes is 1073741824"),
        ({"deny_delete": False}, "deny_delete is False"),
        ({"deny_purge": False}, "deny_purge is False"),
        ({"allow_direct": False}, "allow_direct is off"),
    ],
)
async def test_a_stream_that_could_lose_history_is_refused(
    url: str, change: dict[str, object], problem: str
) -> None:
    name = f"RISKY_{abs(hash(problem)) % 10**8}"
    spec = StreamSpec(name=name, subjects=(f"risky{abs(hash(problem)) % 10**8}.*.*",))
    async with await open_log(url) as good, raw_nats(url) as nc:
        js = nc.jetstream()
        config = StreamConfig.from_response(JetStreamLog(good.conn, spec, 5).stream_config())
        for key, value in change.items():
            setattr(config, key, value)
        await js.add_stream(config)
        try:
            with pytest.raises(StreamMisconfigured, match=problem) as info:
                await open_log(url, spec=spec)
            assert "refusing stream" in str(info.value)
        finally:
            await js.delete_stream(name)


def _risky(key: str, config: StreamConfig) -> None:
    """One setting that could lose, hide, move or delay events, set the way nats-py does."""
    subject = (config.subjects or [""])[0]
    changes: dict[str, object] = {
        "storage": StorageType.MEMORY,
        "retention": RetentionPolicy.INTEREST,
        "allow_msg_ttl": True,
        "subject_transform": SubjectTransform(src=subject, dest="moved.{{wildcard(1)}}.x"),
        "republish": RePublish(src=">", dest="copy.>"),
        "no_ack": True,
        "persist_mode": PersistMode.ASYNC,
        "allow_msg_schedules": True,
        "allow_msg_counter": True,
        "allow_rollup_hdrs": True,
    }
    setattr(config, key, changes[key])


@pytest.mark.parametrize(
    ("key", "problem"),
    [
        ("storage", "storage is memory"),
        ("retention", "retention is interest"),
        ("allow_msg_ttl", "allow_msg_ttl is True"),
        ("subject_transform", "subject_transform is set"),
        ("republish", "republish is set"),
        ("no_ack", "no_ack is True"),
        ("persist_mode", "persist_mode is async"),
        ("allow_msg_schedules", "allow_msg_schedules is True"),
        ("allow_msg_counter", "allow_msg_counter is True"),
        ("allow_rollup_hdrs", "allow_rollup_hdrs is True"),
    ],
)
async def test_every_setting_that_loses_hides_moves_or_delays_events_is_refused(
    url: str, key: str, problem: str
) -> None:
    tag = uuid.uuid4().hex[:8]
    spec = StreamSpec(name=f"RISKY_{tag}", subjects=(f"risky{tag}.*.*",))
    async with await open_log(url) as good, raw_nats(url) as nc:
        js = nc.jetstream()
        config = StreamConfig.from_response(JetStreamLog(good.conn, spec, 5).stream_config())
        if key == "allow_rollup_hdrs":  # roll-ups need the purge permission too
            config.deny_purge = False
        if key == "persist_mode":  # the server takes async persistence only without batches
            config.allow_atomic = False
        _risky(key, config)
        await js.add_stream(config)
        try:
            with pytest.raises(StreamMisconfigured, match=problem) as refused:
                await open_log(url, spec=spec)
            message = str(refused.value)
            assert message.count("\n") == 0 and "(" in message  # one line, with a fix
        finally:
            await js.delete_stream(spec.name)


async def test_fewer_replicas_than_asked_for_is_refused_with_the_fix(url: str) -> None:
    with pytest.raises(StreamMisconfigured, match=r"num_replicas is 1, asked for 3") as refused:
        await open_log(url, spec=StreamSpec(replicas=3))
    assert "skyctl init --replicas 3" in str(refused.value)


async def test_new_streams_bound_the_size_of_one_event(url: str) -> None:
    async with await open_log(url) as log, raw_nats(url) as nc:
        info = await nc.jetstream().stream_info(log.spec.name)
        assert info.config.max_msg_size == 64 * 1024 + 4 * 1024
