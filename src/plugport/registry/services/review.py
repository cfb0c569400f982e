"""Human review: the queue of uploads waiting for a decision, what changed since the last
published version (permissions first: that is what a reviewer must judge; then the Python
libraries it ships), and the decision, which is audited with its reason."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport._permissions import PermissionChanges, permission_changes
from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.manifest import Permissions
from plugport.registry.libraries import library_diff
from plugport.registry.models import Plugin, PluginVersion, utcnow
from plugport.registry.services import audit
from plugport.registry.services.publish import refresh_latest
from plugport.versions import parse_version

__all__ = [
    "UNREADABLE",
    "Submission",
    "decide",
    "permission_diff",
    "plain_changes",
    "queue",
    "submission",
]

UNREADABLE = "Permissions could not be read: see the API's version record"


def permission_diff(previous: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """What ``current`` grants beyond ``previous`` and what it dropped, per permission.

    Lists (network hosts, UI surfaces, topic patterns) are compared item by item; numbers
    (storage) and flags (config) by value. ``previous`` None means a first version: all added.
    """
    before = previous or {}
    diff: dict[str, Any] = {}
    for key in sorted(set(before) | set(current)):
        old, new = before.get(key), current.get(key)
        if isinstance(old, dict) or isinstance(new, dict):
            nested = permission_diff(old or {}, new or {})
            if nested:
                diff[key] = nested
        elif isinstance(old, list) or isinstance(new, list):
            added = sorted(set(new or []) - set(old or []))
            removed = sorted(set(old or []) - set(new or []))
            if added or removed:
                diff[key] = {"added": added, "removed": removed}
        elif old != new and (old or new):
            diff[key] = {"from": old, "to": new}
    return diff


def plain_changes(previous: dict[str, Any] | None, current: dict[str, Any]) -> PermissionChanges:
    """The same change as :func:`permission_diff` in the words the host's consent uses, one
    line per grant added or removed (never a raw value such as ``True``)."""
    try:
        before = Permissions.model_validate(previous) if previous is not None else None
        after = Permissions.model_validate(current)
    except ValidationError:  # stored by an older manifest schema: say so, do not guess
        return PermissionChanges(added=[UNREADABLE], removed=[])
    return permission_changes(before, after)


@dataclass(frozen=True)
class Submission:
    name: str
    version: PluginVersion
    previous: str | None
    permission_diff: dict[str, Any]
    permission_changes: PermissionChanges
    """The grants added and removed since ``previous``, in plain words."""
    library_diff: dict[str, list[dict[str, Any]]]
    """Libraries added, removed and changed since ``previous`` (see
    :func:`plugport.registry.libraries.library_diff`)."""


def _find(session: Session, name: str, version: str) -> tuple[Plugin, PluginVersion]:
    row = session.execute(
        select(Plugin, PluginVersion)
        .join(PluginVersion, PluginVersion.plugin_id == Plugin.id)
        .where(Plugin.name == name, PluginVersion.version == version)
    ).one_or_none()
    if row is None:
        raise NotFoundError("version", f"{name} {version}")
    return row[0], row[1]


def submission(session: Session, name: str, version: str) -> Submission:
    plugin, row = _find(session, name, version)
    published = session.scalars(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin.id, PluginVersion.status == "published"
        )
    ).all()
    older = [v for v in published if parse_version(v.version) < parse_version(version)]
    previous = max(older, key=lambda v: parse_version(v.version), default=None)
    before = (previous.manifest.get("permissions") or {}) if previous else None
    after = row.manifest.get("permissions") or {}
    libraries = library_diff(previous.libraries if previous else None, row.libraries)
    return Submission(
        name,
        row,
        previous.version if previous else None,
        permission_diff(before, after),
        plain_changes(before, after),
        libraries,
    )


def queue(session: Session, *, limit: int = 100) -> list[Submission]:
    """Oldest first: first come, first reviewed."""
    rows = session.execute(
        select(Plugin.name, PluginVersion.version)
        .join(PluginVersion, PluginVersion.plugin_id == Plugin.id)
        .where(PluginVersion.status == "pending_review")
        .order_by(PluginVersion.created_at, PluginVersion.id)
        .limit(limit)
    ).all()
    return [submission(session, name, version) for name, version in rows]


def decide(
    session: Session, name: str, version: str, *, approve: bool, reason: str, actor: str
) -> PluginVersion:
    if not reason.strip():
        raise InvalidInputError("reason: say why, for the publisher and the audit log")
    plugin, row = _find(session, name, version)
    if row.status != "pending_review":
        raise ConflictError("version", f"{name} {version}", f"is {row.status}, not pending review")
    row.status = "published" if approve else "rejected"
    row.review_reason = reason.strip()
    if approve:
        row.published_at = utcnow()
        refresh_latest(session, plugin)
    action = "version.approve" if approve else "version.reject"
    audit.record(session, actor, action, f"{name} {version}", reason=row.review_reason)
    return row
