"""The log over the wire client: what one-shot commands and bulk reads need, without nats-py.

The same operations, checks and errors as ``JetStreamLog`` (``connection.py``): the
stream's configuration is checked on every connect, appends carry ``Nats-Msg-Id`` and
``Nats-Expected-Last-Subject-Sequence`` and are retried with the same id, a rejection
of our own earlier write is recognised, and failures become the registry's errors.

``open`` raises ``NeedsNatsPy`` when the connection needs what only nats-py does (TLS,
NKey credentials, several servers, a stream still to be created), and for users whose
permissions the server limits, so that refusals are reported exactly as
``JetStreamLog.guarded`` reports them; callers then use ``JetStreamLog``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

from events.stream import StreamSpec
from registry.credentials import Credentials
from registry.errors import (
    NotAuthenticated,
    PermissionDenied,
    ServerError,
    StreamMisconfigured,
    Unreachable,
    WriteNotConfirmed,
)
from registry.jetstream.protocol import (
    DEFAULT_URL,
    EXPECTED_LAST_SUBJECT_SEQUENCE,
    OWN_WRITE_IN_FLIGHT,
    WRONG_LAST_SEQUENCE,
    WrongLastSequence,
    api_error,
    stream_problems,
)
from registry.jetstream.wire import (
    NeedsNatsPy,
    NoResponders,
    PermissionViolation,
    ProtocolError,
    Reply,
    WireClient,
)
from registry.stored import MSG_ID, StoredMessage

__all__ = ["DIRECT_HEADERS", "LiteLog", "NeedsNatsPy", "ack_tokens", "parse_time_ns"]

_STREAM_NOT_FOUND = 10059
# Headers the server adds to a direct-get reply; the rest are the stored message's own.
DIRECT_HEADERS = frozenset(
    {
        "Nats-Stream",
        "Nats-Subject",
        "Nats-Sequence",
        "Nats-Time-Stamp",
        "Nats-Num-Pending",
        "Nats-Last-Sequence",
    }
)


def parse_time_ns(stamp: str) -> int:
    """``2026-11-25T01:40:09.474459392Z`` -> nanoseconds since the epoch."""
    from datetime import datetime

    head, dot, frac = stamp.rstrip("Z").partition(".")
    seconds = datetime.fromisoformat(head + "+00:00").timestamp()
    return int(seconds) * 1_000_000_000 + (int(frac.ljust(9, "0")[:9]) if dot else 0)


def ack_tokens(reply: str) -> tuple[int, int, int, int]:
    """``(stream seq, consumer seq, time ns, pending)`` from a JetStream ack subject."""
    tokens = reply.split(".")
    base = 2 if len(tokens) == 9 else 4  # v1 ack subject, or v2 with domain + account
    return (
        int(tokens[base + 3]),
        int(tokens[base + 4]),
        int(tokens[base + 5]),
        int(tokens[base + 6]),
    )


def _api_error(error: dict[str, Any], operation: str) -> ServerError:
    return api_error(
        error.get("code"), error.get("err_code"), str(error.get("description", "")), operation
    )


class LiteLog:
    """A wire connection to the server and the one stream that holds the service log."""

    def __init__(self, client: WireClient, spec: StreamSpec, url: str, timeout: float) -> None:
        self.client = client
        self.spec = spec
        self.url = url
        self.timeout = timeout
        self.user: str | None = None  # who the server authenticated us as, if anyone

    # -- lifecycle -------------------------------------------------------------------

    @classmethod
    async def open(
        cls,
        url: str = DEFAULT_URL,
        *,
        spec: StreamSpec | None = None,
        credentials: Credentials | None = None,
        api_timeout: float = 5.0,
    ) -> LiteLog:
        """Connect (failing within seconds when nobody answers) and check the stream."""
        credentials = credentials or Credentials()
        if credentials.creds_file is not None or credentials.tls_ca is not None:
            raise NeedsNatsPy("credentials file or TLS")
        try:
            client = await WireClient.connect(
                url,
                user=credentials.user,
                password=credentials.password,
                token=credentials.token,
                wait_s=min(api_timeout, 2.0),
            )
        except NeedsNatsPy:
            raise
        except ConnectionRefusedError:
            raise Unreachable(url, "connection refused") from None
        except TimeoutError:
            raise Unreachable(url, "no answer") from None
        except ProtocolError as exc:
            if "authorization" in str(exc).lower():
                raise NotAuthenticated(url, "authorization violation") from None
            raise Unreachable(url, str(exc)) from None
        except OSError as exc:
            raise Unreachable(url, exc.strerror or str(exc)) from None
        except ValueError as exc:
            raise Unreachable(url, f"bad URL: {exc}") from None
        self = cls(client, spec or StreamSpec(), url, api_timeout)
        try:
            await self._who_am_i()
            await self._check_stream()
        except BaseException:
            await self.close()
            raise
        return self

    async def close(self) -> None:
        await self.client.close()

    async def __aenter__(self) -> LiteLog:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- the stream ------------------------------------------------------------------

    async def _who_am_i(self) -> None:
        """Who the server says we are (the actor of our events), as ``JetStreamLog`` asks.

        A user whose permissions are limited, or who may not ask, goes to nats-py
        (``NeedsNatsPy``), whose ``guarded`` reports each refusal as it happens.
        """
        try:
            reply = await self.client.request("$SYS.REQ.USER.INFO", wait_s=1.0)
            data = json.loads(reply.data)["data"]
        except (TimeoutError, NoResponders, PermissionViolation, ValueError, KeyError, TypeError):
            raise NeedsNatsPy("a user who may not ask who it is") from None
        except ProtocolError as exc:
            raise Unreachable(self.url, str(exc)) from None
        if data.get("permissions"):
            raise NeedsNatsPy("a user with limited permissions")
        user = str(data.get("user") or "") or None
        name = data.get("user_name")  # JWT users: a name for humans beside the public key
        self.user = f"{name} ({user})" if name and user and name != user else user

    async def _stream_info(self) -> dict[str, Any]:
        try:
            reply = await self.client.request(
                f"$JS.API.STREAM.INFO.{self.spec.name}", wait_s=self.timeout
            )
        except (TimeoutError, NoResponders):
            raise Unreachable(self.url, "JetStream did not answer") from None
        except ProtocolError as exc:
            raise Unreachable(self.url, str(exc)) from None
        body: dict[str, Any] = json.loads(reply.data)
        error = body.get("error")
        if error is not None:
            if error.get("err_code") == _STREAM_NOT_FOUND:
                raise NeedsNatsPy("the stream does not exist yet")
            if error.get("code") == 503:
                raise Unreachable(self.url, "the server does not have JetStream enabled")
            raise _api_error(error, f"read stream {self.spec.name}")
        return body

    async def _check_stream(self) -> None:
        """Refuse a stream whose settings could drop or rewrite events (invariant 6)."""
        config = dict((await self._stream_info())["config"])
        if config.get("max_age"):  # nanoseconds on the wire, seconds in nats-py's messages
            config["max_age"] = config["max_age"] / 1e9
        problems = stream_problems(self.spec, config)
        if problems:
            raise StreamMisconfigured(self.spec.name, problems)

    async def last_sequence(self) -> int:
        return int((await self._stream_info())["state"]["last_seq"])

    # -- writing ---------------------------------------------------------------------

    async def append(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str,
        expected_last_subject_seq: int,
        retry_for: float = 10.0,
    ) -> int:
        """Append one message if the subject's last sequence is still the expected one.

        Idempotent, exactly as ``JetStreamLog.append``: a retry carries the same
        ``Nats-Msg-Id``, and a rejection of our own earlier write is success.
        """
        headers = {MSG_ID: msg_id, EXPECTED_LAST_SUBJECT_SEQUENCE: str(expected_last_subject_seq)}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                reply = await self.client.request(
                    subject, data, headers=headers, wait_s=min(self.timeout, 2.0)
                )
            except NoResponders:
                reason = "NoStreamResponseError"
            except TimeoutError:
                reason = "TimeoutError"
            except PermissionViolation as exc:
                raise PermissionDenied(f"write {subject}", str(exc)) from None
            except ProtocolError:
                raise WriteNotConfirmed(msg_id, "connection closed") from None
            else:
                ack: dict[str, Any] = json.loads(reply.data)
                error = ack.get("error")
                if error is None:
                    return int(ack["seq"])
                if error.get("err_code") in WRONG_LAST_SEQUENCE:
                    # On R1 a retry of a write that was stored but whose ack was lost
                    # is rejected by the expectation, not deduplicated: is it ours?
                    last = await self.last(subject)
                    if last is not None and last.msg_id == msg_id:
                        return last.seq
                    raise WrongLastSequence(subject)
                if error.get("err_code") != OWN_WRITE_IN_FLIGHT:
                    raise _api_error(error, f"append to {subject}")
                reason = "the first attempt still in flight"
            denied = self._permission_error()
            if denied is not None:
                raise PermissionDenied(f"write {subject}", denied)
            if loop.time() >= deadline:
                raise WriteNotConfirmed(msg_id, f"{reason} for {retry_for:.0f} s")
            await asyncio.sleep(0.2)

    def _permission_error(self) -> str | None:
        err = self.client.last_error
        if err is not None and "permissions violation" in err.lower():
            return err.strip("'\" ")
        return None

    # -- reading ---------------------------------------------------------------------

    async def _read_request(self, subject: str, payload: bytes, what: str) -> Reply:
        try:
            return await self.client.request(subject, payload, wait_s=self.timeout)
        except (TimeoutError, NoResponders):
            raise ServerError(f"{what} timed out at {self.url}") from None
        except PermissionViolation as exc:
            raise PermissionDenied(what, str(exc)) from None
        except ProtocolError as exc:
            raise ServerError(f"{what} failed: {exc}") from None

    async def last(self, subject: str, *, retry_for: float = 10.0) -> StoredMessage | None:
        """The subject's last message, or None if the subject has none (direct get).

        Retried (it is only a read) while the server does not answer, for ``retry_for``
        seconds, as ``JetStreamLog.last`` does.
        """
        loop = asyncio.get_running_loop()
        deadline = loop.time() + retry_for
        while True:
            try:
                reply = await self.client.request(
                    f"$JS.API.DIRECT.GET.{self.spec.name}.{subject}", wait_s=self.timeout
                )
            except (TimeoutError, NoResponders):
                if loop.time() >= deadline:
                    raise ServerError(f"reading {subject} timed out at {self.url}") from None
                await asyncio.sleep(0.2)
                continue
            except PermissionViolation as exc:
                raise PermissionDenied(f"read {subject}", str(exc)) from None
            except ProtocolError:
                raise ServerError(f"reading {subject}: connection to {self.url} closed") from None
            if reply.status == "404":
                return None
            if reply.status is not None:
                raise ServerError(f"read {subject} failed: {reply.status} {reply.description}")
            return self._from_direct(reply)

    @staticmethod
    def _from_direct(reply: Reply) -> StoredMessage:
        headers = reply.headers
        return StoredMessage(
            seq=int(headers["Nats-Sequence"]),
            subject=headers["Nats-Subject"],
            data=reply.data,
            headers={k: v for k, v in headers.items() if k not in DIRECT_HEADERS},
            time_ns=parse_time_ns(headers["Nats-Time-Stamp"]),
        )

    async def last_per_subject(self, filter_subject: str) -> list[StoredMessage]:
        """The last message of every subject matching ``filter_subject``, in stream order.

        A push consumer with ``deliver_policy: last_per_subject``, read until it says
        nothing is pending; its consumer sequence is checked, so a gap is an error, not
        a silent loss. Messages carry no headers (listing does not need them).
        """
        messages: list[StoredMessage] = []
        return await self._consume(
            {"deliver_policy": "last_per_subject", "filter_subject": filter_subject},
            lambda seq, subject, data, time_ns: messages.append(
                StoredMessage(seq, subject, data, {}, time_ns)
            ),
            lambda: messages,
        )

    async def consume_all(
        self, filter_subject: str, deliver: Callable[[int, str, bytes, int], None]
    ) -> None:
        """Hand every stored message matching ``filter_subject`` to ``deliver``, in order.

        ``deliver(stream seq, subject, data, time ns)`` runs as each message arrives,
        until the consumer has nothing pending: everything stored when it was created,
        and perhaps some more. A gap in the consumer sequence raises ``ServerError``.
        """
        await self._consume(
            {"deliver_policy": "all", "filter_subject": filter_subject}, deliver, list
        )

    async def _consume(
        self,
        config: dict[str, Any],
        deliver: Callable[[int, str, bytes, int], None],
        result: Callable[[], list[StoredMessage]],
    ) -> list[StoredMessage]:
        client = self.client
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()
        expected_cseq = 1
        activity = 0  # messages and heartbeats received: progress, for the stall check

        def on_msg(subject: str, reply: str, header: bytes | None, data: bytes) -> None:
            nonlocal expected_cseq, activity
            activity += 1
            if done.done():
                return
            if header is not None and header.startswith(b"NATS/1.0 "):
                if reply:  # flow control: answer at once, the reader keeps up
                    client.publish(reply)
                return  # idle heartbeat
            sseq, cseq, time_ns, pending = ack_tokens(reply)
            if cseq != expected_cseq:
                done.set_exception(
                    ServerError(f"consumer skipped from {expected_cseq - 1} to {cseq}; retry")
                )
                return
            expected_cseq = cseq + 1
            deliver(sseq, subject, data, time_ns)
            if pending == 0:
                done.set_result(None)

        inbox = client.new_inbox()
        sid = client.subscribe(inbox, on_msg)
        consumer: str | None = None
        try:
            request = {
                "stream_name": self.spec.name,
                "config": {
                    **config,
                    "deliver_subject": inbox,
                    "ack_policy": "none",
                    "mem_storage": True,
                    "num_replicas": 1,
                    "flow_control": True,
                    "idle_heartbeat": 1_000_000_000,
                    "inactive_threshold": 10_000_000_000,
                },
            }
            reply = await self._read_request(
                f"$JS.API.CONSUMER.CREATE.{self.spec.name}",
                json.dumps(request).encode(),
                "create a consumer",
            )
            info: dict[str, Any] = json.loads(reply.data)
            if "error" in info:
                raise _api_error(info["error"], "create a consumer")
            consumer = str(info["name"])
            if not info.get("num_pending") and not done.done():
                done.set_result(None)
            # Heartbeats come every second while the consumer lives: silence is a stall.
            stall_after = max(self.timeout, 3.0)
            seen, quiet_since = -1, loop.time()
            while not done.done():
                if activity != seen:
                    seen, quiet_since = activity, loop.time()
                elif loop.time() - quiet_since > stall_after:
                    raise ServerError(f"reading the log stalled at {self.url}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(done), 1.0)
            done.result()
            return result()
        finally:
            client.unsubscribe(sid)
            if consumer is not None and not client.closed.is_set():
                client.publish(f"$JS.API.CONSUMER.DELETE.{self.spec.name}.{consumer}")
