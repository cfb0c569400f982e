"""OAuth2 through the host service end to end: a real registry, the service on uvicorn, the fake
identity provider, and a real plugin worker. The operator opens the start page, an httpx client
follows the redirects (provider, callback, installation page), the plugin's fetch gets the token
injected; wrong, reused and refused authorizations get a 400 page and an audit line; the API
lists accounts without tokens, connects client credentials at once and revokes."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from html import unescape
from typing import Any

import httpx
import pytest

from plugport.runtime.capabilities._record import NetOptions
from plugport.runtime.capabilities._resolver import StaticResolver
from plugport.testing.fake_idp import FakeIdP
from tests.host._plugins import write
from tests.host._service import Market, Service, market_at, serving, settings_for, wait_for

V1 = "/api/v1/workspaces"
NAME = "idp.example"
CODE = """
from plugport.sdk import Plugin, command, hook


class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return name

    @command("idp.me")
    async def me(self):
        answer = await self.api.net.fetch(URL, credential="idp")
        return {"status": answer.status, "body": answer.text()}
"""


def extra(idp: FakeIdP, credential: str, grant: str) -> str:
    port = idp.endpoint.split(":")[1]
    authorize = f'authorize_url = "{idp.authorize_url}"\n' if grant == "authorization_code" else ""
    return f"""
[[contributes.commands]]
id = "idp.me"
title = "Who am I"
[credentials.{credential}]
kind = "oauth2"
hosts = ["{NAME}:{port}/api/"]
[credentials.{credential}.oauth2]
grant = "{grant}"
{authorize}token_url = "{idp.token_url}"
revoke_url = "{idp.revoke_url}"
scopes = ["read"]
"""


@pytest.fixture(scope="module")
def idp() -> Iterator[FakeIdP]:
    with FakeIdP() as idp:
        yield idp


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory, idp: FakeIdP) -> Iterator[Market]:
    with market_at(tmp_path_factory.mktemp("market")) as market:
        src = market.root / "oauth2-src"
        port = idp.endpoint.split(":")[1]
        code = f'URL = "http://{NAME}:{port}/api/me"\n' + CODE
        market.publish(
            write(
                src, "acme.idp", "1.0.0", code=code, extra=extra(idp, "idp", "authorization_code")
            )
        )
        market.publish(
            write(
                src,
                "acme.robot",
                "1.0.0",
                code=code.replace('"idp"', '"bot"'),
                extra=extra(idp, "bot", "client_credentials"),
            )
        )
        plain = extra(idp, "idp", "authorization_code").replace(
            f'authorize_url = "{idp.authorize_url}"',
            'authorize_url = "http://login.example.com/authorize"',
        )
        market.publish(write(src, "acme.plain", "1.0.0", code=code, extra=plain))
        yield market


@pytest.fixture(scope="module")
def service(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    root = tmp_path_factory.mktemp("service")
    with serving(settings_for(root, market, sandbox="best-effort")) as service:
        yield service


def allow_local(service: Service, ws: str, plugin: str, idp: FakeIdP) -> None:
    """The operator's policy for the new workspace ``ws`` (read when it opens): ``plugin`` may
    reach the fake provider's token endpoint (127.0.0.1) and its API under the name the
    plugin fetches (``idp.example``, which the test's resolver points at 127.0.0.1)."""
    port = idp.endpoint.split(":")[1]
    endpoints = f'"{idp.endpoint}", "{NAME}:{port}"'
    (service.home(ws) / "policy.toml").write_text(
        f'[private-targets]\n"{plugin}" = [{endpoints}]\n'
    )


def install(
    service: Service,
    client: httpx.Client,
    ws: str,
    plugin: str,
    idp: FakeIdP,
    *,
    policy: bool = True,
) -> None:
    """Install ``plugin`` in a workspace whose policy lets it reach the fake provider
    (``policy=False``: the workspace's policy is written already)."""
    if policy:
        allow_local(service, ws, plugin, idp)
    workspace = service.service.workspace(ws)
    # No DNS for idp.example here: the host's resolver answers 127.0.0.1 for it.
    workspace.host.supervisor.services.net = NetOptions(
        resolver=StaticResolver({NAME: ["127.0.0.1"]})
    )
    refused = wait_for(
        client, ws, client.post(f"{V1}/{ws}/installations", json={"plugin": plugin}).json()
    )
    consent = refused["error"]["details"]["added"]
    started = client.post(f"{V1}/{ws}/installations", json={"plugin": plugin, "consent": consent})
    assert wait_for(client, ws, started.json())["state"] == "succeeded"


def secrets_of(service: Service, ws: str) -> Any:
    return service.service.workspace(ws).oauth2.store


def no_secret_in(text: str, idp: FakeIdP) -> None:
    values = [t.value for t in idp.tokens.values()] + [idp.client_secret]
    assert not [v for v in values if v in text], "a token or the client secret was written out"


def test_code_flow_with_pkce_end_to_end(
    service: Service, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = service.workspace("flow")
    outputs: list[str] = []
    with service.client(token) as client:
        install(service, client, "flow", "acme.idp", idp)
        store = secrets_of(service, "flow")
        store.set("acme.idp", "idp.client_id", idp.client_id.encode())
        store.set("acme.idp", "idp.client_secret", idp.client_secret.encode())

        info = client.get(f"{V1}/flow/installations/acme.idp/oauth2/idp")
        assert info.status_code == 200, info.text
        assert info.json()["accounts"] == []
        assert info.json()["redirect_uri"] == f"{service.url}/oauth2/callback"

        page = client.get("/oauth2/flow/acme.idp/idp/start", params={"account": "alice"})
        assert page.status_code == 200, page.text
        assert idp.endpoint in page.text
        assert "read" in page.text
        go = unescape(re.search(r'data-testid="oauth2-continue" href="([^"]+)"', page.text)[1])  # type: ignore[index]
        assert "code_challenge_method=S256" in go
        state = re.search(r"state=([^&]+)", go)[1]  # type: ignore[index]
        done = client.get(go, follow_redirects=True)
        hops = [(r.status_code, r.headers["location"]) for r in done.history]
        assert (303, "/workspaces/flow/installations/acme.idp/settings") in hops
        assert any(h[1].startswith(f"{service.url}/oauth2/callback?code=") for h in hops)
        outputs.append(done.text)

        listed = client.get(f"{V1}/flow/installations/acme.idp/oauth2/idp").json()["accounts"]
        assert [(a["account"], a["default"], a["scopes"]) for a in listed] == [
            ("alice", True, ["read"])
        ]
        outputs.append(repr(listed))

        called = client.post(
            f"{V1}/flow/installations/acme.idp/execute", json={"command": "idp.me"}
        )
        assert called.status_code == 200, called.text
        assert called.json()["result"]["status"] == 200
        assert '"user": "alice"' in called.json()["result"]["body"]
        outputs.append(called.text)

        # the same state again: refused, audited, nothing stored
        reused = client.get("/oauth2/callback", params={"state": state, "code": "x"})
        assert reused.status_code == 400
        assert "already completed" in reused.text
        wrong = client.get("/oauth2/callback", params={"state": "forged", "code": "x"})
        assert wrong.status_code == 400
        assert "not one the host started" in wrong.text
        # the provider says no
        idp.deny = True
        page = client.get("/oauth2/flow/acme.idp/idp/start", params={"account": "bob"})
        go = unescape(re.search(r'data-testid="oauth2-continue" href="([^"]+)"', page.text)[1])  # type: ignore[index]
        denied = client.get(go, follow_redirects=True)
        idp.deny = False
        assert denied.status_code == 400
        assert "access_denied" in denied.text
        outputs += [reused.text, wrong.text, denied.text]
        after = client.get(f"{V1}/flow/installations/acme.idp/oauth2/idp").json()["accounts"]
        assert [a["account"] for a in after] == ["alice"]

        audit = client.get(f"{V1}/flow/audit").json()
        outputs.append(repr(audit))
        reasons = repr(audit)
        assert "already completed" in reasons
        assert "access_denied" in reasons

        # a workspace token for another workspace cannot start a flow here
        other = service.workspace("other")
        with service.client(other) as stranger:
            assert stranger.get("/oauth2/flow/acme.idp/idp/start").status_code in (401, 403, 400)
            refused = stranger.get(f"{V1}/flow/installations/acme.idp/oauth2/idp")
            assert refused.status_code == 403

        revoked = client.delete(f"{V1}/flow/installations/acme.idp/oauth2/idp/alice")
        assert revoked.json() == {"account": "alice", "revoked_at_provider": True}
        assert client.get(f"{V1}/flow/installations/acme.idp/oauth2/idp").json()["accounts"] == []
        gone = client.post(f"{V1}/flow/installations/acme.idp/execute", json={"command": "idp.me"})
        outputs.append(gone.text)
        assert "plugport oauth2 connect acme.idp idp" in gone.text
    no_secret_in(caplog.text + "".join(outputs), idp)


def test_client_credentials_connect_at_once(
    service: Service, idp: FakeIdP, caplog: pytest.LogCaptureFixture, run_cli: Any
) -> None:
    caplog.set_level(logging.DEBUG)
    token = service.workspace("robots")
    with service.client(token) as client:
        install(service, client, "robots", "acme.robot", idp)
        missing = client.post(f"{V1}/robots/installations/acme.robot/oauth2/bot", json={})
        assert missing.status_code == 404
        assert "plugport secret set acme.robot bot.client_id" in missing.text
        store = secrets_of(service, "robots")
        store.set("acme.robot", "bot.client_id", idp.client_id.encode())
        store.set("acme.robot", "bot.client_secret", idp.client_secret.encode())
        connected = client.post(f"{V1}/robots/installations/acme.robot/oauth2/bot", json={})
        assert connected.status_code == 201, connected.text
        assert connected.json()["account"] == "default"
        called = client.post(
            f"{V1}/robots/installations/acme.robot/execute", json={"command": "idp.me"}
        )
        assert called.json()["result"]["status"] == 200, called.text
        assert '"user": "plugport-test-client"' in called.json()["result"]["body"]
        no_secret_in(caplog.text + connected.text + called.text, idp)

        # the CLI, through the same API
        env = {"PLUGPORT_HOST_SERVICE_URL": service.url, "PLUGPORT_HOST_SERVICE_TOKEN": token}
        base = ["acme.robot", "bot", "--workspace", "robots"]
        made = run_cli("oauth2", "connect", *base, "--account", "cli", env=env)
        assert made.exit_code == 0, made.output
        assert "Connected account 'cli' (read)" in made.output
        listed = run_cli("oauth2", "list", *base, env=env)
        assert "default (default): read; expires in" in listed.output
        assert "cli: read" in listed.output
        gone = run_cli(
            "oauth2", "revoke", "acme.robot", "bot", "cli", "--workspace", "robots", env=env
        )
        assert "Forgot account 'cli' (revoked at the provider)" in gone.output
        missing = run_cli(
            "oauth2", "revoke", "acme.robot", "bot", "cli", "--workspace", "robots", env=env
        )
        assert missing.exit_code == 1
        assert "connected accounts: default" in missing.output
        no_secret_in(made.output + listed.output + gone.output + missing.output, idp)


def test_a_provider_on_a_private_address_needs_the_operators_policy(
    service: Service, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    """Without ``[private-targets]`` listing the token endpoint (127.0.0.1), the host refuses
    to POST there: 422 naming the URL and the policy line, an audit line, nothing at the
    provider, no account. (With the line, the tests above connect through the same path.)"""
    caplog.set_level(logging.DEBUG)
    token = service.workspace("ssrf")
    port = idp.endpoint.split(":")[1]
    (service.home("ssrf") / "policy.toml").write_text(
        f'[private-targets]\n"acme.robot" = ["{NAME}:{port}"]\n'  # the API only
    )
    with service.client(token) as client:
        workspace = service.service.workspace("ssrf")
        workspace.host.supervisor.services.net = NetOptions(
            resolver=StaticResolver({NAME: ["127.0.0.1"]})
        )
        refused = wait_for(
            client,
            "ssrf",
            client.post(f"{V1}/ssrf/installations", json={"plugin": "acme.robot"}).json(),
        )
        consent = refused["error"]["details"]["added"]
        started = client.post(
            f"{V1}/ssrf/installations", json={"plugin": "acme.robot", "consent": consent}
        )
        assert wait_for(client, "ssrf", started.json())["state"] == "succeeded"
        store = secrets_of(service, "ssrf")
        store.set("acme.robot", "bot.client_id", idp.client_id.encode())
        store.set("acme.robot", "bot.client_secret", idp.client_secret.encode())
        before = list(idp.grants)
        denied = client.post(f"{V1}/ssrf/installations/acme.robot/oauth2/bot", json={})
        # A refusal on the plugin's behalf, as for its own fetches (the caller may connect).
        assert denied.status_code == 422, denied.text
        assert denied.json()["error"]["details"]["capability"] == "oauth2"
        assert f"{idp.token_url} is refused" in denied.text
        assert f'\\"acme.robot\\" = [\\"{NAME}:{port}\\", \\"{idp.endpoint}\\"]' in denied.text
        assert "[private-targets]" in denied.text
        assert idp.grants == before  # nothing arrived at the provider
        listed = client.get(f"{V1}/ssrf/installations/acme.robot/oauth2/bot").json()
        assert listed["accounts"] == []
        audit = repr(client.get(f"{V1}/ssrf/audit").json())
        assert f"{idp.token_url} is refused" in audit
        no_secret_in(caplog.text + denied.text + audit, idp)


# --- the installation's settings page ------------------------------------------------------------


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def test_the_settings_page_lists_connects_and_revokes_accounts(
    service: Service, idp: FakeIdP, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    token = service.workspace("pages")
    port = idp.endpoint.split(":")[1]
    endpoints = f'["{idp.endpoint}", "{NAME}:{port}"]'
    (service.home("pages") / "policy.toml").write_text(
        f'[private-targets]\n"acme.idp" = {endpoints}\n"acme.robot" = {endpoints}\n'
    )
    outputs: list[str] = []
    with service.client(token) as client:
        for plugin, credential in (("acme.idp", "idp"), ("acme.robot", "bot")):
            install(service, client, "pages", plugin, idp, policy=False)
            store = secrets_of(service, "pages")
            store.set(plugin, f"{credential}.client_id", idp.client_id.encode())
            store.set(plugin, f"{credential}.client_secret", idp.client_secret.encode())
    settings = "/workspaces/pages/installations/acme.idp/settings"
    with service.client(follow_redirects=False) as browser:
        form = browser.get("/workspaces")
        signed = browser.post("/workspaces/signin", data={"token": token, "csrf": csrf_of(form)})
        assert signed.status_code == 303, signed.text

        page = browser.get(settings)
        assert page.status_code == 200, page.text
        assert 'data-testid="oauth2-credential" data-name="idp"' in page.text
        assert page.text.count('data-testid="oauth2-credential"') == 1  # in the page, once
        assert re.search(r"<title>Settings of acme\.idp · [^<]*</title>", page.text)
        assert 'data-testid="oauth2-none"' in page.text
        link = re.search(r'href="([^"]+)" data-testid="oauth2-connect"', page.text)
        assert link is not None
        assert link[1] == "/oauth2/pages/acme.idp/idp/start"

        # Connect: the start page (signed in by the cookie), the provider, the callback, back.
        start = browser.get(link[1], params={"account": "alice"})
        assert start.status_code == 200, start.text
        go = unescape(re.search(r'data-testid="oauth2-continue" href="([^"]+)"', start.text)[1])  # type: ignore[index]
        done = browser.get(go, follow_redirects=True)
        assert done.url.path == settings
        assert (
            "Connected account &#39;alice&#39;" in done.text
            or "Connected account 'alice'" in done.text
        )
        page = browser.get(settings)
        row = re.search(
            r'<tr data-testid="oauth2-account" data-account="alice">(.*?)</tr>', page.text, re.S
        )
        assert row is not None
        assert 'data-testid="oauth2-default"' in row[1]
        assert "<td>read</td>" in row[1]
        assert "refreshed by the host" in row[1]
        assert 'data-name="oauth2:' not in page.text  # tokens are no operator-set secrets
        outputs += [page.text, done.text]

        # Revoke needs the page's CSRF token; without it nothing changes.
        action = "/workspaces/pages/installations/acme.idp/oauth2/idp/revoke"
        forged = browser.post(action, data={"account": "alice"})
        assert forged.status_code == 403
        assert 'data-account="alice"' in browser.get(settings).text
        revoked = browser.post(action, data={"account": "alice", "csrf": csrf_of(page)})
        assert revoked.status_code == 303, revoked.text
        assert revoked.headers["location"] == settings
        page = browser.get(settings)
        assert "Disconnected account" in page.text
        assert "revoked at the provider" in page.text
        assert 'data-testid="oauth2-none"' in page.text
        assert all(t.revoked for t in idp.tokens.values() if t.user == "alice")
        outputs.append(page.text)

        # A client-credentials credential connects from the page at once.
        robot = "/workspaces/pages/installations/acme.robot/settings"
        page = browser.get(robot)
        assert 'data-testid="oauth2-connect-client"' in page.text
        made = browser.post(
            "/workspaces/pages/installations/acme.robot/oauth2/bot/connect",
            data={"account": "default", "csrf": csrf_of(page)},
        )
        assert made.status_code == 303, made.text
        page = browser.get(robot)
        assert 'data-account="default"' in page.text
        outputs.append(page.text)
    no_secret_in(caplog.text + "".join(outputs), idp)


def test_the_start_page_refuses_a_plain_http_authorization_page(
    service: Service, idp: FakeIdP
) -> None:
    """The operator would sign in to the provider there: https only, unless the host is
    loopback or listed under [private-targets] for the plugin (here it is neither)."""
    token = service.workspace("plain")
    with service.client(token) as client:
        install(service, client, "plain", "acme.plain", idp)
        store = secrets_of(service, "plain")
        store.set("acme.plain", "idp.client_id", idp.client_id.encode())
        page = client.get("/oauth2/plain/acme.plain/idp/start", params={"account": "alice"})
        assert page.status_code == 403, page.text
        assert "plain http" in page.text
        assert "https authorize_url" in page.text
        assert "login.example.com" in page.text
        assert 'data-testid="oauth2-continue"' not in page.text
        audit = repr(client.get(f"{V1}/plain/audit").json())
        assert "plain http" in audit
