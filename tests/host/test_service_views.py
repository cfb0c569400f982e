"""Custom views over real HTTP (no browser) on a real host service with real plugins installed
from a real registry: the page around the frame, the frame's document and files under their
signed path with the host's headers, the bridge's call route, and every refusal (no sign-in,
no CSRF, a forged or expired or other view's path, a path out of the view's folder, a type a
view may not load, a call that names another plugin, too big, too often, a view whose
``custom_view`` was not granted, a disabled plugin)."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import re
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from plugport._permissions import CUSTOM_VIEW_LINE
from plugport.host.state import HostState
from plugport.host.ui._view_rules import (
    MAX_CALL_PAYLOAD_BYTES,
    SVG_CSP,
    ViewGrant,
    frame_csp,
    read_token,
    sign_token,
)
from tests.host._service import Market, Service, market_at, serving, settings_for
from tests.host._views import (
    BOARD,
    BOARD_HTML,
    VIEWER,
    VIEWER_FILES,
    install,
    publish_views,
    ui_calls,
)
from tests.host.test_service_pages import csrf_of, signed_in

PAGE = f"/workspaces/{{ws}}/plugins/{VIEWER}/views/{BOARD}"


@pytest.fixture(scope="module")
def market(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Market]:
    with market_at(tmp_path_factory.mktemp("market")) as market:
        publish_views(market)
        yield market


@pytest.fixture(scope="module")
def service(market: Market, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with serving(settings_for(tmp_path_factory.mktemp("service"), market)) as service:
        yield service


@pytest.fixture(scope="module")
def board(service: Service) -> tuple[str, str]:
    """A workspace with acme.viewer installed and enabled: (name, token)."""
    token = service.workspace("board")
    install(service, token, "board", VIEWER)
    return "board", token


@dataclasses.dataclass
class Opened:
    """A view page as a signed-in browser got it."""

    browser: httpx.Client
    page: httpx.Response
    frame_url: str
    calls_url: str
    csrf: str

    @property
    def token(self) -> str:
        return self.frame_url.split("/")[3]

    def call(self, body: Any, **headers: str) -> httpx.Response:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        return self.browser.post(
            self.calls_url,
            content=content,
            headers={"Content-Type": "application/json", "X-Plugport-Csrf": self.csrf} | headers,
        )


def _attribute(page: httpx.Response, name: str) -> str:
    found = re.search(rf'{name}="([^"]*)"', page.text)
    assert found, page.text
    return found.group(1).replace("&amp;", "&")


@contextlib.contextmanager
def opened(service: Service, ws: str, token: str) -> Iterator[Opened]:
    with signed_in(service, token) as browser:
        page = browser.get(PAGE.format(ws=ws))
        assert page.status_code == 200, page.text
        yield Opened(
            browser,
            page,
            _attribute(page, "data-src"),
            _attribute(page, "data-calls-url"),
            _attribute(page, "data-csrf"),
        )


# --- the page -------------------------------------------------------------------------------------


def test_installation_page_links_the_view_and_the_page_frames_it(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with signed_in(service, token) as browser:
        listing = browser.get(f"/workspaces/{ws}/installations/{VIEWER}")
        assert listing.status_code == 200, listing.text
        assert 'data-testid="custom-view-link" data-view="viewer.board">Board</a>' in listing.text
        assert f'href="{PAGE.format(ws=ws)}"' in listing.text
    with opened(service, ws, token) as view:
        page = view.page
        assert "<title>Board · acme.viewer · board · Plugport host</title>" in page.text
        assert 'data-testid="custom-view-badge">Custom view</span>' in page.text
        assert 'data-testid="custom-view-explanation"' in page.text
        [frame] = re.findall(r"<iframe[^>]*>", page.text)
        assert ' sandbox="allow-scripts"' in frame  # exactly: no same-origin, forms, popups
        assert "allow-same-origin" not in page.text
        assert 'title="Board (custom view of acme.viewer)"' in frame
        assert "view-h-450" in frame  # 420 px, rounded up to the 50 px step
        assert "style=" not in frame
        assert view.frame_url.startswith("/host-service/ui-assets/")
        assert view.frame_url.endswith("/ui/board.html")
        assert view.calls_url == f"/workspaces/{ws}/plugins/{VIEWER}/views/{BOARD}/calls"
        policy = page.headers["content-security-policy"]
        assert "script-src 'self'" in policy
        assert policy.endswith(f"; frame-src {service.url}/host-service/ui-assets/{view.token}/")
        assert page.headers["cache-control"] == "no-store"
        grant = read_token(service.service.web_secret, view.token, now=time.time())
        assert (grant.ws, grant.plugin, grant.version, grant.view) == (
            ws,
            VIEWER,
            "1.0.0",
            BOARD,
        )
        assert 500 < grant.expires - time.time() <= 600


def test_the_page_needs_a_sign_in_for_its_workspace(
    service: Service, board: tuple[str, str]
) -> None:
    ws, _ = board
    with service.client(follow_redirects=False) as anonymous:
        page = anonymous.get(PAGE.format(ws=ws))
        assert page.status_code == 303
        assert page.headers["location"] == "/workspaces"
    other = service.workspace("elsewhere")
    with signed_in(service, other) as browser:
        page = browser.get(PAGE.format(ws=ws))
        assert page.status_code == 303
        assert "data-src" not in page.text


def test_unknown_views_and_plugins_are_error_pages(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with signed_in(service, token) as browser:
        page = browser.get(f"/workspaces/{ws}/plugins/{VIEWER}/views/viewer.nothing")
        assert page.status_code == 404
        assert 'data-testid="error-message" data-status="404"' in page.text
        assert "viewer.board" in page.text  # what it has
        assert "<iframe" not in page.text
        missing = browser.get(f"/workspaces/{ws}/plugins/acme.nothing/views/x")
        assert missing.status_code == 404
        assert "<iframe" not in missing.text


# --- the frame's document and files ---------------------------------------------------------------


def test_document_is_the_archive_file_plus_two_host_tags_under_the_frame_policy(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with opened(service, ws, token) as view, service.client() as cookieless:
        document = cookieless.get(view.frame_url)  # no cookie: the path is the capability
        assert document.status_code == 200, document.text
        headers = document.headers
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["x-content-type-options"] == "nosniff"
        assert headers["cache-control"] == "no-store"
        assert headers["referrer-policy"] == "no-referrer"
        assert "access-control-allow-origin" not in headers
        assert headers["content-security-policy"] == frame_csp(service.url, view.token, "ui")
        policy = headers["content-security-policy"]
        for directive in (
            "default-src 'none'",
            "connect-src 'none'",
            "form-action 'none'",
            "frame-ancestors 'self'",
            "base-uri 'none'",
            "sandbox allow-scripts",
        ):
            assert directive in policy.split("; ")
        base = f"/host-service/ui-assets/{view.token}/"
        injected = (
            f'<link rel="stylesheet" href="{base}.plugport/theme.css">'
            f'<script src="{base}.plugport/plugport-view.js" data-theme="'
        )
        text = document.text
        assert text.startswith(BOARD_HTML.split("<head>")[0] + "<head>" + injected)
        # nothing else was changed: remove the two tags and it is the archive's file
        end = text.index("</script>", len(injected)) + len("</script>")
        after_head = text.index("<head>") + len("<head>")
        assert text[:after_head] + text[end:] == BOARD_HTML
        theme = json.loads(
            re.search(r'data-theme="([^"]*)"', text)
            .group(1)
            .replace("&#x27;", "'")  # type: ignore[union-attr]
            .replace("&quot;", '"')
            .replace("&amp;", "&")
        )
        assert theme["accent"] == "#1f4fd1"


def test_files_come_only_from_the_view_folder_with_allowed_types(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    with opened(service, ws, token) as view, service.client() as browser:
        base = f"/host-service/ui-assets/{view.token}/"
        expected = {
            "ui/board.js": "text/javascript; charset=utf-8",
            "ui/board.css": "text/css; charset=utf-8",
            "ui/logo.svg": "image/svg+xml",
            "ui/data.json": "application/json",
            "ui/lib/deep.js": "text/javascript; charset=utf-8",
        }
        for path, kind in expected.items():
            got = browser.get(base + path)
            assert got.status_code == 200, (path, got.text)
            assert got.headers["content-type"] == kind
            assert got.text == VIEWER_FILES[path]
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["cache-control"] == "no-store"
            assert got.headers["access-control-allow-origin"] == "*"
            assert got.headers["referrer-policy"] == "no-referrer"
        assert browser.get(base + "ui/logo.svg").headers["content-security-policy"] == SVG_CSP
        assert browser.get(base + "ui/board.js").headers["content-security-policy"] == (
            "default-src 'none'; sandbox"
        )
        theme = browser.get(base + ".plugport/theme.css")
        assert theme.headers["content-type"] == "text/css; charset=utf-8"
        assert "  --accent: #1f4fd1;\n" in theme.text
        bridge = browser.get(base + ".plugport/plugport-view.js")
        assert bridge.headers["content-type"] == "text/javascript; charset=utf-8"
        assert "window.plugport = Object.freeze" in bridge.text

        refused = {
            "ui/notes.txt": "js, css, images",  # a type a view may not load
            "ui/page.html": "js, css, images",  # only the declared file is a document
            "outside.js": "from 'ui' only",  # outside the folder
            "main.py": "from 'ui' only",
            "plugport.toml": "from 'ui' only",
            "ui/%2e%2e/main.py": "'..'",
            "ui/..%2fmain.py": "'..'",
            "ui/missing.js": "no view file",
            "ui/.hidden.js": "hidden",
            ".plugport/other.js": "hidden",  # the host's files are the two it names
        }
        for path, reason in refused.items():
            got = browser.get(base + path)
            assert got.status_code == 404, (path, got.status_code, got.text)
            assert reason in got.text, (path, got.text)
            assert got.headers["content-type"].startswith("text/plain")
            assert got.headers["x-content-type-options"] == "nosniff"


def test_forged_expired_and_other_views_paths_are_refused(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    secret = service.service.web_secret
    with opened(service, ws, token) as view, service.client() as browser:
        good = view.token
        body, mac = good.split(".")
        flipped = mac[:-2] + ("A" if mac[-2] != "A" else "B") + mac[-1]
        expired = sign_token(secret, ViewGrant(ws, VIEWER, "1.0.0", BOARD, int(time.time()) - 1))
        old_version = sign_token(secret, ViewGrant(ws, VIEWER, "0.9.0", BOARD, 2**40))
        other_view = sign_token(secret, ViewGrant(ws, VIEWER, "1.0.0", "viewer.other", 2**40))
        other_plugin = sign_token(secret, ViewGrant(ws, "acme.alpha", "1.0.0", BOARD, 2**40))
        wrong_key = sign_token(b"x" * 32, ViewGrant(ws, VIEWER, "1.0.0", BOARD, 2**40))
        cases = {
            f"{body}.{flipped}": (403, "not valid"),
            f"{body}x.{mac}": (403, "not valid"),
            wrong_key: (403, "not valid"),
            "nonsense": (403, "not valid"),
            expired: (403, "expired"),
            old_version: (403, "was updated"),
            other_view: (404, "no custom view"),
            other_plugin: (404, "installed plugin"),
        }
        for forged, (status, reason) in cases.items():
            got = browser.get(f"/host-service/ui-assets/{forged}/ui/board.html")
            assert got.status_code == status, (forged, got.text)
            assert reason in got.text
            assert "<h1>Board</h1>" not in got.text
        assert browser.get(f"/host-service/ui-assets/{good}/ui/board.html").status_code == 200


# --- calls through the bridge ---------------------------------------------------------------------


def test_a_call_reaches_the_views_own_handler_and_returns_its_value(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    before = ui_calls(service, ws, VIEWER)
    with opened(service, ws, token) as view:
        done = view.call({"name": "items.load", "payload": {"page": 2, "q": "ü"}})
        assert done.status_code == 200, done.text
        assert done.json() == {
            "ok": True,
            "value": {
                "plugin": VIEWER,
                "view": BOARD,
                "surface": "view",
                "action": "items.load",
                "payload": {"page": 2, "q": "ü"},
                "workspace": ws,
            },
        }
        bare = view.call({"name": "ping"})  # the payload defaults to {}
        assert bare.json()["value"]["payload"] == {}

        raised = view.call({"name": "fail", "payload": {}})
        assert raised.status_code == 422
        assert raised.json()["ok"] is False
        assert raised.json()["kind"] == "raised"
        assert "the board cannot do that" in raised.json()["error"]
        assert "Traceback" not in raised.text

        not_json = view.call({"name": "bytes", "payload": {}})
        assert not_json.status_code == 502
        assert not_json.json() == {
            "ok": False,
            "error": "acme.viewer's @view('viewer.board') handler answered with something "
            "that is not JSON",
            "kind": "invalid",
        }
    assert ui_calls(service, ws, VIEWER) == before + 4


def test_calls_that_name_a_target_or_break_the_shape_are_refused(
    service: Service, board: tuple[str, str]
) -> None:
    ws, token = board
    before = ui_calls(service, ws, VIEWER)
    with opened(service, ws, token) as view:
        cases: dict[bytes, tuple[int, str]] = {
            json.dumps({"name": "x", "payload": {}, "plugin": "acme.alpha"}).encode(): (
                400,
                "it may not set plugin",
            ),
            json.dumps({"name": "x", "view": "other"}).encode(): (400, "it may not set view"),
            json.dumps({"name": "Bad Name"}).encode(): (400, "name:"),
            json.dumps({"name": "x", "payload": [1]}).encode(): (400, "payload:"),
            json.dumps(["x"]).encode(): (400, "JSON object"),
            b"{not json": (400, "not JSON"),
            json.dumps({"name": "x", "payload": {"s": "a" * MAX_CALL_PAYLOAD_BYTES}}).encode(): (
                400,
                f"more than the {MAX_CALL_PAYLOAD_BYTES} a call may carry",
            ),
            json.dumps(
                {"name": "x", "payload": {"s": "a" * 2 * MAX_CALL_PAYLOAD_BYTES}}
            ).encode(): (
                413,
                "the request body is more than",
            ),
        }
        for body, (status, reason) in cases.items():
            got = view.call(body)
            assert got.status_code == status, (body[:80], got.text)
            assert got.json()["ok"] is False
            assert reason in got.json()["error"], got.text

        just_under = {"s": "a" * (MAX_CALL_PAYLOAD_BYTES - 8)}  # {"s":"..."} is 64 KiB
        assert view.call({"name": "big", "payload": just_under}).json()["ok"] is True
        before += 1

        no_csrf = view.browser.post(view.calls_url, json={"name": "x"})
        assert no_csrf.status_code == 403
        assert no_csrf.json()["ok"] is False
        wrong_csrf = view.call({"name": "x"}, **{"X-Plugport-Csrf": "0" * 64})
        assert wrong_csrf.status_code == 403
    with service.client() as anonymous:
        nobody = anonymous.post(view.calls_url, json={"name": "x"})
        assert nobody.status_code == 401
        assert nobody.json()["ok"] is False
    with service.client(token) as bearer:  # the API's bearer token is not a page session
        assert bearer.post(view.calls_url, json={"name": "x"}).status_code == 401
    assert ui_calls(service, ws, VIEWER) == before  # no refused call reached the plugin


def test_calls_are_rate_limited_per_user_and_view(service: Service) -> None:
    token = service.workspace("busy")
    install(service, token, "busy", VIEWER)
    with opened(service, "busy", token) as view:
        statuses = [view.call({"name": "ping"}) for _ in range(60)]
        codes = [r.status_code for r in statuses]
        assert codes[:30] == [200] * 30  # the burst
        assert 429 in codes
        limited = statuses[codes.index(429)]
        assert int(limited.headers["retry-after"]) >= 1
        assert "calls too often" in limited.json()["error"]
    assert ui_calls(service, "busy", VIEWER) == codes.count(200)


# --- grants ---------------------------------------------------------------------------------------


def test_a_view_without_the_custom_view_grant_or_of_a_disabled_plugin_is_refused(
    service: Service,
) -> None:
    token = service.workspace("ungranted")
    install(service, token, "ungranted", VIEWER)
    host = service.service.workspace("ungranted").host
    with opened(service, "ungranted", token) as view:
        assert view.call({"name": "ping"}).status_code == 200
        installed = host.state.get(VIEWER)
        assert installed is not None
        # The operator's grant no longer has it (as after a consent that left it out).
        narrowed = dataclasses.replace(installed, permissions={**installed.permissions, "ui": []})
        with host.state.transaction() as db:
            HostState.put(db, narrowed)
        before = ui_calls(service, "ungranted", VIEWER)

        page = view.browser.get(PAGE.format(ws="ungranted"))
        assert page.status_code == 403
        assert 'data-testid="error-message" data-status="403"' in page.text
        assert "custom_view" in page.text
        assert "<iframe" not in page.text
        listing = view.browser.get(f"/workspaces/ungranted/installations/{VIEWER}")
        assert 'data-testid="custom-view-link"' not in listing.text
        refused = view.call({"name": "ping"})
        assert refused.status_code == 403
        assert refused.json()["ok"] is False
        assert "custom_view" in refused.json()["error"]
        with service.client() as browser:  # the path signed before the change stops working
            document = browser.get(view.frame_url)
            assert document.status_code == 403
            assert "<h1>Board</h1>" not in document.text
        assert ui_calls(service, "ungranted", VIEWER) == before

        with host.state.transaction() as db:
            HostState.put(db, installed)
        assert view.call({"name": "ping"}).status_code == 200
        with service.client(token) as api:
            api.post(f"/api/v1/workspaces/ungranted/installations/{VIEWER}/disable")
        disabled = view.browser.get(PAGE.format(ws="ungranted"))
        assert disabled.status_code == 409
        assert "disabled" in disabled.text
        assert view.call({"name": "ping"}).status_code == 409
        listing = view.browser.get(f"/workspaces/ungranted/installations/{VIEWER}")
        assert 'data-testid="custom-view-link"' not in listing.text


# --- marked at consent and on the marketplace -----------------------------------------------------


def test_consent_page_and_marketplace_mark_the_custom_view(
    service: Service, market: Market
) -> None:
    token = service.workspace("consent")
    with signed_in(service, token) as browser:
        page = browser.get("/workspaces/consent/install", params={"plugin": VIEWER})
        assert page.status_code == 200, page.text
        assert f'data-testid="permission-line">{CUSTOM_VIEW_LINE}<' in page.text
        assert 'name="permission" value="ui &#39;custom_view&#39;"' in page.text
        assert csrf_of(page)
    with market.registry.client() as visitor:
        plugin = visitor.get(f"/plugins/{VIEWER}")
        assert plugin.status_code == 200
        assert 'data-testid="custom-view-badge">Custom view</span>' in plugin.text
        assert 'data-testid="custom-view-title">Board</q>' in plugin.text
        assert CUSTOM_VIEW_LINE in plugin.text
        plain = visitor.get("/plugins/acme.alpha")
        assert "custom-view-badge" not in plain.text
