"""A workspace's updates in the host service's JSON API, under ``/api/v1/workspaces/{ws}/``:
``updates`` (what each installed plugin could update to: the permission diff with its
dangerous lines, the release notes, its auto-update policy and what that policy would do),
``updates/check`` (check now and apply what the policies allow) and each installation's
``auto-update`` policy. The same workspace token as every other workspace route; a policy
change is audited with the token's actor by :class:`AutoUpdates`."""

# No ``from __future__ import annotations``: the routes' dependencies are bound to one service
# inside updates_router, and FastAPI must see those local aliases as objects, not names.
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import Field

from plugport.host.service.api import ErrorRoute, _documented, _Strict, read_body
from plugport.host.service.deps import workspace_member
from plugport.host.service.service import HostService
from plugport.host.service.store import Principal

__all__ = ["updates_router"]


class AutoUpdatePolicy(_Strict):
    policy: Literal["none", "patch", "minor"] = Field(
        description="none: every update waits for you; patch: 1.2.x updates are applied on "
        "their own; minor: 1.x updates too. Never one that adds a permission, never a "
        "pre-release."
    )


def updates_router(service: HostService) -> APIRouter:
    settings = service.settings
    updates = service.auto_updates

    Member = Annotated[Principal, Depends(workspace_member(service))]

    router = APIRouter(
        prefix="/api/v1/workspaces/{ws}", tags=["host service: updates"], route_class=ErrorRoute
    )

    @router.get("/updates")
    async def list_updates(ws: str, who: Member) -> dict[str, Any]:
        """Each installed plugin with a newer compatible version: ``current``, ``latest``,
        ``permissions`` (``added``, ``removed`` and every ``line`` of the new version, each
        with ``dangerous``), ``consent`` (what updating asks you to grant), ``changelog``
        (``null`` when the registry gives none) and ``auto_update`` (the policy, and what it
        would do: ``apply``, held for ``consent`` or as ``failed``, or nothing)."""
        return await updates.updates(ws)

    @router.post("/updates/check")
    async def check(ws: str, who: Member) -> dict[str, Any]:
        """Check now: every plugin with a policy is decided, and each update its policy allows
        is queued as an ``update`` operation by ``auto-update`` (its id in ``operation``)."""
        return await updates.check(ws, actor=who.actor, trigger="manual")

    @router.get("/installations/{name}/auto-update")
    async def get_policy(ws: str, name: str, who: Member) -> dict[str, Any]:
        return await updates.policy(ws, name)

    @router.put("/installations/{name}/auto-update", openapi_extra=_documented(AutoUpdatePolicy))
    async def set_policy(ws: str, name: str, request: Request, who: Member) -> dict[str, Any]:
        """Set the plugin's policy; any other value than ``none``, ``patch`` or ``minor`` is
        422 naming ``policy``."""
        given = await read_body(request, AutoUpdatePolicy, settings.max_body_bytes)
        return await updates.set_policy(ws, who, name, given.policy)

    return router
