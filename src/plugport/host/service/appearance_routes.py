"""Appearance over HTTP: ``GET/PUT/DELETE /api/v1/workspaces/{ws}/appearance`` (a bad theme,
mode or scope is a 422 naming the field; a theme that fails the contrast check lists each
problem at its manifest path), the Appearance page of a workspace (a form with a CSRF token,
as every page), and ``/workspaces/{ws}/theme.css``, the stylesheet of the theme in effect for
the signed-in token, linked from every page after the shared one."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
import hashlib
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from pydantic import Field, StrictStr

from plugport._api_errors import error_body
from plugport.errors import PlugportError
from plugport.host.service.api import ErrorRoute, _documented, _Strict, read_body
from plugport.host.service.appearance import ThemeChoiceError
from plugport.host.service.deps import workspace_member
from plugport.host.service.pages import FormText, _PageRoute, _Pages
from plugport.host.service.service import HostService
from plugport.host.service.store import (
    FieldError,
    Principal,
)

__all__ = ["appearance_api_router", "appearance_pages_router"]

CSS_CACHE = "private, no-cache"
"""Each token may wear its own theme, and a choice applies at the next page: browsers keep the
stylesheet but ask again each time (an ``ETag`` makes that a 304), and no shared cache keeps
one token's answer for another."""


class AppearanceUpdate(_Strict):
    theme: StrictStr = Field(
        max_length=300,
        description="'plugport:light', 'plugport:dark', or '<plugin>:<theme id>' of an enabled "
        'plugin granted ui = ["themes"]',
    )
    mode: Literal["auto", "light", "dark"] = Field(
        default="auto", description="auto follows the browser's light or dark preference"
    )
    scope: Literal["token", "workspace"] = Field(
        default="token",
        description="token: this token's own choice; workspace: the default of every token "
        "that has none",
    )


def _field_error(error: FieldError) -> JSONResponse:
    problems = error.problems if isinstance(error, ThemeChoiceError) else []
    details: dict[str, Any] = {"field": error.field}
    if problems:
        details["problems"] = [{"path": p.path, "message": p.message} for p in problems]
    return JSONResponse(error_body("invalid_request", str(error), details), status_code=422)


def appearance_api_router(service: HostService) -> APIRouter:
    appearance = service.appearance

    Member = Annotated[Principal, Depends(workspace_member(service))]
    router = APIRouter(
        prefix="/api/v1/workspaces/{ws}", tags=["host service"], route_class=ErrorRoute
    )

    @router.get("/appearance")
    async def show(ws: str, who: Member) -> dict[str, Any]:
        """The theme and mode in effect for this token and where they come from (its own
        choice, the workspace's default, or Plugport light), the stored choices, and every
        theme the workspace could wear (a refused one says why)."""
        return await appearance.view(ws, who)

    @router.put("/appearance", openapi_extra=_documented(AppearanceUpdate), response_model=None)
    async def choose(ws: str, request: Request, who: Member) -> dict[str, Any] | JSONResponse:
        """Choose a theme and mode for this token, or as the workspace's default."""
        given = await read_body(request, AppearanceUpdate, service.settings.max_body_bytes)
        try:
            return await appearance.choose(ws, who, given.theme, given.mode, given.scope)
        except FieldError as exc:
            return _field_error(exc)

    @router.delete("/appearance", response_model=None)
    async def reset(
        ws: str,
        who: Member,
        scope: Annotated[Literal["token", "workspace"], Query()] = "token",
    ) -> dict[str, Any] | JSONResponse:
        """Forget this token's choice (``scope=token``) or the workspace's default."""
        try:
            return await appearance.reset(ws, who, scope)
        except FieldError as exc:
            return _field_error(exc)

    return router


def appearance_pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    route_class = type("AppearancePageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    appearance = service.appearance

    async def show(
        request: Request,
        ws: str,
        who: Principal,
        *,
        error: str | None = None,
        problems: list[Any] | None = None,
        status: int = 200,
    ) -> Response:
        view = await appearance.view(ws, who)
        titles = {t["id"]: t["title"] for t in view["themes"]}
        context = {
            "ws": ws,
            "view": view,
            "current_title": titles.get(view["theme"], view["theme"]),
            "error": error,
            "problems": problems or [],
        }
        return pages.render(request, "appearance.html", context, status_code=status)

    @router.get("/workspaces/{ws}/appearance")
    async def appearance_page(request: Request, ws: str) -> Response:
        who = pages.member(request, ws)
        return await show(request, ws, who)

    @router.post("/workspaces/{ws}/appearance")
    async def choose(
        request: Request,
        ws: str,
        *,
        csrf: FormText = None,
        theme: FormText = None,
        mode: FormText = None,
        scope: FormText = None,
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        try:
            if not theme:
                raise FieldError("theme", "choose a theme")
            done = await appearance.choose(ws, who, theme, mode or "auto", scope or "token")
        except FieldError as exc:
            if isinstance(exc, ThemeChoiceError):
                error, problems = exc.reason, exc.problems
            else:
                error, problems = str(exc), []
            return await show(request, ws, who, error=error, problems=problems, status=422)
        whose = "for you" if (scope or "token") == "token" else f"as the default of {ws}"
        said = f"Applied {done['theme']} ({done['mode']}) {whose}."
        return pages.redirect(request, f"/workspaces/{ws}/appearance", said)

    @router.post("/workspaces/{ws}/appearance/reset")
    async def reset(
        request: Request, ws: str, csrf: FormText = None, scope: FormText = None
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        try:
            done = await appearance.reset(ws, who, scope or "token")
        except FieldError as exc:
            return await show(request, ws, who, error=str(exc), status=422)
        said = f"Now showing {done['theme']} ({done['mode']})."
        return pages.redirect(request, f"/workspaces/{ws}/appearance", said)

    @router.get("/workspaces/{ws}/theme.css")
    async def stylesheet(request: Request, ws: str) -> Response:
        """The signed-in token's theme as CSS custom properties. Not signed in (or signed in
        elsewhere): an empty stylesheet with the status, so a page keeps its own look."""
        try:
            who = pages.member(request, ws)
        except PlugportError:
            return pages.finish(request, _css("/* not signed in to this workspace */\n", 403))
        css = await appearance.stylesheet(ws, who)
        etag = '"' + hashlib.sha256(css.encode()).hexdigest()[:32] + '"'
        if etag in request.headers.get("if-none-match", ""):
            return pages.finish(request, Response(status_code=304, headers=_css_headers(etag)))
        return pages.finish(request, _css(css, 200, etag))

    return router


def _css_headers(etag: str | None = None) -> dict[str, str]:
    headers = {"Cache-Control": CSS_CACHE if etag else "no-store", "Vary": "Cookie"}
    if etag:
        headers["ETag"] = etag
    return headers


def _css(text: str, status: int, etag: str | None = None) -> Response:
    return Response(text, status, headers=_css_headers(etag), media_type="text/css")
