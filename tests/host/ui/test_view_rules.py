"""The custom-view rules without I/O: the frame's and the page's CSP, the signed asset token
(expiry, tampering, another view's), the paths and types a view may load, the typed call, the
theme stylesheet, the head injection and the call budget."""

from __future__ import annotations

import json
import re

import pytest

from plugport import _web
from plugport.components import COMPONENT_SCHEMA
from plugport.errors import AuthorizationError, InvalidInputError
from plugport.host.ui._view_rules import (
    ASSET_PREFIX,
    BRIDGE_FILE,
    CALL_BURST,
    CALL_NAME_PATTERN,
    CALL_RATE_PER_S,
    MAX_CALL_PAYLOAD_BYTES,
    THEME_FILE,
    ViewGrant,
    ViewTokenError,
    asset_problem,
    assets_folder,
    check_call,
    check_origin,
    content_type,
    frame_csp,
    head_tags,
    height_class,
    inject_head,
    is_under,
    read_token,
    root_variables,
    sign_token,
    take,
    theme_css,
    view_page_csp,
)
from plugport.manifest import CustomView

SECRET = b"s" * 32
GRANT = ViewGrant("team", "acme.viewer", "1.2.0", "viewer.board", 1_000_000)
ORIGIN = "http://127.0.0.1:8765"


def _directives(policy: str) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for part in policy.split("; "):
        name, *values = part.split(" ")
        assert name not in found, f"{name} twice in {policy}"
        found[name] = values
    return found


# --- CSP ------------------------------------------------------------------------------------------


def test_frame_policy_allows_only_the_views_own_files_and_the_two_host_files() -> None:
    token = sign_token(SECRET, GRANT)
    base = f"{ORIGIN}{ASSET_PREFIX}/{token}/"
    policy = _directives(frame_csp(ORIGIN, token, "ui"))
    assert policy == {
        "default-src": ["'none'"],
        "script-src": [f"{base}ui/", f"{base}{BRIDGE_FILE}"],
        "style-src": [f"{base}ui/", f"{base}{THEME_FILE}"],
        "img-src": [f"{base}ui/"],
        "font-src": [f"{base}ui/"],
        "connect-src": ["'none'"],
        "media-src": ["'none'"],
        "object-src": ["'none'"],
        "frame-src": ["'none'"],
        "child-src": ["'none'"],
        "worker-src": ["'none'"],
        "manifest-src": ["'none'"],
        "form-action": ["'none'"],
        "base-uri": ["'none'"],
        "frame-ancestors": ["'self'"],
        "sandbox": ["allow-scripts"],
    }
    # never a keyword that would let a script or style in from anywhere else
    text = frame_csp(ORIGIN, token, "ui")
    for loose in ("'unsafe-inline'", "'unsafe-eval'", "data:", "blob:", "*", "'self' ", "http: "):
        assert loose not in text.replace("frame-ancestors 'self'", "")


def test_frame_policy_of_a_view_at_the_archive_root_covers_the_token_path_only() -> None:
    token = sign_token(SECRET, GRANT)
    policy = _directives(frame_csp(ORIGIN, token, ""))
    assert policy["script-src"][0] == f"{ORIGIN}{ASSET_PREFIX}/{token}/"
    assert policy["sandbox"] == ["allow-scripts"]


@pytest.mark.parametrize(
    "origin",
    [
        "http://evil.example; script-src *",
        "http://host name",
        "javascript://x",
        "http://127.0.0.1:8765/path",
        "http://a,b",
        "",
    ],
)
def test_an_origin_that_could_add_to_the_policy_is_refused(origin: str) -> None:
    with pytest.raises(InvalidInputError):
        check_origin(origin)
    with pytest.raises(InvalidInputError):
        frame_csp(origin, "t.t", "ui")


@pytest.mark.parametrize(
    "origin", ["http://127.0.0.1:80", "https://plugins.example.com", "http://[::1]:8000"]
)
def test_plain_origins_pass(origin: str) -> None:
    assert check_origin(origin) == origin


def test_view_page_policy_is_the_page_policy_with_frames_from_the_signed_path_only() -> None:
    page = _web.PAGE_HEADERS["Content-Security-Policy"]
    policy = view_page_csp(page, ORIGIN, "abc.def")
    assert policy.startswith(page)
    assert _directives(policy)["frame-src"] == [f"{ORIGIN}{ASSET_PREFIX}/abc.def/"]
    assert _directives(policy)["frame-ancestors"] == ["'none'"]


# --- tokens ---------------------------------------------------------------------------------------


def test_a_token_reads_back_as_its_grant_until_it_expires() -> None:
    token = sign_token(SECRET, GRANT)
    assert re.fullmatch(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+", token)
    assert read_token(SECRET, token, now=GRANT.expires - 1) == GRANT
    with pytest.raises(ViewTokenError, match="expired"):
        read_token(SECRET, token, now=GRANT.expires)
    with pytest.raises(AuthorizationError):  # a 403, as the routes answer
        read_token(SECRET, token, now=GRANT.expires + 1)


def test_a_tampered_token_is_refused() -> None:
    token = sign_token(SECRET, GRANT)
    body, mac = token.split(".")
    forged_body = sign_token(SECRET, ViewGrant("team", "acme.other", "1.2.0", "x", 2**40))
    tampered = [
        f"{body}.{mac[:-1]}{'A' if mac[-1] != 'A' else 'B'}",  # a flipped MAC
        f"{forged_body.split('.')[0]}.{mac}",  # another grant under this MAC
        f"{body[:-1]}.{mac}",
        f"{body}.",
        f".{mac}",
        body,
        token + ".x",
        token + "=",
        "a" * 5000,
        "",
    ]
    for forged in tampered:
        with pytest.raises(ViewTokenError, match="not valid"):
            read_token(SECRET, forged, now=0)
    with pytest.raises(ViewTokenError, match="not valid"):
        read_token(b"t" * 32, token, now=0)  # another service's secret


def test_each_field_of_the_grant_is_bound_by_the_mac() -> None:
    token = sign_token(SECRET, GRANT)
    others = [
        ViewGrant("other", GRANT.plugin, GRANT.version, GRANT.view, GRANT.expires),
        ViewGrant(GRANT.ws, "acme.other", GRANT.version, GRANT.view, GRANT.expires),
        ViewGrant(GRANT.ws, GRANT.plugin, "9.9.9", GRANT.view, GRANT.expires),
        ViewGrant(GRANT.ws, GRANT.plugin, GRANT.version, "viewer.other", GRANT.expires),
        ViewGrant(GRANT.ws, GRANT.plugin, GRANT.version, GRANT.view, GRANT.expires + 1),
    ]
    mac = token.split(".")[1]
    for other in others:
        other_token = sign_token(SECRET, other)
        assert other_token.split(".")[1] != mac
        assert read_token(SECRET, other_token, now=0) == other  # each reads as its own grant
        with pytest.raises(ViewTokenError):  # and no grant's body passes under another's MAC
            read_token(SECRET, f"{other_token.split('.')[0]}.{mac}", now=0)


def test_a_token_is_never_a_csrf_token() -> None:
    token = sign_token(SECRET, GRANT)
    assert _web.csrf_token(SECRET, token.split(".")[0]) != token.split(".")[1]


# --- paths and types ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("", "no file"),
        ("../main.py", "'..'"),
        ("ui/../main.py", "'..'"),
        ("ui/./app.js", "'.'"),
        ("ui//app.js", "empty"),
        ("/etc/passwd", "absolute"),
        ("ui/.secret.js", "hidden"),
        (".plugport/x.js", "hidden"),
        ("ui\\app.js", "backslash"),
        ("ui/app.js\x00.png", "control"),
        ("ui/\napp.js", "control"),
        ("a/" * 200 + "x.js", "longer"),
    ],
)
def test_paths_that_could_leave_the_folder_are_refused(path: str, reason: str) -> None:
    assert reason in asset_problem(path)


@pytest.mark.parametrize("path", ["ui/app.js", "app.js", "ui/lib/deep-1_x.min.js", "a b.css"])
def test_plain_relative_paths_pass(path: str) -> None:
    assert asset_problem(path) == ""


def test_the_folder_is_assets_or_the_folder_of_the_file() -> None:
    assert assets_folder("ui/view.html", "") == "ui"
    assert assets_folder("view.html", "") == ""
    assert assets_folder("ui/view.html", "static/") == "static"
    assert assets_folder("a/b/view.html", "") == "a/b"
    view = CustomView(id="x.y", title="X", file="ui/view.html", assets="ui/static/")
    assert assets_folder(view.file, view.assets) == "ui/static"
    assert is_under("ui", "ui/app.js")
    assert not is_under("ui", "uix/app.js")  # a sibling folder with the same prefix
    assert not is_under("ui", "ui")
    assert is_under("", "anything.js")


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("a.js", "text/javascript; charset=utf-8"),
        ("a.CSS", "text/css; charset=utf-8"),
        ("a.png", "image/png"),
        ("a.jpg", "image/jpeg"),
        ("a.jpeg", "image/jpeg"),
        ("a.gif", "image/gif"),
        ("a.webp", "image/webp"),
        ("a.svg", "image/svg+xml"),
        ("a.woff2", "font/woff2"),
        ("a.json", "application/json"),
        ("a.html", None),
        ("a.htm", None),
        ("a.py", None),
        ("a.txt", None),
        ("a.mjs", None),
        ("a.wasm", None),
        ("a.xml", None),
        ("a.js.map", None),
        ("js", None),
        ("plugport.toml", None),
    ],
)
def test_only_an_allow_list_of_types_is_served(path: str, kind: str | None) -> None:
    assert content_type(path) == kind


# --- the document ---------------------------------------------------------------------------------

TAGS = b"<link><script></script>"


@pytest.mark.parametrize(
    ("document", "expected"),
    [
        (b"<!doctype html><html><head><title>x</title>", b"<head>" + TAGS + b"<title>"),
        (b"<HTML><HEAD lang=en><title>", b"<HEAD lang=en>" + TAGS + b"<title>"),
        (b"<html lang=en><body>x", b"<html lang=en>" + TAGS + b"<body>"),
        (b"<!DOCTYPE html>\n<p>x", b"<!DOCTYPE html>" + TAGS + b"\n<p>"),
        (b"<p>no head</p>", TAGS + b"<p>no head</p>"),
        (b"<header>h</header><head>", b"<header>h</header><head>" + TAGS),
    ],
)
def test_the_host_tags_go_into_the_head_and_nothing_else_changes(
    document: bytes, expected: bytes
) -> None:
    injected = inject_head(document, TAGS)
    assert expected in injected
    assert injected.replace(TAGS, b"", 1) == document


def test_head_tags_escape_their_urls_and_theme() -> None:
    tags = head_tags("/t.css", "/b.js", {"font": "\"A\" <x> & 'y'"}).decode()
    assert tags.startswith('<link rel="stylesheet" href="/t.css"><script src="/b.js" data-theme="')
    data = re.search(r'data-theme="([^"]*)"', tags)
    assert data is not None
    assert "<" not in data.group(1)
    assert "'" not in data.group(1)
    unescaped = (
        data.group(1)
        .replace("&quot;", '"')
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&#x27;", "'")
        .replace("&amp;", "&")
    )
    assert json.loads(unescaped) == {"font": "\"A\" <x> & 'y'"}


@pytest.mark.parametrize(
    ("height", "css_class"),
    [(100, "view-h-100"), (101, "view-h-150"), (400, "view-h-400"), (420, "view-h-450"),
     (1999, "view-h-2000"), (2000, "view-h-2000"), (5, "view-h-100"), (9000, "view-h-2000")],
)  # fmt: skip
def test_heights_round_up_to_a_class_the_stylesheet_has(height: int, css_class: str) -> None:
    assert height_class(height) == css_class
    stylesheet = (_web.STATIC_DIR.parent.parent / "host/service/static/views.css").read_text()
    pixels = css_class.removeprefix("view-h-")
    assert f".{css_class} {{ height: {pixels}px; }}" in stylesheet


# --- theme ----------------------------------------------------------------------------------------


def test_root_variables_of_the_host_stylesheet() -> None:
    found = root_variables((_web.STATIC_DIR / "plugport.css").read_text())
    assert found["bg"] == "#f7f8fa"
    assert found["accent"] == "#1f4fd1"
    assert found["font"].startswith("system-ui")
    assert root_variables("p { color: red }") == {}


def test_theme_css_keeps_values_inside_their_declaration() -> None:
    css = theme_css(
        {
            "bg": "#fff",
            "font": '"Segoe UI", sans-serif',
            "shadow": "0 1px 2px rgb(0 0 0 / 6%)",
            "evil1": "red; } body { background: url(http://x/) ",
            "evil2": "url(http://x/a.png)",
            "evil3": "</style><script>",
            "evil4": "red /* */",
            "evil5": '"unclosed',
            "evil6": "\\61 red",
            "Bad Name": "red",
            "--double": "red",
        }
    )
    assert css == (
        "/* The host's theme, generated for custom views. */\n:root {\n"
        '  --bg: #fff;\n  --font: "Segoe UI", sans-serif;\n'
        "  --shadow: 0 1px 2px rgb(0 0 0 / 6%);\n}\n"
    )


# --- calls ----------------------------------------------------------------------------------------


def test_the_call_name_pattern_is_the_component_action_names() -> None:
    assert f'"pattern": {json.dumps(CALL_NAME_PATTERN)}' in json.dumps(COMPONENT_SCHEMA)


def test_a_call_is_a_name_and_a_payload() -> None:
    assert check_call({"name": "items.load", "payload": {"page": 2}}) == (
        "items.load",
        {"page": 2},
    )
    assert check_call({"name": "ping"}) == ("ping", {})
    largest = {"s": "a" * (MAX_CALL_PAYLOAD_BYTES - 8)}
    assert check_call({"name": "x", "payload": largest})[1] == largest


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"name": "x", "plugin": "acme.other"}, "may not set plugin"),
        ({"name": "x", "view": "v", "workspace": "w"}, "may not set view, workspace"),
        ({"name": "x", "payload": {}, "target": "y"}, "may not set target"),
        ({"payload": {}}, "name:"),
        ({"name": ""}, "name:"),
        ({"name": "Items"}, "name:"),
        ({"name": "a b"}, "name:"),
        ({"name": "a..b"}, "name:"),
        ({"name": "x" * 101}, "name:"),
        ({"name": 3}, "name:"),
        ({"name": "x", "payload": []}, "payload:"),
        ({"name": "x", "payload": "s"}, "payload:"),
        ({"name": "x", "payload": None}, "payload:"),
        ({"name": "x", "payload": {"s": "a" * MAX_CALL_PAYLOAD_BYTES}}, "more than the 65536"),
        (["x"], "JSON object"),
        ("x", "JSON object"),
    ],
)
def test_calls_that_break_the_shape_are_refused(body: object, reason: str) -> None:
    with pytest.raises(InvalidInputError, match=re.escape(reason)):
        check_call(body)


def test_the_call_budget_allows_a_burst_then_the_rate() -> None:
    bucket = None
    for _ in range(CALL_BURST):
        allowed, bucket, wait = take(bucket, 100.0)
        assert allowed
        assert wait == 0
    allowed, bucket, wait = take(bucket, 100.0)
    assert not allowed
    assert wait == pytest.approx(1 / CALL_RATE_PER_S)
    later = 100.0 + 1.01 / CALL_RATE_PER_S  # one call's worth of refill
    allowed, bucket, _ = take(bucket, later)
    assert allowed
    allowed, bucket, _ = take(bucket, later)
    assert not allowed
    allowed, bucket, _ = take(bucket, 10_000.0)  # a long pause refills to the burst, no more
    assert allowed
    assert bucket.tokens == CALL_BURST - 1
