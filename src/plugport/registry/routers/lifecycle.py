"""``/api/v1/plugins/{name}/…``: yank, deprecate, unlist (publishers); suspend, delete,
quarantine and release a version (admins). Same API for every client: the CLI and the web
UI call these."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from pydantic import BaseModel, ConfigDict, Field

from plugport.registry.deps import Caller, SessionDep
from plugport.registry.models import Plugin
from plugport.registry.routers.plugins import version_public
from plugport.registry.schemas import VersionPublic
from plugport.registry.services import catalog, lifecycle

router = APIRouter(prefix="/api/v1/plugins", tags=["lifecycle"])


class Reason(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class Deprecation(Reason):
    replaced_by: str | None = Field(default=None, max_length=130)


def _state(plugin: Plugin) -> dict[str, Any]:
    return {
        **catalog.plugin_summary(plugin),
        "listed": plugin.listed,
        "suspended": plugin.suspended,
    }


@router.post("/{name}/versions/{version}/yank")
def yank(
    name: str, version: str, body: Reason, session: SessionDep, caller: Caller
) -> VersionPublic:
    plugin = lifecycle.managed_plugin(session, name, caller)
    row = lifecycle.set_yanked(session, plugin, version, reason=body.reason, actor=caller.identity)
    return version_public(name, row)


@router.post("/{name}/versions/{version}/unyank")
def unyank(name: str, version: str, session: SessionDep, caller: Caller) -> VersionPublic:
    plugin = lifecycle.managed_plugin(session, name, caller)
    row = lifecycle.set_yanked(session, plugin, version, reason=None, actor=caller.identity)
    return version_public(name, row)


@router.post("/{name}/versions/{version}/quarantine")
def quarantine(
    name: str, version: str, body: Reason, session: SessionDep, caller: Caller
) -> VersionPublic:
    """Admins: refuse this version to every host, even pinned (unlike a yank). It leaves the
    signed index and the versions hosts resolve from; its TUF target stays, flagged, so hosts
    that have it installed see it at their next update check. Audited with the reason."""
    plugin = lifecycle.managed_plugin(session, name, caller, admin=True)
    row = lifecycle.set_quarantined(
        session, plugin, version, reason=body.reason, actor=caller.identity
    )
    return version_public(name, row)


@router.post("/{name}/versions/{version}/release")
def release(name: str, version: str, session: SessionDep, caller: Caller) -> VersionPublic:
    """Admins: end a quarantine; the version is offered again as before. Audited."""
    plugin = lifecycle.managed_plugin(session, name, caller, admin=True)
    row = lifecycle.set_quarantined(session, plugin, version, reason=None, actor=caller.identity)
    return version_public(name, row)


@router.post("/{name}/deprecate")
def deprecate(name: str, body: Deprecation, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller)
    lifecycle.deprecate(
        session, plugin, reason=body.reason, replaced_by=body.replaced_by, actor=caller.identity
    )
    return _state(plugin)


@router.delete("/{name}/deprecate")
def undeprecate(name: str, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller)
    lifecycle.deprecate(session, plugin, reason=None, replaced_by=None, actor=caller.identity)
    return _state(plugin)


@router.post("/{name}/unlist")
def unlist(name: str, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller)
    return _state(lifecycle.set_listed(session, plugin, False, actor=caller.identity))


@router.post("/{name}/list")
def list_(name: str, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller)
    return _state(lifecycle.set_listed(session, plugin, True, actor=caller.identity))


@router.post("/{name}/suspend")
def suspend(name: str, body: Reason, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller, admin=True)
    return _state(
        lifecycle.set_suspended(session, plugin, reason=body.reason, actor=caller.identity)
    )


@router.post("/{name}/unsuspend")
def unsuspend(name: str, session: SessionDep, caller: Caller) -> dict[str, Any]:
    plugin = lifecycle.managed_plugin(session, name, caller, admin=True)
    return _state(lifecycle.set_suspended(session, plugin, reason=None, actor=caller.identity))


@router.delete("/{name}")
def delete(
    name: str, request: Request, tasks: BackgroundTasks, session: SessionDep, caller: Caller
) -> dict[str, Any]:
    """Rows go in this request's transaction; unshared blobs are removed after it commits."""
    plugin = lifecycle.managed_plugin(session, name, caller, admin=True)
    orphans = lifecycle.delete_plugin(session, plugin, actor=caller.identity)
    for digest in orphans:
        tasks.add_task(request.app.state.blobs.delete, digest)
    return {"deleted": name, "blobs": len(orphans)}
