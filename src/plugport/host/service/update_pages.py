"""The updates page of a workspace: every installed plugin with a newer version, what the new
version adds and removes (in the consent's words, the dangerous lines in red), its release
notes, an Update button that goes through the install page's consent and the progress view,
and each plugin's auto-update policy with what it would do; a "Check now" button. Signed in
and CSRF-checked as the other pages; a policy change is audited as the signed-in token."""

# No ``from __future__ import annotations``: FastAPI reads the routes' parameter types.
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Request, Response

from plugport.errors import PlugportError
from plugport.host.service._update_rules import (
    NO_CHANGELOG,
    POLICIES,
    POLICY_LABELS,
    POLICY_WORDS,
)
from plugport.host.service.operations import describe
from plugport.host.service.pages import FormText, _PageRoute, _Pages
from plugport.host.service.service import HostService

__all__ = ["update_pages_router"]


def check_summary(done: dict[str, Any]) -> str:
    """One sentence for the flash after "Check now"."""
    results = done["results"]
    if not results:
        return "No plugin has an auto-update policy; set one below to have updates applied."
    said = []
    for result in results:
        if result["state"] == "apply":
            said.append(f"{result['name']} is updating to {result['version']}")
        elif result["state"] in ("consent", "failed", "error", "busy"):
            said.append(f"{result['name']}: {result['reason']}")
    if not said:
        return f"Checked {len(results)} plugin(s) with a policy: nothing to apply."
    return "Checked: " + "; ".join(said) + "."


def update_pages_router(service: HostService) -> APIRouter:
    """Include before :func:`pages_router`: its ``.../installations/{name}/{action}`` would
    take ``auto-update`` for an action."""
    pages = _Pages(service)
    route_class = type("UpdatePageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    updates = service.auto_updates

    @router.get("/workspaces/{ws}/updates")
    async def updates_page(request: Request, ws: str) -> Response:
        pages.member(request, ws)
        context = {
            "ws": ws,
            "updates": await updates.updates(ws),
            "no_changelog": NO_CHANGELOG,
            "policies": POLICIES,
            "policy_words": POLICY_WORDS,
            "policy_labels": POLICY_LABELS,
        }
        return pages.render(request, "updates.html", context)

    @router.post("/workspaces/{ws}/updates/check")
    async def check(request: Request, ws: str, csrf: FormText = None) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        done = await updates.check(ws, actor=who.actor, trigger="manual")
        return pages.redirect(request, f"/workspaces/{ws}/updates", check_summary(done), "info")

    @router.post("/workspaces/{ws}/installations/{name}/auto-update")
    async def set_policy(
        request: Request,
        ws: str,
        name: str,
        *,
        csrf: FormText = None,
        policy: FormText = None,
        back: FormText = None,
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        # Only these two places: a form never sends the browser anywhere it names.
        where = (
            f"/workspaces/{ws}/installations/{quote(name, safe='')}"
            if back == "installation"
            else f"/workspaces/{ws}/updates"
        )
        try:
            done = await updates.set_policy(ws, who, name, policy or "")
        except PlugportError as exc:
            _, body = describe(exc)
            message = f"Could not set the auto-update policy of {name}: {body['message']}"
            return pages.redirect(request, where, message, "error")
        message = f"Auto-update of {name}: {done['words']}."
        return pages.redirect(request, where, message)

    return router
