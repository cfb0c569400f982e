"""A workspace's dashboard in the host service: the page (tiles that load on their own, arranged
with buttons that work without a script), one tile as a fragment or a page, its actions, its
settings form from the widget's JSON Schema, and the same under ``/api/v1`` as JSON (the tree
and its HTML) for applications that embed the renderer in their own pages."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
from collections.abc import Callable, Mapping
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Form, Request, Response
from pydantic import Field, StrictInt, StrictStr

from plugport.errors import ConflictError, NotFoundError, PlugportError
from plugport.host.service._layout_rules import Tile, move_tile, remove_tile, resize_tile
from plugport.host.service.api import ErrorRoute, _Strict
from plugport.host.service.dashboard_service import DashboardService
from plugport.host.service.deps import workspace_member
from plugport.host.service.pages import (
    PARTIAL_HEADER,
    FormText,
    _form_changes,
    _PageRoute,
    _Pages,
    templates,
)
from plugport.host.service.plugin_settings import form_fields
from plugport.host.service.service import HostService
from plugport.host.service.store import (
    FieldError,
    Principal,
)
from plugport.host.ui._extension_rules import (
    action_form,
    action_signature,
    field_types,
    signature_valid,
)
from plugport.host.ui._view_rules import SVG_CSP
from plugport.host.ui.extensions import contributions
from plugport.host.ui.render import FieldTypeView, RenderContext, render_tree
from plugport.host.ui.surfaces import Rendered
from plugport.host.ui.views import read_image

__all__ = ["dashboard_api_router", "dashboard_pages_router", "render_rendered", "ui_api_router"]

_RESERVED = {"csrf", "action", "payload"}


def render_rendered(rendered: Rendered | None, context: RenderContext, unavailable: str) -> str:
    """A surface's HTML: its tree, or an error box that says what went wrong (never a
    traceback)."""
    if rendered is None:
        return str(
            templates.get_template("_surface_error.html").render(
                kind="unavailable", message=unavailable
            )
        )
    if rendered.failure is not None:
        return str(
            templates.get_template("_surface_error.html").render(
                kind=rendered.failure.kind, message=rendered.failure.message
            )
        )
    return str(render_tree(rendered.tree, context))


def image_url(ws: str, plugin: str) -> Callable[[str], str]:
    """Where a component tree's ``image`` of ``plugin`` is served (its archive, images only)."""
    return lambda path: f"/workspaces/{ws}/plugins/{plugin}/images/{quote(path)}"


def _binding(ws: str, tile: Tile) -> tuple[str, ...]:
    """What a tile's action signature is bound to (with the session): this tile's widget."""
    return (ws, tile.plugin, "widget", tile.widget, tile.id)


def _tile_context(
    ws: str,
    tile: Tile,
    csrf: str,
    *,
    sign: Callable[[str, Mapping[str, Any]], str] | None = None,
    field_types: Mapping[str, FieldTypeView] | None = None,
) -> RenderContext:
    base = f"/workspaces/{ws}/dashboard/tiles/{tile.id}"
    return RenderContext(
        id_prefix=f"t{tile.id}",
        action_url=f"{base}/actions",
        csrf=csrf,
        asset_url=image_url(ws, tile.plugin),
        page_url=lambda page: f"/workspaces/{ws}/plugins/{tile.plugin}/pages/{page}",
        close_url=f"/workspaces/{ws}/dashboard",
        field_types=field_types or {},
        plugin=tile.plugin,
        sign=sign or (lambda action, payload: ""),
    )


def _as_settings(schema: dict[str, Any] | Any, config: dict[str, Any]) -> dict[str, Any]:
    """A tile's settings in the shape the settings form reads (no secrets in widget config)."""
    required = set(schema.get("required") or [])
    return {
        "values": config,
        "secrets": {},
        "required": sorted(required),
        "missing": sorted(k for k in required if k not in config),
        "set": sorted(config),
    }


def dashboard_pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    route_class = type("DashboardPageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    dashboards = DashboardService(service)

    def signer(request: Request, ws: str, tile: Tile) -> Callable[[str, Mapping[str, Any]], str]:
        session = pages.session(request)

        def sign(action: str, payload: Mapping[str, Any]) -> str:
            return action_signature(
                service.web_secret, (session, *_binding(ws, tile)), action, payload
            )

        return sign

    async def tile_answer(
        request: Request, ws: str, tile: Tile, rendered: Rendered | None, why: str
    ) -> Response:
        host = await service.workspace(ws).started()
        context = _tile_context(
            ws,
            tile,
            pages.csrf(request),
            sign=signer(request, ws, tile),
            field_types=field_types(contributions(host.supervisor)),
        )
        html = render_rendered(rendered, context, why)
        ok = rendered is not None and rendered.ok
        if request.headers.get(PARTIAL_HEADER):
            body = {
                # the request was answered; "failed" says the surface could not be drawn (its
                # html is then the error box, which replaces the tile's content all the same)
                "ok": True,
                "failed": not ok,
                "html": html,
                "version": rendered.version if rendered else 0,
                "overlay": bool(
                    rendered and rendered.tree and rendered.tree.get("type") == "overlay"
                ),
            }
            return pages.json(request, body)
        return pages.render(request, "tile.html", {"ws": ws, "tile": tile, "html": html, "ok": ok})

    @router.get("/workspaces/{ws}/dashboard")
    async def dashboard(request: Request, ws: str) -> Response:
        principal = pages.member(request, ws)
        layout = await dashboards.layout(ws, principal)
        context = {
            "ws": ws,
            "layout": layout,
            "catalogue": await dashboards.catalogue(ws),
        }
        return pages.render(request, "dashboard.html", context)

    @router.get("/workspaces/{ws}/dashboard/tiles/{tile_id}")
    async def tile(request: Request, ws: str, tile_id: str) -> Response:
        principal = pages.member(request, ws)
        found, rendered, why = await dashboards.render(ws, principal, tile_id)
        return await tile_answer(request, ws, found, rendered, why)

    @router.post("/workspaces/{ws}/dashboard/tiles/{tile_id}/actions")
    async def tile_action(request: Request, ws: str, tile_id: str) -> Response:
        """A button or form of the tile: ``action``, ``payload`` and ``sig`` as the host
        rendered them (a made-up action is refused before the plugin is asked), the other
        fields as ``values``."""
        principal = pages.member(request, ws)
        form = await request.form()
        csrf = form.get("csrf")
        pages.check_csrf(request, csrf if isinstance(csrf, str) else None)
        posted = action_form(form.multi_items())
        if posted.action is None:
            raise FieldError("action", "missing: say which action of the tile was used")
        found = await dashboards.tile(ws, principal, tile_id)
        binding = (pages.session(request), *_binding(ws, found))
        if not signature_valid(service.web_secret, binding, posted):
            raise FieldError("sig", "this action was not offered by the tile; reload the page")
        found, rendered, why = await dashboards.render(
            ws,
            principal,
            tile_id,
            action=posted.action,
            payload=posted.payload,
            values=posted.values,
        )
        return await tile_answer(request, ws, found, rendered, why)

    _layout_routes(router, pages, dashboards)

    @router.get("/workspaces/{ws}/plugins/{plugin}/images/{path:path}")
    async def image(request: Request, ws: str, plugin: str, path: str) -> Response:
        pages.member(request, ws)
        host = await service.workspace(ws).started()
        content, kind = read_image(host, plugin, path)
        headers = {
            "Content-Security-Policy": SVG_CSP,  # an SVG opened on its own runs nothing
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "private, max-age=300",
        }
        return Response(content, media_type=kind, headers=headers)

    @router.get("/workspaces/{ws}/ui/versions")
    async def versions(request: Request, ws: str) -> Response:
        pages.member(request, ws)
        return pages.json(request, {"versions": await dashboards.versions(ws)})

    return router


def _layout_routes(router: APIRouter, pages: _Pages, dashboards: DashboardService) -> None:
    """Adding, arranging and configuring tiles, and choosing whose layout a token sees."""

    @router.post("/workspaces/{ws}/dashboard/tiles")
    async def add(
        request: Request,
        ws: str,
        *,
        csrf: FormText = None,
        widget: Annotated[str, Form(max_length=300)] = "",
    ) -> Response:
        principal = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        plugin, _, widget_id = widget.partition(":")
        if not widget_id:
            raise FieldError("widget", "choose a widget")
        await dashboards.add(ws, principal, plugin, widget_id)
        return pages.redirect(request, f"/workspaces/{ws}/dashboard", "Widget added.")

    @router.post("/workspaces/{ws}/dashboard/tiles/{tile_id}/arrange")
    async def arrange(
        request: Request,
        ws: str,
        *,
        tile_id: str,
        csrf: FormText = None,
        op: Annotated[str, Form(pattern="^(move|resize|remove)$")] = "move",
        direction: Annotated[str, Form(max_length=20)] = "",
        width: Annotated[int, Form(ge=1, le=4)] = 2,
        height: Annotated[int, Form(ge=1, le=3)] = 1,
    ) -> Response:
        principal = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        if op == "move":
            await dashboards.change(ws, principal, lambda t: move_tile(t, tile_id, direction))
        elif op == "resize":
            await dashboards.change(ws, principal, lambda t: resize_tile(t, tile_id, width, height))
        else:
            await dashboards.change(ws, principal, lambda t: remove_tile(t, tile_id))
        if request.headers.get(PARTIAL_HEADER):
            return pages.json(request, {"ok": True, **await dashboards.layout(ws, principal)})
        return pages.redirect(request, f"/workspaces/{ws}/dashboard#tile-{tile_id}")

    @router.post("/workspaces/{ws}/dashboard/layout")
    async def own_layout(
        request: Request,
        ws: str,
        *,
        csrf: FormText = None,
        own: Annotated[str, Form(pattern="^(yes|no)$")] = "no",
    ) -> Response:
        principal = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        await dashboards.own_layout(ws, principal, own == "yes")
        message = (
            "This token now has a layout of its own."
            if own == "yes"
            else "This token sees the workspace's layout again."
        )
        return pages.redirect(request, f"/workspaces/{ws}/dashboard", message)

    async def settings_page(
        request: Request, ws: str, found: Tile, config: dict[str, Any], error: str = ""
    ) -> Response:
        schema = dashboards.schema(ws, found)
        context = {
            "ws": ws,
            "tile": found,
            "fields": form_fields(schema, _as_settings(schema, config)),
            "error": error,
        }
        return pages.render(
            request, "tile_settings.html", context, status_code=422 if error else 200
        )

    @router.get("/workspaces/{ws}/dashboard/tiles/{tile_id}/settings")
    async def tile_settings(request: Request, ws: str, tile_id: str) -> Response:
        principal = pages.member(request, ws)
        found = await dashboards.tile(ws, principal, tile_id)
        return await settings_page(request, ws, found, dict(found.config))

    @router.post("/workspaces/{ws}/dashboard/tiles/{tile_id}/settings")
    async def save_tile_settings(
        request: Request, ws: str, tile_id: str, csrf: FormText = None
    ) -> Response:
        principal = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        found = await dashboards.tile(ws, principal, tile_id)
        schema = dashboards.schema(ws, found)
        current = _as_settings(schema, dict(found.config))
        config = dict(found.config)
        try:
            changes, unset = _form_changes(
                form_fields(schema, current), current, await request.form()
            )
            config.update(changes)
            for key in unset:
                config.pop(key, None)
            await dashboards.configure(ws, principal, tile_id, config)
        except PlugportError as exc:
            return await settings_page(request, ws, found, config, str(exc))
        return pages.redirect(
            request, f"/workspaces/{ws}/dashboard#tile-{tile_id}", "Settings saved."
        )


class TileCreate(_Strict):
    plugin: StrictStr = Field(max_length=200)
    widget: StrictStr = Field(max_length=100)
    config: dict[str, Any] | None = None


class TileChange(_Strict):
    config: dict[str, Any] | None = None
    width: StrictInt | None = Field(default=None, ge=1, le=4)
    height: StrictInt | None = Field(default=None, ge=1, le=3)
    move: StrictStr | None = Field(default=None, pattern="^(earlier|later|first|last)$")


class TileAction(_Strict):
    action: StrictStr = Field(max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)


def dashboard_api_router(service: HostService) -> APIRouter:
    dashboards = DashboardService(service)

    Member = Annotated[Principal, Depends(workspace_member(service))]
    router = APIRouter(
        prefix="/api/v1/workspaces/{ws}/dashboard", route_class=ErrorRoute, tags=["dashboard"]
    )

    def answer(ws: str, found: Tile, rendered: Rendered | None, why: str) -> dict[str, Any]:
        html = render_rendered(rendered, _tile_context(ws, found, ""), why)
        failure = None
        if rendered is None:
            failure = {"kind": "unavailable", "message": why}
        elif rendered.failure is not None:
            failure = {"kind": rendered.failure.kind, "message": rendered.failure.message}
        return {
            "tile": found.public(),
            "ok": failure is None,
            "tree": rendered.tree if rendered else None,
            "html": html,
            "version": rendered.version if rendered else 0,
            "error": failure,
        }

    @router.get("")
    async def layout(ws: str, principal: Member) -> dict[str, Any]:
        """The layout this token sees, and the widgets it may add."""
        return await dashboards.layout(ws, principal) | {
            "catalogue": await dashboards.catalogue(ws)
        }

    @router.post("/tiles", status_code=201)
    async def add(ws: str, principal: Member, body: TileCreate) -> dict[str, Any]:
        return await dashboards.add(ws, principal, body.plugin, body.widget, body.config)

    @router.get("/tiles/{tile_id}")
    async def tile(ws: str, tile_id: str, principal: Member) -> dict[str, Any]:
        """The tile's component tree (checked) and its HTML, or its error."""
        return answer(ws, *await dashboards.render(ws, principal, tile_id))

    @router.post("/tiles/{tile_id}/actions")
    async def action(ws: str, tile_id: str, principal: Member, body: TileAction) -> dict[str, Any]:
        return answer(
            ws,
            *await dashboards.render(
                ws, principal, tile_id, action=body.action, payload=body.payload, values=body.values
            ),
        )

    @router.patch("/tiles/{tile_id}")
    async def change(ws: str, tile_id: str, principal: Member, body: TileChange) -> dict[str, Any]:
        if body.config is not None:
            await dashboards.configure(ws, principal, tile_id, body.config)
        if body.width is not None or body.height is not None:
            current = await dashboards.tile(ws, principal, tile_id)
            width, height = body.width or current.width, body.height or current.height
            await dashboards.change(ws, principal, lambda t: resize_tile(t, tile_id, width, height))
        if body.move is not None:
            move = body.move
            await dashboards.change(ws, principal, lambda t: move_tile(t, tile_id, move))
        return await dashboards.layout(ws, principal)

    @router.delete("/tiles/{tile_id}", status_code=204)
    async def remove(ws: str, tile_id: str, principal: Member) -> Response:
        await dashboards.change(ws, principal, lambda t: remove_tile(t, tile_id))
        return Response(status_code=204)

    return router


class SurfaceAsk(_Strict):
    config: dict[str, Any] | None = None
    action: StrictStr | None = Field(default=None, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    values: dict[str, Any] = Field(default_factory=dict)
    context: dict[str, Any] = Field(default_factory=dict)


def ui_api_router(service: HostService) -> APIRouter:
    """Any UI surface of an enabled plugin, as JSON (its checked tree and the host's HTML for
    it): what an application that embeds the renderer in its own pages calls from its
    backend, which holds the token."""

    Member = Annotated[Principal, Depends(workspace_member(service))]
    router = APIRouter(prefix="/api/v1/workspaces/{ws}/ui", route_class=ErrorRoute, tags=["ui"])

    @router.get("/versions")
    async def versions(ws: str, principal: Member) -> dict[str, Any]:
        """``plugin:surface`` -> how often the plugin invalidated it: poll, re-render on change."""
        workspace = service.workspace(ws)
        await workspace.started()
        return {"versions": workspace.ui.versions()}

    @router.post("/{plugin}/{surface}")
    async def ask(
        ws: str, plugin: str, surface: str, principal: Member, body: SurfaceAsk
    ) -> dict[str, Any]:
        """Render the surface (``action`` unset) or answer an action on it."""
        workspace = service.workspace(ws)
        host = await workspace.started()
        installation = host.state.get(plugin)
        if installation is None:
            raise NotFoundError("installed plugin", plugin)
        if not installation.enabled:
            raise ConflictError("plugin", plugin, "is disabled; enable it first")
        rendered = await workspace.ui.ask(
            plugin,
            surface,
            config=body.config,
            action=body.action,
            payload=body.payload,
            values=body.values,
            context=body.context,
            workspace=ws,
        )
        context = RenderContext(
            id_prefix=f"s-{surface.replace('.', '-')}",
            action_url=f"/api/v1/workspaces/{ws}/ui/{plugin}/{surface}",
            asset_url=image_url(ws, plugin),
        )
        html = "" if rendered.kind in ("view", "field") else render_rendered(rendered, context, "")
        failure = rendered.failure
        return {
            "plugin": plugin,
            "surface": surface,
            "kind": rendered.kind,
            "ok": failure is None,
            "tree": rendered.tree,
            "value": rendered.value,
            "html": html,
            "version": rendered.version,
            "error": None
            if failure is None
            else {"kind": failure.kind, "message": failure.message},
        }

    return router
