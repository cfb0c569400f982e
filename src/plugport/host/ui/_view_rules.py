"""The rules of a custom view, decided without I/O: the Content-Security-Policy its frame
document and the page around it are sent with, the signed capability in its asset URLs, which
archive paths and file types it may load, the typed call its bridge forwards, the theme's
stylesheet, and how fast it may call. The frame is ``<iframe sandbox="allow-scripts">``: an
opaque origin that can run its own scripts and nothing else. Everything here keeps that true:
a view reaches only its own files and its own plugin's ``@view`` handler, through the host.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import html
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from plugport.errors import AuthorizationError, InvalidInputError

__all__ = [
    "ASSET_PREFIX",
    "BRIDGE_FILE",
    "CALL_NAME_PATTERN",
    "HOST_DIR",
    "MAX_CALL_PAYLOAD_BYTES",
    "SVG_CSP",
    "THEME_FILE",
    "TOKEN_TTL_S",
    "Bucket",
    "ViewGrant",
    "ViewTokenError",
    "asset_problem",
    "assets_folder",
    "check_call",
    "check_origin",
    "content_type",
    "frame_csp",
    "head_tags",
    "height_class",
    "inject_head",
    "is_under",
    "read_token",
    "root_variables",
    "sign_token",
    "take",
    "theme_css",
    "view_page_csp",
]

ASSET_PREFIX = "/host-service/ui-assets"
"""Where a view's document and files are served: ``{ASSET_PREFIX}/{token}/{archive path}``."""
HOST_DIR = ".plugport"
"""The host's own files under a view's signed path. A plugin's asset path never has a
segment starting with a dot (the manifest's rule, and :func:`asset_problem`'s), so these
never collide with the plugin's."""
THEME_FILE = f"{HOST_DIR}/theme.css"
BRIDGE_FILE = f"{HOST_DIR}/plugport-view.js"
TOKEN_TTL_S = 600
"""How long a view's asset URLs work: the frame loads its files when the page opens; a view
open longer than this loads nothing more until the page is reloaded."""
MAX_TOKEN_CHARS = 2048
MAX_CALL_PAYLOAD_BYTES = 64 * 1024
"""The largest ``payload`` (as compact JSON) one bridge call may carry."""
MAX_ASSET_PATH_CHARS = 300
CALL_NAME_PATTERN = r"^[a-z0-9][a-z0-9_-]*(?:\.[a-z0-9][a-z0-9_-]*)*$"
"""A call's name: the component schema's action-name pattern (``plugport.components``)."""
MAX_CALL_NAME_CHARS = 100
HEIGHT_STEP_PX = 50
"""Frames are sized by class (the page's CSP allows no inline style): ``height_px`` rounded
up to a multiple of this; ``views.css`` has one class per step from 100 to 2000 px."""
CALL_RATE_PER_S = 10.0
CALL_BURST = 30
"""A view may make ``CALL_BURST`` calls at once and ``CALL_RATE_PER_S`` a second after that."""

_CALL_NAME_RE = re.compile(CALL_NAME_PATTERN)
_TOKEN_CONTEXT = b"plugport-view-asset\0"
_ORIGIN_RE = re.compile(
    r"^https?://[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^https?://\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$"
)
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
_VARIABLE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,63}$")
_VARIABLE_VALUE_RE = re.compile(r"^[A-Za-z0-9 #%(),./_'\"-]{1,200}$")

CONTENT_TYPES = {
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "svg": "image/svg+xml",
    "woff2": "font/woff2",
    "json": "application/json",
}
"""The only kinds of file a view's assets folder serves; anything else is refused."""

SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
"""An SVG opened on its own (not through ``<img>``, where it never runs script): no script,
no request, no plugin or form; its own ``<style>`` only."""


class ViewTokenError(AuthorizationError):
    """A view's asset URL that does not (or no longer) work: forged, altered, expired, or for
    another view."""

    def __init__(self, message: str) -> None:
        super().__init__("custom_view", message)


# --- the signed capability in asset URLs ----------------------------------------------------------


@dataclass(frozen=True)
class ViewGrant:
    """What one asset URL grants: the files of view ``view`` of ``plugin`` at ``version`` in
    workspace ``ws``, until ``expires`` (seconds since the epoch). The cookie that signs a user
    in is not sent by the view's opaque-origin frame, so the URL itself is the capability."""

    ws: str
    plugin: str
    version: str
    view: str
    expires: int


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, body: str) -> str:
    return _b64(hmac.new(secret, _TOKEN_CONTEXT + body.encode("ascii"), hashlib.sha256).digest())


def sign_token(secret: bytes, grant: ViewGrant) -> str:
    """``body.mac``: the grant as base64url JSON and its HMAC-SHA256 under the service's web
    secret (a context prefix keeps it from ever equalling a CSRF token). One path segment."""
    fields = [grant.ws, grant.plugin, grant.version, grant.view, grant.expires]
    body = _b64(json.dumps(fields, separators=(",", ":")).encode())
    return f"{body}.{_mac(secret, body)}"


def read_token(secret: bytes, token: str, *, now: float) -> ViewGrant:
    """The grant ``token`` carries, checked: the MAC first (in constant time), then the expiry.
    Raises :class:`ViewTokenError` saying which check failed, never what the MAC should be."""
    if len(token) > MAX_TOKEN_CHARS or not _TOKEN_RE.match(token):
        raise ViewTokenError("this view's address is not valid; reload the page")
    body, mac = token.split(".")
    if not hmac.compare_digest(_mac(secret, body), mac):
        raise ViewTokenError("this view's address is not valid; reload the page")
    try:
        ws, plugin, version, view, expires = json.loads(_unb64(body))
    except (ValueError, TypeError, binascii.Error):  # signed, so only a bug of ours gets here
        raise ViewTokenError("this view's address is not valid; reload the page") from None
    if not all(isinstance(v, str) for v in (ws, plugin, version, view)) or not isinstance(
        expires, int
    ):
        raise ViewTokenError("this view's address is not valid; reload the page")
    if now >= expires:
        raise ViewTokenError("this view's address has expired; reload the page")
    return ViewGrant(ws, plugin, version, view, expires)


# --- paths and types ------------------------------------------------------------------------------


def assets_folder(file: str, assets: str) -> str:
    """The archive folder a view's files come from: ``assets``, else the folder of ``file``
    (``""``: the archive's root). No leading or trailing slash."""
    folder = assets.strip("/") if assets else posixpath.dirname(file)
    return folder.strip("/")


def asset_problem(path: str) -> str:
    """Why ``path`` (as it came in the URL) cannot name a file of a view, or ``""``: only a
    relative path of plain segments, none empty, ``.``, ``..`` or hidden."""
    segments = path.split("/")
    checks = (
        (not path, "no file named"),
        (
            len(path) > MAX_ASSET_PATH_CHARS,
            f"the path is longer than {MAX_ASSET_PATH_CHARS} characters",
        ),
        (
            "\\" in path or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path),
            "the path holds a backslash or a control character",
        ),
        (path.startswith("/"), "the path is absolute"),
        (any(s in ("", ".", "..") for s in segments), "the path has an empty, '.' or '..' segment"),
        (any(s.startswith(".") for s in segments), "the path has a hidden segment"),
    )
    return next((reason for failed, reason in checks if failed), "")


def is_under(folder: str, path: str) -> bool:
    """Whether archive path ``path`` is inside ``folder`` (``""``: the root holds everything)."""
    return not folder or path.startswith(folder + "/")


def content_type(path: str) -> str | None:
    """The ``Content-Type`` a view's asset is served with, or None: a type it may not load."""
    _, dot, extension = path.rpartition(".")
    return CONTENT_TYPES.get(extension.lower()) if dot else None


# --- Content-Security-Policy ----------------------------------------------------------------------


def check_origin(origin: str) -> str:
    """``scheme://host[:port]`` as the page was asked for, checked to be nothing more (it
    lands in a CSP header, where a space or ``;`` would add a source or a directive)."""
    if not _ORIGIN_RE.match(origin):
        raise InvalidInputError(f"{origin!r} is not an http(s) origin")
    return origin


def frame_csp(origin: str, token: str, folder: str) -> str:
    """The policy of a view's frame document, whatever its HTML says: scripts, styles, images
    and fonts only from the view's own assets folder (and the host's bridge script and theme
    stylesheet) under this token's path; no connection, no form, no plugin, no nested frame,
    no worker, no ``<base>``; framed only by the host's own pages; and sandboxed as the
    iframe attribute does, so the document is sandboxed even when opened on its own."""
    base = f"{check_origin(origin)}{ASSET_PREFIX}/{token}/"
    assets = base + (folder + "/" if folder else "")
    return "; ".join(
        (
            "default-src 'none'",
            f"script-src {assets} {base}{BRIDGE_FILE}",
            f"style-src {assets} {base}{THEME_FILE}",
            f"img-src {assets}",
            f"font-src {assets}",
            "connect-src 'none'",
            "media-src 'none'",
            "object-src 'none'",
            "frame-src 'none'",
            "child-src 'none'",
            "worker-src 'none'",
            "manifest-src 'none'",
            "form-action 'none'",
            "base-uri 'none'",
            "frame-ancestors 'self'",
            "sandbox allow-scripts",
        )
    )


def view_page_csp(page_csp: str, origin: str, token: str) -> str:
    """The host page around a view: the pages' own policy, and frames only from this view's
    signed path. A browser checks the embedding page's ``frame-src`` on every navigation of
    the frame, so the view cannot navigate itself anywhere else (to carry data off in a URL)."""
    return f"{page_csp}; frame-src {check_origin(origin)}{ASSET_PREFIX}/{token}/"


# --- the frame document ---------------------------------------------------------------------------

_HEAD_RE = re.compile(rb"<head(?:[\s/][^>]*)?>", re.IGNORECASE)
_HTML_RE = re.compile(rb"<html(?:[\s/][^>]*)?>", re.IGNORECASE)
_DOCTYPE_RE = re.compile(rb"^\s*<!doctype[^>]*>", re.IGNORECASE)


def head_tags(theme_url: str, bridge_url: str, theme: Mapping[str, str]) -> bytes:
    """What the host adds to a view's HTML, and nothing else: its theme stylesheet and its
    bridge script (a classic script, so ``window.plugport`` exists before the view's own
    scripts run), with the theme's values as JSON in an escaped attribute."""
    data = html.escape(json.dumps(dict(theme), sort_keys=True), quote=True)
    return (
        f'<link rel="stylesheet" href="{html.escape(theme_url, quote=True)}">'
        f'<script src="{html.escape(bridge_url, quote=True)}" data-theme="{data}"></script>'
    ).encode()


def inject_head(document: bytes, tags: bytes) -> bytes:
    """``document`` with ``tags`` right after its ``<head>`` tag (else after ``<html>``, else
    after the doctype, else at the start: an HTML parser puts them in the head either way)."""
    for pattern in (_HEAD_RE, _HTML_RE, _DOCTYPE_RE):
        found = pattern.search(document)
        if found is not None:
            return document[: found.end()] + tags + document[found.end() :]
    return tags + document


def height_class(height_px: int) -> str:
    """The class that sizes a view's frame: ``view-h-N``, N the height rounded up to
    :data:`HEIGHT_STEP_PX` (within the manifest's 100 to 2000 px)."""
    clamped = min(max(height_px, 100), 2000)
    return f"view-h-{-(-clamped // HEIGHT_STEP_PX) * HEIGHT_STEP_PX}"


# --- theme ----------------------------------------------------------------------------------------


def root_variables(css: str) -> dict[str, str]:
    """The custom properties of a stylesheet's first ``:root`` block (name without ``--``)."""
    block = re.search(r":root\s*\{([^}]*)\}", css)
    if block is None:
        return {}
    return {
        m.group(1): m.group(2).strip()
        for m in re.finditer(r"--([A-Za-z0-9-]+)\s*:\s*([^;]+);", block.group(1))
    }


def theme_css(variables: Mapping[str, str]) -> str:
    """The stylesheet a view gets: the theme's values as custom properties of ``:root``. A name
    or value that could leave its declaration (``;``, braces, ``<``, a backslash, ``url(``) is
    left out: a theme is data, and this text lands in every view."""
    lines = [
        f"  --{name}: {value};"
        for name, value in sorted(variables.items())
        if _VARIABLE_NAME_RE.match(name)
        and _VARIABLE_VALUE_RE.match(value)
        and "url(" not in value.lower()
        and "/*" not in value
        and value.count('"') % 2 == 0
        and value.count("'") % 2 == 0
    ]
    body = "\n".join(lines)
    return f"/* The host's theme, generated for custom views. */\n:root {{\n{body}\n}}\n"


# --- calls through the bridge ---------------------------------------------------------------------


def check_call(body: Any) -> tuple[str, dict[str, Any]]:
    """``(name, payload)`` of one bridge call, as the parent page posts it: exactly ``name``
    and ``payload``. Which plugin and view it goes to is the route's, never the body's, so a
    body that tries to say (``plugin``, ``view`` or anything else) is refused."""
    if not isinstance(body, dict):
        raise InvalidInputError("a call is a JSON object with 'name' and 'payload'")
    extra = sorted(set(body) - {"name", "payload"})
    if extra:
        raise InvalidInputError(
            f"a call has only 'name' and 'payload'; it may not set {', '.join(extra)}"
        )
    name = body.get("name")
    if (
        not isinstance(name, str)
        or len(name) > MAX_CALL_NAME_CHARS
        or not _CALL_NAME_RE.match(name)
    ):
        raise InvalidInputError(
            f"name: a call's name is 1 to {MAX_CALL_NAME_CHARS} lower-case letters, digits, "
            "'_', '-' in dot-separated parts (e.g. 'items.load')"
        )
    payload = body.get("payload", {})
    if not isinstance(payload, dict):
        raise InvalidInputError("payload: a call's payload is a JSON object")
    size = len(json.dumps(payload, separators=(",", ":")).encode())
    if size > MAX_CALL_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"payload: {size} bytes is more than the {MAX_CALL_PAYLOAD_BYTES} a call may carry"
        )
    return name, payload


@dataclass(frozen=True)
class Bucket:
    """One view's call budget: ``tokens`` left at time ``at`` (seconds)."""

    tokens: float
    at: float


def take(
    bucket: Bucket | None,
    now: float,
    *,
    rate_per_s: float = CALL_RATE_PER_S,
    burst: int = CALL_BURST,
) -> tuple[bool, Bucket, float]:
    """Spend one call from ``bucket`` (None: a full one): ``(allowed, the bucket now, seconds
    until one more call is allowed)``."""
    tokens = float(burst) if bucket is None else bucket.tokens
    if bucket is not None:
        tokens = min(float(burst), tokens + max(0.0, now - bucket.at) * rate_per_s)
    if tokens >= 1:
        return True, Bucket(tokens - 1, now), 0.0
    return False, Bucket(tokens, now), (1 - tokens) / rate_per_s
