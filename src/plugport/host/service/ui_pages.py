"""Plugins' UI extensions in the host service's pages: a plugin's own pages (its ``@page`` tree
in the host's layout, under its name), the actions their buttons and forms post back, and the
items plugins add to the host's named menus (an installation row, a task, a workflow run), whose
answers show as a modal or a side panel.

Signed in and CSRF-checked as the other pages. A surface is offered only while its plugin is
enabled and was granted the surface's permission; otherwise the page says why and the plugin is
never called. An action is accepted only with the signature the host rendered beside it, and a
menu item's context is built from the object the host found in this workspace. Everything
works without JavaScript (full pages); ``plugport-ui.js`` asks for JSON instead."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request, Response
from markupsafe import Markup

from plugport.errors import NotFoundError
from plugport.host.host import PluginHost
from plugport.host.service.pages import PARTIAL_HEADER, _CsrfError, _PageRoute, _Pages
from plugport.host.service.service import HostService
from plugport.host.service.store import FieldError
from plugport.host.ui._extension_rules import (
    ActionForm,
    Contribution,
    action_form,
    action_signature,
    back_url,
    field_types,
    find_menu_item,
    find_page,
    menu_context,
    menu_url,
    page_url,
    signature_valid,
)
from plugport.host.ui.extensions import contributions
from plugport.host.ui.render import RenderContext, render_failure, render_overlay, render_tree
from plugport.host.ui.surfaces import Rendered

__all__ = ["ui_pages_router"]

MAX_TARGET_CHARS = 200
_FORGED = (
    "This action was not offered by the page you were on (or that page is out of date); "
    "nothing was sent to the plugin. Reload the page and try again."
)


def ui_pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    route_class = type("UiPageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    ui = _UiPages(pages)

    @router.get("/workspaces/{ws}/plugins/{plugin}/pages/{page}")
    async def show_page(request: Request, ws: str, plugin: str, page: str) -> Response:
        """The page in the host's layout; with the partial header, ``{"html"}`` of its surface
        (what ``PlugportUI.mount`` refreshes)."""
        pages.member(request, ws)
        return await ui.page(request, ws, plugin, page, None)

    @router.post("/workspaces/{ws}/plugins/{plugin}/pages/{page}/actions")
    async def page_action(request: Request, ws: str, plugin: str, page: str) -> Response:
        """A button or form of the page: ``action``, ``payload`` and ``sig`` as rendered, the
        other fields as ``values``; answers the new tree (or an overlay over the page)."""
        pages.member(request, ws)
        form = await request.form()
        pages.check_csrf(request, _text(form.get("csrf")))
        posted = action_form(form.multi_items())
        if posted.action is None:
            raise FieldError("action", "missing: say which action of the page was used")
        return await ui.page(request, ws, plugin, page, posted)

    @router.post("/workspaces/{ws}/plugins/{plugin}/menus/{item}")
    async def menu_item(request: Request, ws: str, plugin: str, item: str) -> Response:
        """A menu item used on ``target`` (an installed plugin, a task or a workflow run of
        this workspace; a form field, or the query of an overlay's own forms), or an action
        of the overlay it answered with."""
        pages.member(request, ws)
        form = await request.form()
        pages.check_csrf(request, _text(form.get("csrf")))
        posted = action_form(form.multi_items())
        target = _text(form.get("target")) or request.query_params.get("target") or ""
        back = _text(form.get("back")) or request.query_params.get("back")
        return await ui.menu(request, ws, plugin, item, target=target, back=back, posted=posted)

    return router


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class _UiPages:
    def __init__(self, pages: _Pages) -> None:
        self.pages = pages
        self.service = pages.service

    async def _found(self, ws: str) -> tuple[PluginHost, list[Contribution]]:
        host = await self.service.workspace(ws).started()
        return host, contributions(host.supervisor)

    def _context(
        self,
        request: Request,
        ws: str,
        plugin: str,
        binding: tuple[str, ...],
        found: list[Contribution],
        *,
        id_prefix: str,
        action_url: str,
        close_url: str,
    ) -> RenderContext:
        secret = self.service.web_secret
        session = self.pages.session(request)

        def sign(action: str, payload: Mapping[str, Any]) -> str:
            return action_signature(secret, (session, *binding), action, payload)

        return RenderContext(
            id_prefix=id_prefix,
            action_url=action_url,
            csrf=self.pages.csrf(request),
            page_url=lambda page: page_url(ws, plugin, page),
            close_url=close_url,
            field_types=field_types(found),
            plugin=plugin,
            sign=sign,
        )

    def _check_signature(
        self, request: Request, binding: tuple[str, ...], posted: ActionForm
    ) -> None:
        secret = self.service.web_secret
        if not signature_valid(secret, (self.pages.session(request), *binding), posted):
            raise _CsrfError(_FORGED)

    @staticmethod
    def _partial(request: Request) -> bool:
        return bool(request.headers.get(PARTIAL_HEADER))

    # --- pages ---------------------------------------------------------------------------------

    async def page(
        self, request: Request, ws: str, plugin: str, page_id: str, posted: ActionForm | None
    ) -> Response:
        host, found = await self._found(ws)
        page = find_page(found, plugin, page_id, installed=host.state.get(plugin) is not None)
        binding = (ws, plugin, "page", page_id, "")
        if posted is not None:
            self._check_signature(request, binding, posted)
        url = page_url(ws, plugin, page_id)
        surfaces = self.service.workspace(ws).ui  # under the service's UI deadline

        def context(id_prefix: str) -> RenderContext:
            return self._context(
                request, ws, plugin, binding, found,
                id_prefix=id_prefix, action_url=f"{url}/actions", close_url=url,
            )  # fmt: skip

        answer = await surfaces.ask(
            plugin,
            page_id,
            action=posted.action if posted else None,
            payload=posted.payload if posted else None,
            values=posted.values if posted else None,
            workspace=ws,
        )
        overlay = None
        if answer.ok and answer.tree.get("type") == "overlay":
            overlay = render_tree(answer.tree, context("pp-overlay"))
            if self._partial(request):
                return self.pages.json(request, {"ok": True, "html": overlay, "overlay": True})
            # Without the script the page is drawn again beneath the overlay.
            answer = await surfaces.ask(plugin, page_id, workspace=ws)
        surface = _surface(answer, context("pp-page"))
        if self._partial(request):
            return self.pages.json(request, {"ok": True, "html": surface, "overlay": False})
        return self.pages.render(
            request,
            "plugin_page.html",
            {
                "ws": ws,
                "plugin": plugin,
                "page": page,
                "url": url,
                "surface": surface,
                "overlay": overlay,
            },
        )

    # --- menus ---------------------------------------------------------------------------------

    async def _target(self, host: PluginHost, ws: str, menu: str, target: str) -> Any:
        """The object a menu item was used on, found in this workspace (a 404 otherwise)."""
        if not target or len(target) > MAX_TARGET_CHARS:
            raise FieldError(
                "target",
                f"must name what the menu was used on (1 to {MAX_TARGET_CHARS} characters)",
            )
        if menu == "installation":
            installation = host.state.get(target)
            if installation is None:
                raise NotFoundError("installed plugin", target, f"nothing by that name in {ws}")
            return {"name": installation.name}
        if menu == "task":
            return await self.service.tasks.task(ws, target)
        return await self.service.tasks.workflow_run(ws, target)

    async def menu(
        self,
        request: Request,
        ws: str,
        plugin: str,
        item_id: str,
        *,
        target: str,
        back: str | None,
        posted: ActionForm,
    ) -> Response:
        host, found = await self._found(ws)
        item = find_menu_item(found, plugin, item_id, installed=host.state.get(plugin) is not None)
        context = menu_context(item.menu, await self._target(host, ws, item.menu, target))
        binding = (ws, plugin, "menu", item_id, target)
        if posted.action is not None:
            self._check_signature(request, binding, posted)
        back = back_url(ws, item.menu, target, back)
        answer = await self.service.workspace(ws).ui.ask(
            plugin,
            item_id,
            action=posted.action,
            payload=posted.payload if posted.action else None,
            values=posted.values if posted.action else None,
            context=context,
            workspace=ws,
        )
        partial = self._partial(request)
        failure, tree = answer.failure, answer.tree
        if failure is None and tree is None:
            said = f"{item.title} ({plugin}): done."
            if partial:
                done = {"ok": True, "kind": "success", "message": said, "close": True}
                return self.pages.json(request, done)
            return self.pages.redirect(request, back, said)
        query = urlencode({"target": target, "back": back})
        render = self._context(
            request, ws, plugin, binding, found,
            id_prefix="pp-menu", action_url=f"{menu_url(ws, plugin, item_id)}?{query}",
            close_url=back,
        )  # fmt: skip
        if failure is not None:
            body = render_failure(failure.kind, failure.message, plugin)
            overlay = render_overlay(item.overlay, item.title, body, render)
        elif tree.get("type") == "overlay":  # its kind is the manifest's, which was reviewed
            overlay = render_tree(tree | {"kind": item.overlay}, render)
        else:
            wrapped = {"type": "overlay", "kind": item.overlay, "title": item.title}
            overlay = render_tree(wrapped | {"children": [tree]}, render)
        if partial:
            return self.pages.json(request, {"ok": True, "html": overlay, "overlay": True})
        return self.pages.render(
            request,
            "plugin_overlay.html",
            {
                "ws": ws,
                "plugin": plugin,
                "item": item,
                "target": target,
                "back": back,
                "overlay": overlay,
            },
        )


def _surface(answer: Rendered, context: RenderContext) -> Markup:
    if answer.failure is not None:
        return render_failure(answer.failure.kind, answer.failure.message, answer.plugin)
    return render_tree(answer.tree, context)
