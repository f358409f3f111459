"""nats CLI contexts (ADR-21) through the real CLI on a real server: a user with only a
context, what beats what, ``skyctl config``'s verbs, and secrets never printed."""

from __future__ import annotations

import json
import stat
from collections.abc import Iterator
from pathlib import Path

import nkeys
import pytest

from cli.connection import Connection
from registry.jetstream.server import NatsServer
from tests.helpers import NatsHome, Result, skyctl
from tests.servers import PASSWORDS, auth_server, tls_files

SECRET = PASSWORDS["shop-writer"]
DEAD = "nats://127.0.0.1:1"  # nothing listens there


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NatsServer]:
    with auth_server(tmp_path_factory.mktemp("auth")) as running:
        # The first use makes the streams, which only an admin may.
        made = skyctl("init", "--user", "admin", "--password", PASSWORDS["admin"], url=running.url)
        assert made.code == 0, made
        yield running


@pytest.fixture
def home(tmp_path: Path) -> NatsHome:
    return NatsHome(tmp_path / "home")


def run(home: NatsHome, *args: str, **env: str) -> Result:
    """skyctl with only the home's contexts (no NATS_URL, no credentials) and ``env``."""
    return skyctl(*args, url=None, env={**home.env, **env})


def one_line_error(result: Result, code: int, *words: str) -> None:
    assert result.code == code, result
    assert result.out == ""
    assert result.err.startswith("error: ") and result.err.count("\n") == 1, result.err
    assert "Traceback" not in result.err
    for word in words:
        assert word in result.err, result.err


def shop_writer(home: NatsHome, server: NatsServer, name: str = "shop") -> None:
    home.write(
        name, description="the shop team", url=server.url, user="shop-writer", password=SECRET
    )


def test_a_restricted_user_with_only_a_context_reads_and_writes(
    home: NatsHome, server: NatsServer
) -> None:
    # No flags, no environment, no inbox prefix: the selected context, and skyctl finds
    # the inbox prefix the server allows this user by itself.
    shop_writer(home, server)
    home.select("shop")
    created = run(home, "create", "svc", "ctx-cart", "-n", "shop")
    assert created.code == 0, created
    assert created.out == "service/ctx-cart created\n"
    assert "ctx-cart" in run(home, "get", "svc", "-n", "shop").out
    history = json.loads(run(home, "history", "svc", "ctx-cart", "-n", "shop", "-o", "json").out)
    assert [item["event"]["actor"] for item in history] == ["shop-writer"]
    # Its permissions are still the server's: another namespace is refused.
    one_line_error(run(home, "create", "svc", "ctx-cart", "-n", "ops"), 3, "permission denied")


def test_flags_without_an_inbox_prefix_find_the_users_own(server: NatsServer) -> None:
    for user in ("viewer", "shop-writer"):
        result = skyctl(
            "get", "svc", "-n", "shop", "--user", user, "--password", PASSWORDS[user],
            url=server.url,
        )  # fmt: skip
        assert result.code == 0, result
    # A prefix someone chose is used as given, never replaced.
    refused = skyctl(
        "get", "svc", "--user", "viewer", "--password", PASSWORDS["viewer"],
        "--inbox-prefix", "_INBOX", url=server.url,
    )  # fmt: skip
    one_line_error(refused, 3, "permission denied", "inbox prefix")


def test_the_contexts_namespace_is_the_default_and_n_beats_it(
    home: NatsHome, server: NatsServer
) -> None:
    shop_writer(home, server)
    assert run(home, "config", "set-context", "shop", "--namespace", "shop").code == 0
    assert run(home, "config", "use-context", "shop").code == 0
    assert run(home, "create", "svc", "ns-default").code == 0
    assert "ns-default" in run(home, "get", "svc", "ns-default", "-n", "shop").out
    assert run(home, "create", "svc", "ns-flag", "-n", "shop-staging").code == 0
    assert "ns-flag" in run(home, "get", "svc", "-n", "shop-staging").out
    assert "ns-flag" not in run(home, "get", "svc").out
    # And a manifest that names no namespace (-f) goes there too.
    manifest = "apiVersion: skyflow.io/v1\nkind: Service\nmetadata:\n  name: ns-file\nspec: {}\n"
    applied = skyctl("apply", "-f", "-", url=None, env=home.env, stdin=manifest)
    assert applied.code == 0, applied
    assert "ns-file" in run(home, "get", "svc").out


def test_flag_beats_environment_beats_selected_context(home: NatsHome, server: NatsServer) -> None:
    # Three admin contexts, each with a namespace of its own holding one service: which
    # service a plain `get svc` lists tells which context it used.
    for name in ("picked", "env", "selected"):
        home.write(name, url=server.url, user="admin", password=PASSWORDS["admin"])
        assert run(home, "config", "set-context", name, "-n", f"ns-{name}").code == 0
        assert run(home, "create", "svc", f"in-{name}", "--context", name).code == 0
    home.select("selected")

    def used(*args: str, **env: str) -> list[str]:
        result = run(home, "get", "svc", "-o", "name", *args, **env)
        assert result.code == 0, result
        return result.lines

    assert used() == ["service/in-selected"]
    assert used(SKYFLOW_CONTEXT="env") == ["service/in-env"]
    assert used(NATS_CONTEXT="env") == ["service/in-env"]
    assert used(SKYFLOW_CONTEXT="env", NATS_CONTEXT="picked") == ["service/in-env"]
    assert used("--context", "picked", SKYFLOW_CONTEXT="env") == ["service/in-picked"]
    assert used("--context", "picked", "-n", "ns-env") == ["service/in-env"]
    # --server beats the context's url, and so does NATS_URL.
    home.write("dead", url=DEAD, user="shop-writer", password=SECRET)
    one_line_error(run(home, "get", "svc", "-n", "shop", "--context", "dead"), 3, DEAD)
    dead = ("get", "svc", "-n", "shop", "--context", "dead")
    assert run(home, *dead, "--server", server.url).code == 0
    assert run(home, *dead, NATS_URL=server.url).code == 0
    # A user flag beats the context's: the viewer may not write where shop-writer may.
    as_viewer = run(
        home, "create", "svc", "viewer-try", "-n", "shop", "--context", "picked",
        "--user", "viewer", "--password", PASSWORDS["viewer"],
    )  # fmt: skip
    one_line_error(as_viewer, 3, "permission denied")


def test_xdg_config_home_is_where_the_contexts_are(server: NatsServer, tmp_path: Path) -> None:
    elsewhere = NatsHome(tmp_path / "xdg-home")
    shop_writer(elsewhere, server)
    elsewhere.select("shop")
    env = {"HOME": str(tmp_path / "empty"), "XDG_CONFIG_HOME": str(elsewhere.config)}
    assert skyctl("get", "svc", "-n", "shop", url=None, env=env).code == 0


def test_set_and_use_context_keep_the_nats_clis_file(home: NatsHome, server: NatsServer) -> None:
    home.write(
        "shop", description="team", url=DEAD, user="shop-writer", password=SECRET,
        color_scheme="dark", a_future_natscli_key={"nested": [1, 2]},
    )  # fmt: skip
    home.select("other")
    home.write("other", url=DEAD)
    changed = run(home, "config", "set-context", "shop", "--server", server.url, "-n", "shop")
    assert changed.code == 0 and changed.out == 'Context "shop" modified.\n', changed
    kept = home.read("shop")
    assert kept == {
        "description": "team",
        "url": server.url,
        "user": "shop-writer",
        "password": SECRET,
        "color_scheme": "dark",
        "a_future_natscli_key": {"nested": [1, 2]},
    }
    path = home.contexts / "shop.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert list(home.contexts.glob(".*")) == []  # no temporary file left behind
    # What natscli decodes into its settings struct: every known field a string.
    for key in ("description", "url", "user", "password", "color_scheme"):
        assert isinstance(kept[key], str)
    # The namespace is kept in skyctl's own file, not in the nats CLI's.
    assert "namespace" not in kept
    assert json.loads((home.config / "skyflow" / "contexts" / "shop.json").read_text()) == {
        "namespace": "shop"
    }

    switched = run(home, "config", "use-context", "shop")
    assert switched.out == 'Switched to context "shop".\n', switched
    assert home.selected == "shop"
    assert (home.config / "nats" / "previous-context.txt").read_text() == "other"
    assert run(home, "config", "current-context").out == "shop\n"
    assert run(home, "config", "current-context", SKYFLOW_CONTEXT="other").out == "other\n"
    assert run(home, "get", "svc").code == 0  # the namespace shop, as shop-writer

    made = run(home, "config", "set-context", "new", "--user", "viewer", "--password", "x")
    assert made.out == 'Context "new" created.\n', made
    assert home.read("new") == {"url": "nats://127.0.0.1:4222", "user": "viewer", "password": "x"}
    assert stat.S_IMODE((home.contexts / "new.json").stat().st_mode) == 0o600
    # An empty value removes a setting; --current changes the selected context.
    assert run(home, "config", "set-context", "new", "--password", "").code == 0
    assert "password" not in home.read("new")
    assert run(home, "config", "set-context", "--current", "-n", "shop-staging").code == 0
    assert json.loads((home.config / "skyflow" / "contexts" / "shop.json").read_text()) == {
        "namespace": "shop-staging"
    }

    listed = run(home, "config", "get-contexts")
    assert listed.code == 0, listed
    assert listed.lines[0].split() == ["CURRENT", "NAME", "SERVER", "USER", "NAMESPACE"]
    rows = {line.lstrip("* ").split()[0]: line for line in listed.lines[1:]}
    assert sorted(rows) == ["new", "other", "shop"]
    assert rows["shop"].startswith("*") and rows["shop"].split()[1:] == [
        "shop", server.url, "shop-writer", "shop-staging",
    ]  # fmt: skip
    assert not rows["new"].startswith("*")
    assert run(home, "config", "get-contexts", "-o", "name").lines == ["new", "other", "shop"]


def test_missing_and_malformed_contexts_are_one_line_naming_them(
    home: NatsHome, server: NatsServer
) -> None:
    one_line_error(run(home, "get", "svc", "--context", "nope"), 2, '"nope"', "no such context")
    home.select("gone")
    one_line_error(run(home, "get", "svc"), 2, '"gone"', "no such context")
    (home.contexts / "broken.json").write_text(f'{{"url": "{server.url}", "password": "{SECRET}",')
    for result in (
        run(home, "get", "svc", SKYFLOW_CONTEXT="broken"),
        run(home, "get", "svc", "--context", "broken"),
        run(home, "config", "set-context", "broken", "--user", "x"),
    ):
        one_line_error(result, 2, '"broken"', "not valid JSON")
        assert SECRET not in result.err
    home.write("odd", url=server.url, user=["not", "text"])
    one_line_error(run(home, "get", "svc", "--context", "odd"), 2, '"odd"', "user")
    one_line_error(run(home, "get", "svc", "--context", "../x"), 2, "../x")
    one_line_error(run(home, "config", "use-context", "nope"), 2, '"nope"')
    # A broken selected context does not stand in the way of one chosen by name, even
    # for a verb whose group reads its own -n first (create, for -f).
    home.select("broken")
    home.write("good", url=server.url, user="admin", password=PASSWORDS["admin"])
    made = run(home, "create", "svc", "ctx-good", "-n", "shop", "--context", "good")
    assert made.code == 0, made
    assert run(home, "delete", "svc", "ctx-good", "-n", "shop", "--context", "good").code == 0


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("jetstream_domain", "hub"),
        ("jetstream_api_prefix", "$JS.hub.API"),
        ("nsc", "nsc://op/acc/user"),
        ("socks_proxy", "127.0.0.1:1080"),
        ("user_jwt", "eyJ..."),
        ("tls_first", True),
    ],
)
def test_what_skyctl_cannot_honour_is_refused_naming_the_field(
    home: NatsHome, server: NatsServer, field: str, value: object
) -> None:
    home.write("far", url=server.url, **{field: value})
    one_line_error(run(home, "get", "svc", "--context", "far"), 2, '"far"', field)


def test_a_password_never_appears_in_any_output(home: NatsHome, server: NatsServer) -> None:
    home.write("shop", url=f"nats://shop-writer:{SECRET}@127.0.0.1:{server.port}")
    home.write("tok", url=server.url, token=SECRET)
    home.write("pw", url=server.url, user="viewer", password=SECRET)  # the wrong one
    home.select("pw")
    results = [
        run(home, "config", "get-contexts"),
        run(home, "config", "current-context"),
        run(home, "get", "svc"),  # refused: the credentials are wrong
        run(home, "get", "svc", "--context", "tok"),
        run(home, "get", "svc", "--context", "shop", "-n", "shop"),
        run(home, "get", "--help"),
        run(home, "config", "set-context", "pw", "--password", SECRET),
        run(home, "config", "set-context", "--help"),
    ]
    assert results[0].code == 0 and "shop-writer:***@" in results[0].out
    assert results[2].code == 3 and "refused the credentials" in results[2].err
    for result in results:
        assert SECRET not in result.out + result.err, result
    # Nor in what a debugging session or a log line shows of the objects holding it.
    resolved = Connection(user="viewer", password=SECRET, token=SECRET)
    assert SECRET not in repr(resolved) + repr(resolved.credentials())


def test_get_contexts_lists_an_unreadable_context_and_says_why(home: NatsHome) -> None:
    home.write("fine", url=DEAD)
    (home.contexts / "broken.json").write_text(f'{{"password": "{SECRET}"')
    listed = run(home, "config", "get-contexts")
    assert listed.code == 0, listed
    assert [line.split()[:2] for line in listed.lines[1:]] == [
        ["broken", "(unreadable)"],
        ["fine", DEAD],
    ]
    assert listed.err.startswith('warning: invalid context "broken"') and SECRET not in listed.err


def test_an_nkey_seed_in_a_context_connects(home: NatsHome, tmp_path: Path) -> None:
    seed = nkeys.encode_seed(bytes(32), nkeys.PREFIX_BYTE_USER)
    public = nkeys.from_seed(bytearray(seed)).public_key.decode()
    (tmp_path / "user.nk").write_bytes(seed)
    config = tmp_path / "nkey.conf"
    config.write_text(
        "jetstream { store_dir: $SKYFLOW_STORE_DIR }\n"
        f"authorization {{ users = [ {{ nkey: {public} }} ] }}\n"
    )
    with NatsServer(tmp_path / "store", config=config) as server:
        home.write("nk", url=server.url, nkey=str(tmp_path / "user.nk"))
        assert run(home, "create", "svc", "by-nkey", "--context", "nk").code == 0
        assert "by-nkey" in run(home, "get", "svc", "--context", "nk").out
        one_line_error(run(home, "get", "svc", "--server", server.url), 3, "refused")


def test_a_client_certificate_in_a_context_connects(home: NatsHome, tmp_path: Path) -> None:
    files = tls_files(tmp_path / "tls")  # the server's, and (same CA) one for the client
    client = tls_files(tmp_path / "client")
    config = tmp_path / "mtls.conf"
    config.write_text(
        "jetstream { store_dir: $SKYFLOW_STORE_DIR }\n"
        f'tls {{ cert_file: "{files.cert}", key_file: "{files.key}", '
        f'ca_file: "{client.ca}", verify: true, timeout: 2 }}\n'
    )
    with NatsServer(tmp_path / "store", config=config) as server:
        url = f"tls://127.0.0.1:{server.port}"
        home.write("mtls", url=url, ca=str(files.ca), cert=str(client.cert), key=str(client.key))
        result = run(home, "init", "--context", "mtls")  # (a read would find no registry)
        assert result.code == 0, result
        assert run(home, "get", "svc", "--context", "mtls").code == 0
        home.write("no-cert", url=url, ca=str(files.ca))
        assert run(home, "get", "svc", "--context", "no-cert").code == 3
        home.write("half", url=url, ca=str(files.ca), cert=str(client.cert))
        one_line_error(run(home, "get", "svc", "--context", "half"), 2, "--tlskey")
