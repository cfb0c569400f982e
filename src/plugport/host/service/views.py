"""Custom views, the escape hatch of plugin UI: a plugin's own HTML from its archive, shown in
``<iframe sandbox="allow-scripts">`` (an opaque origin) under a CSP the host writes. Three
routes: the signed-in page around the frame; the frame's document and files under a signed,
expiring path (the opaque-origin frame sends no cookie, so the path is the capability); and the
bridge's calls, which the page's script posts to the route of the frame's own plugin and view,
CSRF-checked, size- and rate-limited, and answered by that plugin's ``@view`` handler only.
The rules (policies, tokens, paths, calls) are pure functions in
:mod:`plugport.host.ui._view_rules`."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
import asyncio
import json
import time
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from plugport import _web
from plugport.errors import PlugportError
from plugport.host.service.operations import BadJsonError, describe, read_capped
from plugport.host.service.pages import (
    PAGE_STATIC_DIR,
    _CsrfError,
    _PageRoute,
    _Pages,
    _SignInNeeded,
)
from plugport.host.service.service import HostService
from plugport.host.ui._view_rules import (
    ASSET_PREFIX,
    BRIDGE_FILE,
    MAX_CALL_PAYLOAD_BYTES,
    SVG_CSP,
    THEME_FILE,
    TOKEN_TTL_S,
    ViewGrant,
    ViewTokenError,
    check_call,
    frame_csp,
    head_tags,
    height_class,
    inject_head,
    read_token,
    root_variables,
    sign_token,
    theme_css,
    view_page_csp,
)
from plugport.host.ui.views import (
    CallBudgets,
    InstalledView,
    find_view,
    read_asset,
    read_document,
    theme_variables,
)

__all__ = ["CSRF_HEADER", "MAX_ANSWER_BYTES", "views_router"]

CSRF_HEADER = "x-plugport-csrf"
"""How the page's script sends its CSRF token with a call (a JSON body has no form field)."""
MAX_ANSWER_BYTES = 1024 * 1024
"""The largest answer (as JSON) a view's handler may send back through the bridge."""
_FAILURE_STATUS = {"refused": 403, "timeout": 504, "raised": 422, "crashed": 502, "invalid": 422}

# Every file under the signed path: no sniffing, no caching (each page load signs anew), no
# referrer. Access-Control-Allow-Origin lets the frame's CORS-mode loads (fonts, module
# scripts) read them: its origin is opaque ("null"), so no narrower value would match. What
# they serve is the plugin's own published files, the theme and the bridge script, to whoever
# holds the unguessable, expiring path, never anything of the signed-in user.
_ASSET_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
    "Access-Control-Allow-Origin": "*",
}
_FILE_CSP = "default-src 'none'; sandbox"
"""A view's script, stylesheet or data opened on its own in a browser: inert."""


def _origin(request: Request) -> str:
    return f"{request.url.scheme}://{request.url.netloc}"


def views_router(service: HostService) -> APIRouter:
    """The custom-view routes: include only where the host service's pages are served."""
    pages = _Pages(service)
    route_class = type("ViewPageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    _page_route(router, pages)
    plain = APIRouter(include_in_schema=False)
    _call_route(plain, pages, CallBudgets())
    _asset_route(plain, service)
    router.include_router(plain)
    return router


def _page_route(router: APIRouter, pages: _Pages) -> None:
    service = pages.service

    @router.get("/workspaces/{ws}/plugins/{plugin}/views/{view}")
    async def view_page(request: Request, ws: str, plugin: str, view: str) -> Response:
        """The page around one view: its title, a "Custom view" badge and what that means,
        and the sandboxed frame, whose document comes from a freshly signed path."""
        pages.member(request, ws)
        host = await service.workspace(ws).started()
        found = find_view(host, plugin, view)
        grant = ViewGrant(ws, plugin, found.version, view, int(time.time()) + TOKEN_TTL_S)
        token = sign_token(service.web_secret, grant)
        context = {
            "ws": ws,
            "plugin": plugin,
            "version": found.version,
            "view": found.view,
            "height_class": height_class(found.view.height_px),
            "frame_url": f"{ASSET_PREFIX}/{token}/{found.view.file}",
            "calls_url": (
                f"/workspaces/{quote(ws, safe='')}/plugins/{quote(plugin, safe='')}"
                f"/views/{quote(view, safe='')}/calls"
            ),
        }
        response = pages.render(request, "view.html", context)
        page_csp = _web.PAGE_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = view_page_csp(
            page_csp, _origin(request), token
        )
        return response


def _call_route(router: APIRouter, pages: _Pages, budgets: CallBudgets) -> None:
    @router.post("/workspaces/{ws}/plugins/{plugin}/views/{view}/calls")
    async def call(request: Request, ws: str, plugin: str, view: str) -> Response:
        """One bridge call from view ``view`` of ``plugin``: ``{"name", "payload"}`` in,
        ``{"ok": true, "value"}`` or ``{"ok": false, "error"}`` out. The plugin and view are
        this route's, so a view can only ever reach its own handler."""
        headers: dict[str, str] = {}
        try:
            status, body = await _call(pages, budgets, request, (ws, plugin, view), headers)
        except _SignInNeeded as exc:
            status, body = 401, {"ok": False, "error": str(exc)}
        except _CsrfError as exc:
            status, body = 403, {"ok": False, "error": str(exc)}
        except PlugportError as exc:
            status, described = describe(exc)
            body = {"ok": False, "error": described["message"]}
        return pages.finish(request, JSONResponse(body, status, headers=headers))


async def _call(
    pages: _Pages,
    budgets: CallBudgets,
    request: Request,
    target: tuple[str, str, str],
    headers: dict[str, str],
) -> tuple[int, dict[str, Any]]:
    """``(status, body)`` of one bridge call to ``target`` (workspace, plugin, view); what
    prevents the call is raised."""
    ws, plugin, view = target
    who = pages.member(request, ws)
    pages.check_csrf(request, request.headers.get(CSRF_HEADER))
    raw = await read_capped(request, MAX_CALL_PAYLOAD_BYTES + 1024)
    try:
        body = json.loads(raw)
    except ValueError:
        raise BadJsonError("the call's body is not JSON") from None
    name, payload = check_call(body)
    host = await pages.service.workspace(ws).started()
    find_view(host, plugin, view)
    wait = budgets.spend((ws, plugin, view, who.prefix))
    if wait:
        headers["Retry-After"] = retry = str(max(1, round(wait)))
        error = f"{plugin}'s view {view!r} calls too often; try again in {retry} s"
        return 429, {"ok": False, "error": error}
    rendered = await pages.service.workspace(ws).ui.ask(
        plugin, view, action=name, payload=payload, workspace=ws
    )
    if rendered.failure is not None:
        status = _FAILURE_STATUS.get(rendered.failure.kind, 502)
        return status, {
            "ok": False,
            "error": rendered.failure.message,
            "kind": rendered.failure.kind,
        }
    try:
        size = len(json.dumps(rendered.value, separators=(",", ":")).encode())
    except (TypeError, ValueError):
        error = f"{plugin}'s @view({view!r}) handler answered with something that is not JSON"
        return 502, {"ok": False, "error": error, "kind": "invalid"}
    if size > MAX_ANSWER_BYTES:
        error = f"{plugin}'s answer is {size} bytes, more than the {MAX_ANSWER_BYTES} allowed"
        return 502, {"ok": False, "error": error, "kind": "invalid"}
    return 200, {"ok": True, "value": rendered.value}


def _asset_route(router: APIRouter, service: HostService) -> None:
    bridge = (PAGE_STATIC_DIR / "plugport-view.js").read_bytes()

    def refused(exc: PlugportError) -> Response:
        status, described = describe(exc)
        headers = _ASSET_HEADERS | {"Content-Security-Policy": _FILE_CSP}
        return Response(
            described["message"] + "\n", status, headers=headers, media_type="text/plain"
        )

    async def open_view(token: str) -> tuple[ViewGrant, InstalledView]:
        grant = read_token(service.web_secret, token, now=time.time())
        host = await service.workspace(grant.ws).started()
        found = find_view(host, grant.plugin, grant.view)
        if found.version != grant.version:
            raise ViewTokenError(f"{grant.plugin} was updated since this view opened; reload it")
        return grant, found

    @router.get(ASSET_PREFIX + "/{token}/{path:path}")
    async def asset(request: Request, token: str, path: str) -> Response:
        """A view's document (its manifest ``file``, with the host's two tags added), one of
        its files (only from its folder, only allowed types), the theme's stylesheet or the
        bridge script: whichever ``path`` names, for the view ``token`` was signed for."""
        try:
            grant, found = await open_view(token)
            if path == BRIDGE_FILE:
                return Response(
                    bridge, headers=_ASSET_HEADERS | {"Content-Security-Policy": _FILE_CSP},
                    media_type="text/javascript; charset=utf-8",
                )  # fmt: skip
            if path == THEME_FILE:
                css = theme_css(await workspace_theme(service, grant.ws)).encode()
                return Response(
                    css, headers=_ASSET_HEADERS | {"Content-Security-Policy": _FILE_CSP},
                    media_type="text/css; charset=utf-8",
                )  # fmt: skip
            if path == found.view.file:
                document = await asyncio.to_thread(read_document, found)
                theme = await workspace_theme(service, grant.ws)
                return _document(request, token, found, document, theme)
            content, kind = await asyncio.to_thread(read_asset, found, path)
        except PlugportError as exc:
            return refused(exc)
        csp = SVG_CSP if kind == "image/svg+xml" else _FILE_CSP
        return Response(
            content, headers=_ASSET_HEADERS | {"Content-Security-Policy": csp}, media_type=kind
        )


async def workspace_theme(service: HostService, ws: str) -> dict[str, str]:
    """The values a view in ``ws`` is drawn with: the host's defaults under the workspace's
    default theme (light values; a dark or auto choice's dark block is for the pages)."""
    css = await service.appearance.workspace_stylesheet(ws)
    return theme_variables(ws) | root_variables(css)


def _document(
    request: Request,
    token: str,
    found: InstalledView,
    document: bytes,
    theme: dict[str, str],
) -> Response:
    """The view's HTML as its archive has it, plus the host's theme stylesheet and bridge
    script in its ``<head>``; sent with the frame's policy (sandboxed even when opened on its
    own). Served under the signed path, so the view's relative URLs (``app.js``) resolve to
    its signed files without a ``<base>``."""
    base = f"{ASSET_PREFIX}/{token}/"
    tags = head_tags(base + THEME_FILE, base + BRIDGE_FILE, theme)
    headers = _ASSET_HEADERS | {
        "Content-Security-Policy": frame_csp(_origin(request), token, found.folder),
    }
    del headers["Access-Control-Allow-Origin"]  # the document is navigated to, never fetched
    return Response(
        inject_head(document, tags),
        headers=headers,
        media_type="text/html; charset=utf-8",
    )
