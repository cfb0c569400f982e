"""Custom views in a real Chromium against a real host service: a well-behaved view round-trips
a call through the bridge and is drawn with the host theme; a hostile view tries every way out
of its frame (fetch, XMLHttpRequest, WebSocket, an image, a script and a frame from another
server, a form post, navigating the top page or itself, a popup, the parent's document, the
cookie) and each is blocked: by the browser's CSP reports and exceptions the view sends back
through the bridge, and by a target server that must never see a request. A message that names
another plugin's view never reaches it. Skips, saying why, where Playwright or Chromium is
missing."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from tests.browser.conftest import accessibility_problems
from tests.host._service import Service, market_at, serving, settings_for
from tests.host._views import (
    BOARD,
    ESCAPE,
    PROBE,
    PROBER,
    VIEWER,
    install,
    publish_views,
    ui_calls,
)

WS = "views"


class _Target(BaseHTTPRequestHandler):
    """A server the hostile view aims at: records every request, answers each with 200."""

    seen: list[str]

    def _record(self) -> None:
        self.seen.append(f"{self.command} {self.path}")
        body = b"/* reached */"
        self.send_response(200)
        self.send_header("Content-Type", "text/javascript")
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _record

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def target_server() -> Iterator[tuple[str, list[str]]]:
    seen: list[str] = []
    handler = type("Target", (_Target,), {"seen": seen})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Service, str, str, list[str]]]:
    """The host service with acme.viewer and acme.prober installed in workspace ``views``:
    (service, its token, the target server's URL and its request log)."""
    root = tmp_path_factory.mktemp("views-browser")
    with target_server() as (target, seen), market_at(root / "market") as market:
        publish_views(market, target=target)
        with serving(settings_for(root, market)) as service:
            token = service.workspace(WS)
            install(service, token, WS, VIEWER)
            install(service, token, WS, PROBER)
            yield service, token, target, seen


@contextlib.contextmanager
def signed_in_page(chromium: Any, service: Service, token: str) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1000, "height": 900})
    context.set_default_timeout(15_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # The host page's own CSP reports (a frame navigation it refused), collected from the first
    # moment (an init script runs before the page's scripts and is not subject to its CSP).
    page.add_init_script(
        "if (window === window.top) { window.__violations = [];"
        " document.addEventListener('securitypolicyviolation', function (e) {"
        " window.__violations.push(e.effectiveDirective + ' ' + e.blockedURI); }); }"
    )
    try:
        page.goto(f"{service.url}/workspaces")
        page.get_by_label("Workspace token").fill(token)
        page.keyboard.press("Enter")
        page.wait_for_url(f"{service.url}/workspaces/{WS}")
        yield page
    finally:
        context.close()
    assert not errors, f"JavaScript errors on the host page: {errors}"


def _view_url(service: Service, plugin: str, view: str) -> str:
    return f"{service.url}/workspaces/{WS}/plugins/{plugin}/views/{view}"


def _frame(page: Any, marker: str) -> Any:
    # The iframe's src is set before its frame commits the navigation; wait for
    # the frame itself to reach the view's URL, not only for the element.
    handle = page.wait_for_selector(f"iframe[src*='{marker}']", state="attached")
    frame = handle.content_frame()
    assert frame is not None
    frame.wait_for_url(lambda url: marker in url)
    return frame


def test_a_view_calls_its_own_handler_and_wears_the_host_theme(
    chromium: Any, served: tuple[Service, str, str, list[str]]
) -> None:
    service, token, _, _ = served
    with signed_in_page(chromium, service, token) as page:
        page.goto(f"{service.url}/workspaces/{WS}/installations/{VIEWER}")
        page.click(f"[data-testid=custom-view-link][data-view='{BOARD}']")
        page.wait_for_selector("[data-testid=custom-view-badge]")
        assert accessibility_problems(page) == []
        frame = _frame(page, "/ui/board.html")
        frame.wait_for_selector("body[data-answer]")
        answer = json.loads(frame.get_attribute("body", "data-answer"))
        assert answer["plugin"] == VIEWER
        assert answer["action"] == "echo"
        assert answer["payload"] == {"n": 41}
        assert answer["workspace"] == WS
        assert frame.inner_text("#out") == "loaded"
        assert frame.evaluate("window.origin") == "null"  # opaque: sandboxed, no same-origin
        # the host theme's variables, from the stylesheet the host injected
        background = frame.evaluate("getComputedStyle(document.body).backgroundColor")
        assert background == "rgb(247, 248, 250)"  # --bg: #f7f8fa
        assert frame.evaluate("window.plugport.theme.accent") == "#1f4fd1"
        frame.wait_for_function("document.querySelector('img').complete")
        assert frame.evaluate("document.querySelector('img').naturalWidth") == 8  # its own SVG
        height = page.eval_on_selector("iframe", "e => e.getBoundingClientRect().height")
        assert height == 450
        assert page.evaluate("window.__violations") == []


def test_a_hostile_view_is_contained_and_reaches_only_its_own_handler(
    chromium: Any, served: tuple[Service, str, str, list[str]]
) -> None:
    service, token, target, seen = served
    viewer_calls = ui_calls(service, WS, VIEWER)
    prober_calls = ui_calls(service, WS, PROBER)
    url = _view_url(service, PROBER, PROBE)
    with signed_in_page(chromium, service, token) as page:
        page.goto(url)
        frame = _frame(page, "/probe/index.html")
        frame.wait_for_selector("body[data-report], body[data-report-error]")
        assert frame.get_attribute("body", "data-report-error") is None
        answer = json.loads(frame.get_attribute("body", "data-report"))
        assert page.url == url  # the top page was not navigated
        assert len(page.context.pages) == 1  # no popup

    # the report went through the bridge to the prober's own handler and back
    assert answer["plugin"] == PROBER
    assert answer["action"] == "report"
    results = answer["payload"]
    assert results["origin"] == "null"
    assert results["bridge"] == "object"
    assert results["theme_accent"] == results["css_accent"] == "#1f4fd1"
    assert results["cookie"] == "threw SecurityError"
    assert results["parent_document"] == "threw SecurityError"
    assert results["parent_location"] == "threw SecurityError"
    assert results["local_storage"] == "threw SecurityError"
    assert results["window_open"] == "allowed: null"  # no allow-popups: no window
    assert not results["fetch"].startswith("allowed"), results["fetch"]
    assert not results["fetch_same_host"].startswith("allowed"), results["fetch_same_host"]
    assert not results["xhr"].startswith("allowed"), results["xhr"]
    assert results["img"] == "failed error"
    assert results["script"] == "failed error"
    assert results["crafted"].startswith("refused: "), results["crafted"]
    blocked = {(v["directive"], v["blocked"]) for v in results["violations"]}
    for directive, address in (
        ("connect-src", f"{target}/fetch"),
        ("connect-src", f"{service.url}/api/v1/workspaces"),
        ("connect-src", f"{target}/xhr"),
        ("connect-src", f"{target.replace('http', 'ws')}/ws"),
        ("img-src", f"{target}/img"),
        ("script-src-elem", f"{target}/script.js"),
        ("frame-src", target),  # a frame's report names only the origin
    ):
        assert (directive, address) in blocked, blocked

    # nothing reached the target server: no fetch, XHR, socket, image, script, frame, form,
    # top navigation or popup
    assert seen == []
    # the crafted message naming acme.viewer's view reached no handler at all; the report is
    # the one call the prober made
    assert ui_calls(service, WS, VIEWER) == viewer_calls
    assert ui_calls(service, WS, PROBER) == prober_calls + 1


def test_a_view_cannot_navigate_its_frame_away(
    chromium: Any, served: tuple[Service, str, str, list[str]]
) -> None:
    service, token, target, seen = served
    url = _view_url(service, PROBER, ESCAPE)
    before = ui_calls(service, WS, PROBER)
    with signed_in_page(chromium, service, token) as page:
        page.goto(url)
        # the host page's frame-src refuses the frame's navigation to the target server (a
        # frame's report names only the origin)
        page.wait_for_function("t => window.__violations.includes('frame-src ' + t)", arg=target)
        assert page.url == url
        assert not any(target in f.url for f in page.frames)
    assert ui_calls(service, WS, PROBER) == before + 1  # its "leaving" call came first
    assert seen == []


def test_the_frame_document_opened_on_its_own_is_still_sandboxed(
    chromium: Any, served: tuple[Service, str, str, list[str]]
) -> None:
    service, token, _, _ = served
    with signed_in_page(chromium, service, token) as page:
        page.goto(_view_url(service, VIEWER, BOARD))
        frame_src = page.get_attribute("iframe[data-custom-view]", "data-src")
        page.goto(f"{service.url}{frame_src}")
        page.wait_for_selector("#out")
        assert page.evaluate("window.origin") == "null"  # the CSP's sandbox directive
        assert (
            page.evaluate("() => { try { return document.cookie; } catch (e) { return e.name; } }")
            == "SecurityError"
        )
