"""The host's OAuth2 broker against the fake identity provider over real HTTP, and a real plugin
worker whose ``net.fetch(credential=...)`` gets a fresh token injected (refreshed before expiry,
and once more after a 401) without ever seeing one."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from plugport.errors import (
    AuthenticationError,
    InvalidInputError,
    NetworkFetchError,
    NotFoundError,
    PermissionDeniedError,
)
from plugport.host.secrets._oauth2_rules import STATE_TTL_S, code_challenge
from plugport.host.secrets.oauth2 import (
    MemoryStates,
    OAuth2Broker,
    OAuth2TokenSource,
    ProviderReach,
    SqliteStates,
    providers_of,
)
from plugport.manifest import Manifest, parse_manifest
from plugport.runtime.audit import MemoryAuditLog
from plugport.runtime.capabilities._record import NetOptions
from plugport.runtime.capabilities._resolver import StaticResolver
from plugport.runtime.capabilities._secret_source import MemorySecrets
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from plugport.testing.fake_idp import FakeIdP
from tests.runtime._supervised import config_for, write_plugin

PLUGIN = "acme.idp"
REDIRECT = "http://127.0.0.1:9/oauth2/callback"
NAME = "idp.example"  # resolved to 127.0.0.1 for the worker's fetches


def manifest_for(idp: FakeIdP, grant: str = "authorization_code") -> str:
    port = idp.endpoint.split(":")[1]
    authorize = f'authorize_url = "{idp.authorize_url}"\n' if grant == "authorization_code" else ""
    return f"""
[credentials.idp]
kind = "oauth2"
hosts = ["{NAME}:{port}/api/"]
[credentials.idp.oauth2]
grant = "{grant}"
{authorize}token_url = "{idp.token_url}"
revoke_url = "{idp.revoke_url}"
scopes = ["read", "write"]
"""


def manifest(idp: FakeIdP, grant: str = "authorization_code") -> Manifest:
    head = f'name = "{PLUGIN}"\nversion = "1.0.0"\nentry = "main:Main"\n'
    return parse_manifest(head + manifest_for(idp, grant))


@pytest.fixture
def idp() -> Iterator[FakeIdP]:
    with FakeIdP(token_lifetime_s=3600) as idp:
        yield idp


def broker_for(
    idp: FakeIdP,
    grant: str = "authorization_code",
    found: Manifest | None = None,
    **options: object,
) -> tuple[OAuth2Broker, MemorySecrets, MemoryAuditLog]:
    """A broker for ``acme.idp`` (its manifest: ``found``, else :func:`manifest`) that may reach
    the fake provider on 127.0.0.1 because the operator listed it (unless ``reach`` says
    otherwise)."""
    store, audit = MemorySecrets(), MemoryAuditLog()
    store.set(PLUGIN, "idp.client_id", idp.client_id.encode())
    store.set(PLUGIN, "idp.client_secret", idp.client_secret.encode())
    found = found if found is not None else manifest(idp, grant)

    def providers(plugin: str, credential: str):  # type: ignore[no-untyped-def]
        if plugin != PLUGIN:
            raise NotFoundError("installed plugin", plugin)
        return providers_of(found, credential)

    options.setdefault("reach", ProviderReach(private_targets={PLUGIN: (idp.endpoint,)}))
    broker = OAuth2Broker(store, providers, audit=audit, workspace="ws", **options)  # type: ignore[arg-type]
    return broker, store, audit


def code_flow(broker: OAuth2Broker, account: str = "alice") -> dict[str, object]:
    url, pending, provider = broker.begin(PLUGIN, "idp", account, "op", REDIRECT)
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge"] == [code_challenge(pending.verifier)]
    assert query["code_challenge_method"] == ["S256"]
    assert query["scope"] == ["read write"]
    assert provider.scopes == ["read", "write"]
    answer = httpx.get(url)
    back = parse_qs(urlsplit(answer.headers["location"]).query)
    claimed, problem = broker.states.claim(back["state"][0], broker.clock())
    assert problem is None
    assert claimed is not None
    return asyncio.run(broker.complete(claimed, back["code"][0], REDIRECT))


def no_secret_in(text: str, idp: FakeIdP) -> None:
    values = [t.value for t in idp.tokens.values()] + [idp.client_secret]
    leaked = [v for v in values if v in text]
    assert not leaked, "a token or the client secret was written out"


def test_code_flow_stores_tokens_and_lists_accounts_without_them(
    idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    broker, _, audit = broker_for(idp)
    shown = code_flow(broker)
    assert shown["account"] == "alice"
    assert shown["default"] is True
    assert shown["scopes"] == ["read", "write"]
    code_flow(broker, "bob")
    listed = broker.accounts(PLUGIN, "idp")
    assert [(a["account"], a["default"]) for a in listed] == [("alice", True), ("bob", False)]
    token = asyncio.run(broker.token(PLUGIN, "idp"))
    assert httpx.get(idp.api_url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert idp.grants == ["authorization_code", "authorization_code"]  # no refresh needed
    events = [e.reason for e in audit.query(plugin=PLUGIN)]
    assert any("op connected account 'alice'" in r for r in events)
    no_secret_in(caplog.text + repr(listed) + repr(events), idp)


def test_a_state_is_single_use_and_expires(idp: FakeIdP, tmp_path: Path) -> None:
    for states in (MemoryStates(), SqliteStates(tmp_path / "states.sqlite")):
        broker, _, _ = broker_for(idp, states=states)
        _, pending, _ = broker.begin(PLUGIN, "idp", "alice", "op", REDIRECT)
        assert states.claim("not-a-state", pending.created_at)[1].reason == "unknown"  # type: ignore[union-attr]
        late = states.claim(pending.state, pending.created_at + STATE_TTL_S + 1)
        assert late[1] is not None
        assert late[1].reason == "expired"
        first = states.claim(pending.state, pending.created_at + 1)
        assert first[1] is None
        again = states.claim(pending.state, pending.created_at + 2)
        assert again[1] is not None
        assert again[1].reason == "used"


def test_tokens_about_to_expire_are_refreshed_before_use(idp: FakeIdP) -> None:
    idp.token_lifetime_s = 30  # under the 60 s margin: every use refreshes first
    broker, store, _ = broker_for(idp)
    code_flow(broker)
    first = store.get(PLUGIN, "oauth2:idp:alice")
    token = asyncio.run(broker.token(PLUGIN, "idp"))
    assert idp.grants == ["authorization_code", "refresh_token"]
    assert store.get(PLUGIN, "oauth2:idp:alice") != first  # the rotated refresh token is kept
    assert httpx.get(idp.api_url, headers={"Authorization": f"Bearer {token}"}).status_code == 200
    asyncio.run(broker.token(PLUGIN, "idp"))  # the rotated refresh token works
    assert idp.grants[-1] == "refresh_token"


def test_a_revoked_refresh_token_asks_the_operator_to_reconnect(
    idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    broker, store, audit = broker_for(idp)
    code_flow(broker)
    idp.revoke_all()
    idp.token_lifetime_s = 30
    idp.expire_access_tokens()
    # The host does not know yet; a 401 from the target is what tells it.
    token = store.get(PLUGIN, "oauth2:idp:alice")
    with pytest.raises(AuthenticationError, match=r"reconnects it with: plugport oauth2 connect"):
        asyncio.run(broker.token(PLUGIN, "idp", refused=_access(token)))
    refused = audit.query(plugin=PLUGIN, kind="refuse")
    assert refused
    assert "invalid_grant" in refused[0].reason
    assert store.get(PLUGIN, "oauth2:idp:alice") == token  # nothing changed
    no_secret_in(caplog.text + refused[0].reason, idp)


def _access(value: bytes) -> str:
    import json

    return str(json.loads(value)["access_token"])


def test_revoke_at_the_provider_then_forget(idp: FakeIdP) -> None:
    broker, store, _ = broker_for(idp)
    code_flow(broker)
    code_flow(broker, "bob")
    token = asyncio.run(broker.token(PLUGIN, "idp"))
    answer = asyncio.run(broker.revoke(PLUGIN, "idp", "alice", "op"))
    assert answer == {"account": "alice", "revoked_at_provider": True}
    assert httpx.get(idp.api_url, headers={"Authorization": f"Bearer {token}"}).status_code == 401
    assert [a["account"] for a in broker.accounts(PLUGIN, "idp")] == ["bob"]
    assert broker.accounts(PLUGIN, "idp")[0]["default"] is True
    with pytest.raises(NotFoundError):
        store.get(PLUGIN, "oauth2:idp:alice")
    with pytest.raises(NotFoundError, match="connected accounts: bob"):
        asyncio.run(broker.revoke(PLUGIN, "idp", "alice", "op"))
    asyncio.run(broker.revoke(PLUGIN, "idp", "bob", "op"))
    with pytest.raises(NotFoundError, match=r"plugport oauth2 connect acme\.idp idp"):
        asyncio.run(broker.token(PLUGIN, "idp"))


def test_client_credentials_connect_at_once_and_refetch_when_stale(idp: FakeIdP) -> None:
    broker, _, _ = broker_for(idp, grant="client_credentials")
    with pytest.raises(InvalidInputError, match="client_credentials grant"):
        broker.begin(PLUGIN, "idp", "default", "op", REDIRECT)
    shown = asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    assert shown["refreshable"] is False
    token = asyncio.run(broker.token(PLUGIN, "idp"))
    again = asyncio.run(broker.token(PLUGIN, "idp", refused=token))
    assert again != token
    assert idp.grants == ["client_credentials", "client_credentials"]


def test_provider_throttling_and_bad_clients_are_our_errors(idp: FakeIdP) -> None:
    broker, store, _ = broker_for(idp, grant="client_credentials")
    idp.throttle(1, retry_after_s=0)
    asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))  # waited, then got one
    idp.throttle(1, retry_after_s=30)
    with pytest.raises(NetworkFetchError, match=r"rate limiting \(HTTP 429\).*30 s"):
        asyncio.run(broker.connect_client(PLUGIN, "idp", "other", "op"))
    store.set(PLUGIN, "idp.client_secret", b"wrong-secret-value")
    with pytest.raises(AuthenticationError, match="invalid_client") as caught:
        asyncio.run(broker.connect_client(PLUGIN, "idp", "other", "op"))
    assert "wrong-secret-value" not in str(caught.value)
    store.delete(PLUGIN, "idp.client_id")
    with pytest.raises(NotFoundError, match=r"plugport secret set acme\.idp idp\.client_id"):
        asyncio.run(broker.connect_client(PLUGIN, "idp", "other", "op"))
    assert [a["account"] for a in broker.accounts(PLUGIN, "idp")] == ["default"]


# --- reaching the provider: the plugin's manifest names it, so the SSRF checks apply ------------

POLICY = "[private-targets] in /srv/home/policy.toml"


def renamed(idp: FakeIdP, grant: str = "client_credentials", scheme: str = "http") -> Manifest:
    """The manifest with its token and revocation URLs on ``idp.example`` (127.0.0.1 here)."""
    text = manifest_for(idp, grant).replace(
        f"http://{idp.endpoint}/", f"{scheme}://{NAME}:{port_of(idp)}/"
    )
    head = f'name = "{PLUGIN}"\nversion = "1.0.0"\nentry = "main:Main"\n'
    return parse_manifest(head + text)


def port_of(idp: FakeIdP) -> int:
    return int(idp.endpoint.split(":")[1])


def test_a_token_url_on_a_private_address_is_refused_unless_the_operator_lists_it(
    idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = port_of(idp)
    # An address literal (127.0.0.1 is the fake's token URL), not listed: refused, nothing sent.
    broker, _, audit = broker_for(
        idp, "client_credentials", reach=ProviderReach(private_targets_from=POLICY)
    )
    with pytest.raises(PermissionDeniedError) as caught:
        asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    message = str(caught.value)
    assert f"{idp.token_url} is refused" in message
    assert f'"{PLUGIN}" = ["127.0.0.1:{port}"]' in message  # the policy line that allows it
    assert POLICY in message
    assert caught.value.capability == "oauth2"
    assert idp.grants == []  # nothing arrived at the provider
    assert broker.accounts(PLUGIN, "idp") == []
    refused = [e.reason for e in audit.query(plugin=PLUGIN, kind="refuse")]
    assert any(f"{idp.token_url} is refused" in r for r in refused)

    # A name that resolves to 127.0.0.1: refused after DNS, the hint names the name.
    net = NetOptions(resolver=StaticResolver({NAME: ["127.0.0.1"]}))
    broker, _, audit = broker_for(
        idp,
        found=renamed(idp, scheme="https"),
        reach=ProviderReach(lambda: net, private_targets_from=POLICY),
    )
    with pytest.raises(PermissionDeniedError, match=r"resolves to 127\.0\.0\.1, which is loopback"):
        asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    assert idp.grants == []
    # The same name over plain http is refused before that: tokens would cross unencrypted.
    broker, _, audit = broker_for(
        idp, found=renamed(idp), reach=ProviderReach(lambda: net, private_targets_from=POLICY)
    )
    with pytest.raises(PermissionDeniedError, match=r"token URL .* is plain http"):
        asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    assert idp.grants == []

    # Listed by the operator: it works, and the audit says which policy allowed it.
    broker, _, audit = broker_for(
        idp,
        found=renamed(idp),
        reach=ProviderReach(lambda: net, {PLUGIN: (f"{NAME}:{port}",)}, POLICY),
    )
    shown = asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    assert shown["account"] == "default"
    assert idp.grants == ["client_credentials"]
    reached = [e.reason for e in audit.query(plugin=PLUGIN, kind="private-target")]
    assert reached
    assert f"reached private target {NAME}:{port}" in reached[0]
    assert POLICY in reached[0]
    # Another plugin's listing is no grant for this one.
    broker, _, _ = broker_for(
        idp,
        "client_credentials",
        reach=ProviderReach(private_targets={"acme.other": (idp.endpoint,)}),
    )
    with pytest.raises(PermissionDeniedError):
        asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
    assert idp.grants == ["client_credentials"]
    no_secret_in(caplog.text + message + repr(refused) + repr(reached), idp)


class _Redirector(BaseHTTPRequestHandler):
    """Answers every POST with a 307 to ``target`` (a token endpoint elsewhere)."""

    target = ""
    hits: ClassVar[list[str]] = []

    def do_POST(self) -> None:
        self.hits.append(self.path)
        self.send_response(307)
        self.send_header("Location", self.target)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args: object) -> None:
        pass


def test_a_token_request_follows_no_redirect(idp: FakeIdP) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Redirector)
    _Redirector.target = idp.token_url
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        here = f"127.0.0.1:{server.server_address[1]}"
        text = manifest_for(idp, "client_credentials").replace(
            f'token_url = "{idp.token_url}"', f'token_url = "http://{here}/token"'
        )
        found = parse_manifest(
            f'name = "{PLUGIN}"\nversion = "1.0.0"\nentry = "main:Main"\n' + text
        )
        # Both endpoints listed: the redirect is still not followed (it would carry the client
        # secret to wherever the Location points).
        reach = ProviderReach(private_targets={PLUGIN: (here, idp.endpoint)})
        broker, _, _ = broker_for(idp, found=found, reach=reach)
        with pytest.raises(NetworkFetchError, match="max_redirects = 0"):
            asyncio.run(broker.connect_client(PLUGIN, "idp", "default", "op"))
        assert _Redirector.hits == ["/token"]
        assert idp.grants == []
        assert broker.accounts(PLUGIN, "idp") == []
    finally:
        server.shutdown()
        server.server_close()


def test_revocation_refused_at_the_provider_still_forgets_the_tokens(idp: FakeIdP) -> None:
    broker, store, audit = broker_for(idp)
    code_flow(broker)
    broker.reach = ProviderReach()  # the operator took 127.0.0.1 off the plugin's list
    answer = asyncio.run(broker.revoke(PLUGIN, "idp", "alice", "op"))
    assert answer == {"account": "alice", "revoked_at_provider": False}
    with pytest.raises(NotFoundError):
        store.get(PLUGIN, "oauth2:idp:alice")
    refused = [e.reason for e in audit.query(plugin=PLUGIN, kind="refuse")]
    assert any("revocation at the provider failed" in r for r in refused)


def test_an_authorization_page_over_plain_http_is_refused(idp: FakeIdP) -> None:
    text = manifest_for(idp).replace(
        f'authorize_url = "{idp.authorize_url}"',
        'authorize_url = "http://login.example.com/authorize"',
    )
    found = parse_manifest(f'name = "{PLUGIN}"\nversion = "1.0.0"\nentry = "main:Main"\n' + text)
    states = MemoryStates()
    broker, _, audit = broker_for(idp, found=found, states=states)
    with pytest.raises(PermissionDeniedError, match="plain http") as caught:
        broker.begin(PLUGIN, "idp", "alice", "op", REDIRECT)
    assert "https authorize_url" in str(caught.value)
    assert states._pending == {}  # no pending authorization was kept
    assert any("plain http" in e.reason for e in audit.query(plugin=PLUGIN, kind="refuse"))
    # The operator lists the on-premises provider: allowed.
    reach = ProviderReach(private_targets={PLUGIN: ("login.example.com:80", idp.endpoint)})
    broker, _, _ = broker_for(idp, found=found, states=states, reach=reach)
    url, _, _ = broker.begin(PLUGIN, "idp", "alice", "op", REDIRECT)
    assert url.startswith("http://login.example.com/authorize?")


# --- a real worker -------------------------------------------------------------------------------

FETCHER = """
class Main(Plugin):
    @hook("me")
    async def me(self):
        answer = await self.api.net.fetch(URL, credential="idp")
        return {"status": answer.status, "body": answer.text()}
"""


def test_a_plugin_fetches_with_a_token_it_never_sees(
    idp: FakeIdP, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    port = int(idp.endpoint.split(":")[1])
    broker, store, audit = broker_for(idp)
    code_flow(broker)
    install = write_plugin(
        tmp_path,
        PLUGIN,
        f'URL = "http://{NAME}:{port}/api/me"\n' + FETCHER,
        manifest_for(idp) + "\n[contributes]\nhooks = { me = 0 }\n",
    )
    install = dataclasses.replace(install, local_endpoints=(f"{NAME}:{port}",))
    outcomes: list[object] = []

    async def main() -> None:
        config = config_for(
            tmp_path,
            sandbox="best-effort",
            net=NetOptions(resolver=StaticResolver({NAME: ["127.0.0.1"]})),
        )
        async with Supervisor(config, audit=audit) as runtime:
            runtime.services.secrets = OAuth2TokenSource(store, broker)
            runtime.declare_hook(HookSpec("me"))
            runtime.add(install)
            await runtime.start()
            outcomes.append(await runtime.call_hook("me"))  # plain
            idp.revoke_all("access")  # the provider drops the access token: 401, refresh, retry
            outcomes.append(await runtime.call_hook("me"))
            idp.revoke_all()  # and now the refresh token too
            outcomes.append(await runtime.call_hook("me"))

    asyncio.run(main())
    first, second, third = ([o.value if o.ok else o.error for o in found] for found in outcomes)  # type: ignore[attr-defined]
    assert first[0]["status"] == 200
    assert '"user": "alice"' in first[0]["body"]
    assert second[0]["status"] == 200
    assert idp.grants == ["authorization_code", "refresh_token", "refresh_token"]
    assert "reconnects it with: plugport oauth2 connect acme.idp idp" in str(third[0])
    reasons = [e.reason for e in audit.query(limit=1000)]
    assert any("sent credential 'idp'" in r for r in reasons)
    no_secret_in(caplog.text + repr(outcomes) + repr(reasons), idp)
