"""The log stream keeps everything, and the registry refuses one that might not (invariant 6)."""

from __future__ import annotations

import pytest
from nats.js.api import StreamConfig
from nats.js.errors import ServerError as NatsServerError

from events import StreamSpec
from registry.errors import StreamMisconfigured
from registry.jetstream import open_log
from registry.jetstream.log import JetStreamLog
from tests.conftest import raw_nats


async def test_created_stream_denies_delete_and_purge_and_keeps_everything(url: str) -> None:
    async with await open_log(url) as log, raw_nats(url) as nc:
        js = nc.jetstream()
        info = await js.stream_info(log.spec.name)
        config = info.config
        assert config.deny_delete and config.deny_purge
        assert (config.max_msgs, config.max_bytes, config.max_msgs_per_subject) == (-1, -1, -1)
        assert not config.max_age
        assert config.subjects == ["skyflow.svc.*.*"]
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
