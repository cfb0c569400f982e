"""The host service's pages over real HTTP (no browser): sign in with a workspace token, the
installed plugins, install with consent and follow its progress, disable and enable through
CSRF-checked forms (and the script's JSON answers), and the refusals: no CSRF token, a token
for another workspace, no sign-in."""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.host._plugins import HomeView
from tests.host._service import (
    Market,
    Service,
    wait_for,
    write_alpha,
)

PARTIAL = {"X-Plugport-Partial": "1"}


def csrf_of(page: httpx.Response) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


@contextlib.contextmanager
def signed_in(service: Service, token: str) -> Iterator[httpx.Client]:
    with service.client(follow_redirects=False) as browser:
        form = browser.get("/workspaces")
        done = browser.post("/workspaces/signin", data={"token": token, "csrf": csrf_of(form)})
        assert done.status_code == 303, done.text
        yield browser


def row_state(page: httpx.Response, plugin: str) -> str:
    found = re.search(
        rf'data-testid="installation-row" data-plugin="{re.escape(plugin)}" data-state="(\w+)"',
        page.text,
    )
    assert found, page.text
    return found.group(1)


def test_sign_in_install_with_consent_and_follow_progress(service: Service) -> None:
    token = service.workspace("pages")
    with service.client(follow_redirects=False) as browser:
        form = browser.get("/workspaces", params={"install": "acme.gamma"})
        assert form.status_code == 200
        assert 'id="signin-form"' in form.text
        assert 'name="install" value="acme.gamma"' in form.text
        assert "default-src 'self'" in form.headers["content-security-policy"]
        assert browser.get("/static/plugport.css").status_code == 200
        assert browser.get("/host-service/static/host-service.js").status_code == 200
        csrf = csrf_of(form)

        wrong = browser.post("/workspaces/signin", data={"token": "pph_nope", "csrf": csrf})
        assert wrong.status_code == 401
        assert 'data-testid="signin-error"' in wrong.text
        admin = browser.post("/workspaces/signin", data={"token": service.admin, "csrf": csrf})
        assert admin.status_code == 401
        assert "admin token" in admin.text
        no_csrf = browser.post("/workspaces/signin", data={"token": token})
        assert no_csrf.status_code == 403
        assert "plugport_workspace_token" not in no_csrf.headers.get("set-cookie", "")

        done = browser.post(
            "/workspaces/signin", data={"token": token, "csrf": csrf, "install": "acme.gamma"}
        )
        assert done.status_code == 303, done.text
        assert done.headers["location"] == "/workspaces/pages/install?plugin=acme.gamma"
        [cookie] = [
            c for c in done.headers.get_list("set-cookie") if c.startswith("plugport_workspace")
        ]
        assert cookie.startswith(f"plugport_workspace_token={token};")
        assert "HttpOnly" in cookie
        assert "samesite=strict" in cookie.lower()
        # signed in: the sign-in page sends you on to your workspace
        assert browser.get("/workspaces").headers["location"] == "/workspaces/pages"

        page = browser.get(done.headers["location"])
        assert page.status_code == 200, page.text
        assert 'data-testid="permission-line">Connect to: api.example.com<' in page.text
        assert 'id="consent"' in page.text
        assert 'id="install-button"' in page.text
        csrf = csrf_of(page)
        permission = {"permission": "network 'api.example.com'"}
        unticked = browser.post(
            "/workspaces/pages/install", data={"csrf": csrf, "plugin": "acme.gamma"} | permission
        )
        assert unticked.status_code == 400
        assert 'data-testid="consent-error"' in unticked.text
        assert service.service.workspace("pages").operations == {}
        started = browser.post(
            "/workspaces/pages/install",
            data={"csrf": csrf, "plugin": "acme.gamma", "consent": "yes"} | permission,
        )
        assert started.status_code == 303, started.text
        progress_url = started.headers["location"]
        assert progress_url.startswith("/workspaces/pages/operations/")
        first = browser.get(progress_url)
        assert 'data-testid="operation"' in first.text
        if 'data-state="succeeded"' not in first.text:
            assert '<noscript><meta http-equiv="refresh" content="1"></noscript>' in first.text
        deadline = time.monotonic() + 60
        while browser.get(progress_url + "/status").json()["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        final = browser.get(progress_url)
        assert 'data-state="succeeded"' in final.text, final.text
        assert 'data-testid="operation-result"' in final.text
        assert "acme.gamma 1.0.0" in final.text
        assert "http-equiv" not in final.text

        listing = browser.get("/workspaces/pages")
        assert row_state(listing, "acme.gamma") in ("active", "inactive")
        found = browser.get("/workspaces/pages", params={"q": "alpha"})
        assert 'data-testid="search-result" data-plugin="acme.alpha"' in found.text
        assert 'data-testid="install-link" data-plugin="acme.alpha"' in found.text


def test_forms_need_csrf_and_the_right_workspace(service: Service, market: Market) -> None:
    token, other = service.workspace("forms"), service.workspace("elsewhere")
    with service.client(token) as api:
        started = api.post("/api/v1/workspaces/forms/installations", json={"plugin": "acme.alpha"})
        assert wait_for(api, "forms", started.json())["state"] == "succeeded"
    home = service.home("forms")
    with signed_in(service, token) as browser:
        page = browser.get("/workspaces/forms")
        assert row_state(page, "acme.alpha") in ("active", "inactive")
        assert 'button type="submit" data-action="disable" data-plugin="acme.alpha"' in page.text
        csrf = csrf_of(page)
        action = "/workspaces/forms/installations/acme.alpha/disable"

        before = HomeView.of(home, market.registry.url)
        refusals: list[tuple[dict[str, Any], dict[str, str]]] = [
            ({}, {}),
            ({"csrf": "0" * 64}, {}),
            ({}, PARTIAL),
        ]
        for data, headers in refusals:
            refused = browser.post(action, data=data, headers=headers)
            assert refused.status_code == 403, refused.text
            assert "did not come from this site" in refused.text
        with signed_in(service, other) as stranger:  # a token for another workspace
            theirs = stranger.post(
                action, data={"csrf": csrf_of(stranger.get("/workspaces/elsewhere"))}
            )
            assert theirs.status_code == 303
            assert theirs.headers["location"] == "/workspaces"
            assert stranger.get("/workspaces/forms").headers["location"] == "/workspaces"
        with service.client(follow_redirects=False) as nobody:
            assert nobody.get("/workspaces/forms").headers["location"] == "/workspaces"
            assert nobody.post(action, data={"csrf": csrf}).status_code == 303
        huge = browser.post(action, data={"csrf": csrf, "pad": "x" * (128 * 1024)})
        assert huge.status_code == 413
        assert "more than 65536 bytes" in huge.text
        assert HomeView.of(home, market.registry.url) == before  # nothing changed or audited

        disabled = browser.post(action, data={"csrf": csrf})
        assert disabled.status_code == 303
        assert disabled.headers["location"] == "/workspaces/forms"
        assert "plugport_flash=" in disabled.headers["set-cookie"]
        after = browser.get("/workspaces/forms")
        assert row_state(after, "acme.alpha") == "disabled"
        assert 'data-testid="flash" data-kind="success">Disabled acme.alpha.<' in after.text
        assert 'data-testid="audit-row" data-action="disable" data-subject="acme.alpha"' in (
            after.text
        )

        # the script's way: the same form, answered with JSON and the row's new HTML
        enabled = browser.post(
            "/workspaces/forms/installations/acme.alpha/enable",
            data={"csrf": csrf},
            headers=PARTIAL,
        )
        assert enabled.status_code == 200, enabled.text
        answer = enabled.json()
        assert (answer["ok"], answer["message"]) == (True, "Enabled acme.alpha.")
        assert 'data-plugin="acme.alpha"' in answer["row"]
        assert 'data-action="disable"' in answer["row"]
        missing = browser.post(
            "/workspaces/forms/installations/acme.nope/disable",
            data={"csrf": csrf},
            headers=PARTIAL,
        )
        assert missing.status_code == 404
        assert missing.json()["ok"] is False

        # a newer version: badge and button on the row, the update runs as an operation
        market.publish(write_alpha(market.root / "src", "1.1.0"))
        browser.post("/workspaces/forms/installations/acme.alpha/enable", data={"csrf": csrf})
        page = browser.get("/workspaces/forms")
        assert 'data-testid="update-badge">update available: 1.1.0<' in page.text
        update = browser.post(
            "/workspaces/forms/installations/acme.alpha/update", data={"csrf": csrf}
        )
        assert update.status_code == 303, update.text
        progress = update.headers["location"]
        deadline = time.monotonic() + 60
        while browser.get(progress + "/status").json()["state"] not in ("succeeded", "failed"):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert "acme.alpha 1.1.0 (was 1.0.0)" in browser.get(progress).text
        assert 'data-testid="update-badge"' not in browser.get("/workspaces/forms").text

        signed_out = browser.post("/workspaces/signout", data={"csrf": csrf})
        assert signed_out.status_code == 303
        assert browser.get("/workspaces/forms").headers["location"] == "/workspaces"


def test_the_install_page_and_the_apis_refusal_name_a_verified_publisher(
    service: Service, market: Market
) -> None:
    """Consent in the host service says what the CLI's says: the registry's verified publisher
    first, then the permissions (a badge grants nothing: consent is still asked)."""
    from sqlalchemy import text

    def verify(domain: str | None) -> None:
        with market.registry.engine.begin() as connection:
            connection.execute(
                text("UPDATE namespaces SET verified_domain = :d WHERE name = 'acme'"),
                {"d": domain},
            )

    verify("acme.example")
    try:
        token = service.workspace("verified")
        with signed_in(service, token) as browser:
            page = browser.get("/workspaces/verified/install", params={"plugin": "acme.gamma"})
        assert page.status_code == 200, page.text
        assert 'data-testid="verified-publisher" data-domain="acme.example"' in page.text
        assert "✓ verified publisher: acme.example" in page.text
        assert 'id="consent"' in page.text  # still asked
        with service.client(token) as client:
            asked = client.post(
                "/api/v1/workspaces/verified/installations", json={"plugin": "acme.gamma"}
            )
            refused = wait_for(client, "verified", asked.json())
        details = refused["error"]["details"]
        assert details["verified_domain"] == "acme.example"
        assert details["lines"] == [
            "verified publisher: acme.example",
            "Connect to: api.example.com",
        ]
    finally:
        verify(None)
