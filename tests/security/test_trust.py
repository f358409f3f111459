"""Findings about who wrote what, each tried as a hostile writer would, with raw
nats-py beside skyctl: a forged actor, a name the server never checked, signatures that
do or do not hold, and escape sequences in an actor."""

from __future__ import annotations

import base64
import getpass
import json
import socket
import time
from pathlib import Path

import nats
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from nats.aio.client import Client as NatsClient

from events import STREAM_NAME, Service, ServiceCreated, encode, new_event_id, utc_now
from registry.jetstream.server import NatsServer
from registry.log.stored import chain_hash
from registry.services.proof import SIGNATURE, SIGNER, Signer, prove
from tests.creds import operator_setup
from tests.helpers import Lines, Result, skyctl, start
from tests.servers import PASSWORDS, auth_server


def history(url: str, name: str, *args: str, ns: str = "default") -> list[dict[str, object]]:
    result = skyctl("history", "svc", name, "-n", ns, "-o", "json", *args, url=url)
    assert result.code == 0, result.err
    items: list[dict[str, object]] = json.loads(result.out)
    return items


def proofs(url: str, name: str, *args: str, ns: str = "default") -> list[str]:
    return [item["proof"]["status"] for item in history(url, name, *args, ns=ns)]  # type: ignore[index]


async def chained_create(nc: NatsClient, subject: str, name: str, actor: str, ns: str) -> bytes:
    """A create correctly chained to the subject's last message, as a hostile writer with
    publish rights on the subject can make it: only the actor is a lie."""
    js = nc.jetstream()
    try:
        last = await js.get_last_msg(STREAM_NAME, subject, direct=True)
        prev = chain_hash(last.data or b"")
    except nats.js.errors.NotFoundError:
        prev = None
    event = ServiceCreated(
        id=new_event_id(), time=utc_now(), actor=actor, prev=prev,
        service=Service(namespace=ns, name=name),
    )  # fmt: skip
    return encode(event)


def test_an_unchecked_user_name_is_not_recorded_as_the_actor(url: str, ns: str) -> None:
    """On a server without users, `--user bob` is accepted and proves nothing."""
    made = skyctl("create", "svc", "bob-s", "-n", ns, "--user", "bob", "--password", "x", url=url)
    assert made.code == 0, made.err
    actor = history(url, "bob-s", ns=ns)[0]["event"]["actor"]  # type: ignore[index]
    assert actor == f"{getpass.getuser()}@{socket.gethostname()}"


async def test_a_forged_actor_shows_as_unproven_and_fails_a_trusting_audit(
    tmp_path: Path,
) -> None:
    with auth_server(tmp_path) as server:
        url = server.url
        admin = ["--user", "admin", "--password", PASSWORDS["admin"]]
        assert skyctl("create", "svc", "cart", "-n", "shop", *admin, url=url).code == 0
        subject = "skyflow.svc.shop.cart"
        # shop-writer may write in shop; it writes a delete-less "create" claiming admin.
        nc = await nats.connect(
            url,
            user="shop-writer",
            password=PASSWORDS["shop-writer"],
            inbox_prefix="_INBOX_shop-writer",
        )
        try:
            assert skyctl("delete", "svc", "cart", "-n", "shop", *admin, url=url).code == 0
            data = await chained_create(nc, subject, "cart", "admin", "shop")
            await nc.jetstream().publish(subject, data)
        finally:
            await nc.close()
        items = history(url, "cart", *admin, ns="shop")
        assert [i["event"]["actor"] for i in items] == ["admin", "admin", "admin"]  # type: ignore[index]
        assert proofs(url, "cart", *admin, ns="shop") == ["unproven"] * 3
        table = skyctl("history", "svc", "cart", "-n", "shop", *admin, url=url)
        # Nothing on this server signs: the tables say so ("-"), with no error...
        assert [line.split()[2:4] for line in table.lines[1:]] == [["admin", "-"]] * 3
        wide = skyctl("get", "svc", "cart", "-n", "shop", "-o", "wide", *admin, url=url)
        assert wide.lines[1].split()[-1] == "-"
        # ...and to a reader who trusts keys, unsigned is unproven.
        trusting = ["--trust", str(tmp_path / "none.keys"), *admin]
        (tmp_path / "none.keys").write_text("# no one signs on this server\n")
        table = skyctl("history", "svc", "cart", "-n", "shop", *trusting, url=url)
        assert [line.split()[2:4] for line in table.lines[1:]] == [["admin", "unproven"]] * 3
        # The chain holds (the forger chained it correctly), so a plain audit passes...
        assert skyctl("audit", "verify", *admin, url=url).code == 0
        # ...and an auditor who trusts keys sees that nothing proves who wrote them.
        keys = tmp_path / "trusted.keys"
        keys.write_text("# no one signs on this server\n")
        audit = skyctl("audit", "verify", "--trust", str(keys), *admin, url=url)
        assert audit.code == 1
        assert "UNPROVEN seq" in audit.out and "actor 'admin' is unproven" in audit.out
        assert "unverified actor" in audit.err


@pytest.fixture
def operator_server(tmp_path: Path) -> tuple[NatsServer, Path, Path]:
    now = int(time.time())
    # Two more users of the account: one whose JWT has expired, one not yet valid.
    lapsed = {"old": {"exp": now - 3600}, "early": {"nbf": now + 3600}}
    operator, creds = operator_setup(tmp_path, "carol", lapsed)
    config = tmp_path / "server.conf"
    config.write_text(
        "listen: 127.0.0.1:4222\njetstream { store_dir: $SKYFLOW_STORE_DIR }\n"
        f"include ./{operator.name}\n"
    )
    issuer = json.loads(base64.urlsafe_b64decode(Signer.from_creds(creds).jwt.split(".")[1] + "=="))
    keys = tmp_path / "trusted.keys"
    keys.write_text(f"{issuer['iss']}  # the registry account\n")
    return NatsServer(tmp_path / "store", config=config), creds, keys


async def test_a_creds_writer_signs_and_an_auditor_verifies(
    operator_server: tuple[NatsServer, Path, Path],
) -> None:
    server, creds, keys = operator_server
    with server:
        url, auth = server.url, ["--creds", str(creds)]
        assert skyctl("create", "svc", "signed", *auth, url=url).code == 0
        assert skyctl("delete", "svc", "signed", *auth, url=url).code == 0
        assert proofs(url, "signed", *auth) == ["signed", "signed"]  # valid, key not trusted
        assert proofs(url, "signed", *auth, "--trust", str(keys)) == ["verified", "verified"]
        events = skyctl("events", "--trust", str(keys), *auth, url=url)
        assert [line.split()[4] for line in events.lines[1:]] == ["verified", "verified"]
        audit = skyctl("audit", "verify", "--trust", str(keys), *auth, url=url)
        assert audit.code == 0, audit.out + audit.err
        # The two events and the two records of their cluster IP (taken, then freed).
        assert "actors: 4 verified, 0 signed, 0 unproven" in audit.out

        # carol's own signature, carried over onto an event that names someone else,
        # and onto bytes it did not sign: both are forgeries, and audit says so.
        nc = await nats.connect(url, user_credentials=str(creds))
        try:
            js = nc.jetstream()
            signer = Signer.from_creds(creds)
            subject = "skyflow.svc.default.other"
            data = await chained_create(nc, subject, "other", "admin", "default")
            await js.publish(subject, data, headers=signer.headers(subject, data))
            subject = "skyflow.svc.default.moved"
            data = await chained_create(nc, subject, "moved", signer.actor, "default")
            headers = signer.headers(subject, data)
            tampered = encode(
                ServiceCreated(
                    id=new_event_id(), time=utc_now(), actor=signer.actor,
                    service=Service(name="moved", cluster="elsewhere"),
                )
            )  # fmt: skip
            await js.publish(subject, tampered, headers=headers)
            # Half a signature: the signer's JWT without a signature.
            subject = "skyflow.svc.default.half"
            data = await chained_create(nc, subject, "half", signer.actor, "default")
            await js.publish(subject, data, headers={SIGNER: signer.jwt})
        finally:
            await nc.close()
        assert proofs(url, "other", *auth) == ["forged"]
        assert proofs(url, "moved", *auth) == ["forged"]
        assert proofs(url, "half", *auth) == ["forged"]
        audit = skyctl("audit", "verify", *auth, url=url)
        assert audit.code == 1
        broken = [line for line in audit.out.splitlines() if line.startswith("BROKEN")]
        assert len(broken) == 3
        assert "signed by carol" in broken[0] and "claims admin" in broken[0]
        assert "does not hold" in broken[1] and "half a signature" in broken[2]
        assert SIGNATURE not in audit.err


async def test_escape_sequences_in_an_actor_are_shown_not_obeyed(url: str, ns: str) -> None:
    actor = "\x1b[2K\x1b[1Aadmin\nSEQ 1 fake row"
    assert skyctl("init", url=url).code == 0  # the stream, whichever test runs first
    nc = await nats.connect(url)
    try:
        subject = f"skyflow.svc.{ns}.ansi"
        data = await chained_create(nc, subject, "ansi", actor, ns)
        await nc.jetstream().publish(subject, data)
    finally:
        await nc.close()
    outputs: list[Result] = [
        skyctl("history", "svc", "ansi", "-n", ns, url=url),
        skyctl("events", "-n", ns, url=url),
        skyctl("get", "svc", "ansi", "-n", ns, "-o", "wide", url=url),
    ]
    for result in outputs:
        assert result.code == 0, result.err
        assert "\x1b" not in result.out and "fake row" in result.out
        assert "\\x1b[2K\\x1b[1Aadmin\\nSEQ 1 fake row" in result.out
        assert len(result.lines) == 2  # the header and one row: no forged second row


def _nested_jwt(depth: int) -> str:
    """A user JWT whose claims are ``depth`` nested JSON lists: 53 KB at 20,000, within the
    stream's message size, and far past what a recursive JSON parser survives."""

    def b64(data: bytes) -> str:
        return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

    claims = b"[" * depth + b"]" * depth
    return f"{b64(b'{}')}.{b64(claims)}.{b64(bytes(64))}"


async def test_a_poisoned_signer_header_is_shown_as_forged_and_breaks_no_reader(
    tmp_path: Path,
) -> None:
    """A writer of one namespace stores an event whose ``Skyflow-Signer`` is a JWT of deeply
    nested JSON; every reader of the log, in every namespace, still answers, and shows
    the event as forged."""
    with auth_server(tmp_path) as server:
        url = server.url
        admin = ["--user", "admin", "--password", PASSWORDS["admin"]]
        viewer = ["--user", "viewer", "--password", PASSWORDS["viewer"]]
        viewer += ["--inbox-prefix", "_INBOX_viewer"]
        assert skyctl("init", *admin, url=url).code == 0
        assert skyctl("create", "svc", "web", "-n", "other", *admin, url=url).code == 0
        subject = "skyflow.svc.shop.poison"
        nc = await nats.connect(
            url,
            user="shop-writer",
            password=PASSWORDS["shop-writer"],
            inbox_prefix="_INBOX_shop-writer",
        )
        try:
            data = await chained_create(nc, subject, "poison", "shop-writer", "shop")
            signer = _nested_jwt(20_000)
            assert len(signer) > 50_000
            headers = {SIGNER: signer, SIGNATURE: "A" * 86}
            await nc.jetstream().publish(subject, data, headers=headers)
        finally:
            await nc.close()
        for args in (
            ["events", "-A"],
            ["events", "-A", "-o", "json"],
            ["history", "svc", "poison", "-n", "shop"],
            ["history", "svc", "poison", "-n", "shop", "-o", "yaml"],
            ["describe", "svc", "poison", "-n", "shop"],
            ["get", "svc", "-A", "-o", "wide"],
            ["get", "svc", "poison", "-n", "shop", "-o", "json"],
            ["get", "svc", "-n", "shop", "-o", "yaml"],
        ):
            result = skyctl(*args, *viewer, url=url)
            assert result.code == 0, (args, result.err[-2000:])
            assert "Traceback" not in result.err and "forged" in result.out, args
        wide = skyctl("get", "svc", "-A", "-o", "wide", *viewer, url=url)
        assert [line.split()[-1] for line in wide.lines[1:]] == ["unproven", "forged"]
        audit = skyctl("audit", "verify", *viewer, url=url)
        assert audit.code == 1 and "Traceback" not in audit.err, audit.err[-2000:]
        broken = [line for line in audit.out.splitlines() if line.startswith("BROKEN")]
        assert len(broken) == 1 and "skyflow.svc.shop.poison" in broken[0], audit.out
        assert "JWT" in broken[0] and len(broken[0]) < 300


async def test_a_replayed_signed_event_shows_as_replayed_wherever_its_proof_is_shown(
    operator_server: tuple[NatsServer, Path, Path],
) -> None:
    """A signed create, appended again after the service was deleted (anyone allowed to
    publish on the subject can resend stored bytes and headers): its signatures hold, but
    it is not where it was signed to be, so no reader shows it verified."""
    server, creds, keys = operator_server
    with server:
        url, writer = server.url, ["--creds", str(creds)]
        auth = [*writer, "--trust", str(keys)]
        assert skyctl("create", "svc", "again", *writer, url=url).code == 0
        assert skyctl("delete", "svc", "again", *writer, url=url).code == 0
        nc = await nats.connect(url, user_credentials=str(creds))
        try:
            js = nc.jetstream()
            subject = "skyflow.svc.default.again"
            first = await js.get_msg(STREAM_NAME, subject=subject, next=True, seq=1, direct=True)
            headers = {k: first.headers[k] for k in (SIGNER, SIGNATURE)}  # type: ignore[index]
            replay = await js.publish(subject, first.data or b"", headers=headers)
        finally:
            await nc.close()
        assert proofs(url, "again", *auth) == ["verified", "verified", "replayed"]
        detail = history(url, "again", *auth)[-1]["proof"]["detail"]  # type: ignore[index]
        assert "stored after seq" in detail, detail
        events = skyctl("events", *auth, url=url)
        assert [line.split()[4] for line in events.lines[1:]] == ["verified"] * 2 + ["replayed"]
        # Read from the replay on, the event's place is looked up, not assumed.
        since = skyctl("events", "--since", str(replay.seq), "-o", "json", *auth, url=url)
        assert json.loads(since.out)["proof"]["status"] == "replayed", since.out
        wide = skyctl("get", "svc", "again", "-o", "wide", *auth, url=url)
        assert wide.lines[1].split()[-1] == "replayed", wide.out
        listed = skyctl("get", "svc", "-A", "-o", "json", *auth, url=url)
        assert json.loads(listed.out)["items"][0]["metadata"]["createdByProof"] == "replayed"
        described = skyctl("describe", "svc", "again", *auth, url=url)
        assert "(replayed)" in described.out, described.out
        past = skyctl("get", "svc", "again", "--at", str(replay.seq), "-o", "json", *auth, url=url)
        assert json.loads(past.out)["metadata"]["createdByProof"] == "replayed", past.out
        watch = Lines(start("get", "svc", "again", "-w", "-o", "json", *auth, url=url))
        added = json.loads(watch.next(30))
        assert added["object"]["metadata"]["createdByProof"] == "replayed", added
        audit = skyctl("audit", "verify", *auth, url=url)
        assert audit.code == 1
        assert any(
            line.startswith(f"BROKEN seq {replay.seq}") and "signed as its subject's first" in line
            for line in audit.out.splitlines()
        ), audit.out
        assert "1 replayed" in audit.err


async def test_a_signer_whose_jwt_has_expired_or_is_not_yet_valid_is_not_verified(
    operator_server: tuple[NatsServer, Path, Path],
) -> None:
    """Events signed, correctly chained, with the key of a user whose JWT had expired (or
    was not yet valid) when the server stored them, sent over carol's valid connection
    (the server would not let such a user connect itself, but a key outlives its JWT)."""
    server, creds, keys = operator_server
    with server:
        url, auth = server.url, ["--creds", str(creds), "--trust", str(keys)]
        assert skyctl("init", "--creds", str(creds), url=url).code == 0
        nc = await nats.connect(url, user_credentials=str(creds))
        try:
            js = nc.jetstream()
            for user in ("old", "early"):
                signer = Signer.from_creds(creds.parent / f"{user}.creds")
                subject = f"skyflow.svc.default.by-{user}"
                data = await chained_create(nc, subject, f"by-{user}", signer.actor, "default")
                await js.publish(subject, data, headers=signer.headers(subject, data))
        finally:
            await nc.close()
        assert proofs(url, "by-old", *auth) == ["expired"]
        assert "expired at" in history(url, "by-old", *auth)[0]["proof"]["detail"]  # type: ignore[index]
        assert proofs(url, "by-early", *auth) == ["expired"]
        assert "not valid until" in history(url, "by-early", *auth)[0]["proof"]["detail"]  # type: ignore[index]
        wide = skyctl("get", "svc", "-o", "wide", *auth, url=url)
        assert [line.split()[-1] for line in wide.lines[1:]] == ["expired", "expired"]
        audit = skyctl("audit", "verify", *auth, url=url)
        assert audit.code == 1 and "2 expired" in audit.err, audit.out + audit.err


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


_ODD_CLAIMS = [
    b"[" * 5000 + b"]" * 5000,
    b'{"a":' * 3000 + b"1" + b"}" * 3000,
    b'{"sub": "' + b"\\" * 4000 + b'"}',
    b'{"sub": 1e400, "iss": []}',
    b'{"exp": ' + b"9" * 5000 + b"}",
    b'{"exp": 1e400}',
    b'{"exp": true}',
    b"\xff\xfe\x00",
    b"null",
    b'"just a string"',
]


@given(
    st.one_of(
        st.text(max_size=300),
        st.sampled_from(
            [f"{_b64(b'{}')}.{_b64(claims)}.{_b64(bytes(64))}" for claims in _ODD_CLAIMS]
        ),
        st.builds(
            lambda a, b, c: f"{_b64(a)}.{_b64(b)}.{_b64(c)}",
            st.binary(max_size=200),
            st.binary(max_size=200),
            st.binary(max_size=80),
        ),
    ),
    st.one_of(st.text(max_size=120), st.just("A" * 86)),
)
@settings(max_examples=300, deadline=None)
def test_any_signer_header_gets_a_status_never_an_error(signer: str, signature: str) -> None:
    proof = prove("skyflow.svc.a.b", b"\x80", {SIGNER: signer, SIGNATURE: signature}, "x", None)
    assert proof.status == "forged" and len(proof.detail) < 300


def test_a_signer_header_is_refused_by_size_and_depth_before_it_is_decoded() -> None:
    huge = f"{_b64(b'{}')}.{_b64(b'[' * 40000 + b']' * 40000)}.{_b64(bytes(64))}"
    started = time.perf_counter()
    proof = prove("s", b"", {SIGNER: huge, SIGNATURE: "A" * 86}, "x", None)
    assert proof.status == "forged" and "at most 8192" in proof.detail
    header = _b64(b'{"alg": "ed25519-nkey"}')
    deep = f"{header}.{_b64(b'[' * 100 + b']' * 100)}.{_b64(bytes(64))}"
    proof = prove("s", b"", {SIGNER: deep, SIGNATURE: "A" * 86}, "x", None)
    assert proof.status == "forged" and "nests deeper" in proof.detail, proof.detail
    assert time.perf_counter() - started < 5
    odd: dict[str, object] = {SIGNER: 12, SIGNATURE: b"x"}
    assert prove("s", b"", odd, "x", None).status == "forged"  # type: ignore[arg-type]
