"""After publication: yank and unyank a version, deprecate, unlist, suspend and delete a
plugin. Publishers manage their own namespace; suspension and deletion are for admins. Every
change is audited with who and why."""

from __future__ import annotations

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.manifest import check_plugin_name
from plugport.registry.models import (
    DailyStat,
    Namespace,
    Plugin,
    PluginVersion,
    Review,
    VersionContent,
    utcnow,
)
from plugport.registry.services import access, audit, namespaces, tokens
from plugport.registry.services.publish import refresh_latest
from plugport.registry.services.tokens import Principal

__all__ = [
    "delete_plugin",
    "deprecate",
    "managed_plugin",
    "set_listed",
    "set_quarantined",
    "set_suspended",
    "set_yanked",
]


def _reason(reason: str) -> str:
    if not reason.strip():
        raise InvalidInputError("reason: say why; users and the audit log see it")
    return reason.strip()


def managed_plugin(
    session: Session, name: str, caller: Principal, *, admin: bool = False
) -> Plugin:
    """The plugin, if the caller may manage it: its namespace's publish scope and a role
    there (owner or member), or admin; only admin when ``admin``."""
    plugin = session.scalar(select(Plugin).where(Plugin.name == name))
    if plugin is None:
        raise NotFoundError("plugin", name)
    if admin:
        tokens.require(caller, "admin")
        return plugin
    namespace = session.get_one(Namespace, plugin.namespace_id)  # a foreign key: there
    role = namespaces.role_of(session, namespace.id, caller.identity)
    access.require(caller, namespace.name, role, "publish")
    return plugin


def set_yanked(
    session: Session, plugin: Plugin, version: str, *, reason: str | None, actor: str
) -> PluginVersion:
    """``reason`` yanks (never chosen by resolution, still downloadable by exact version);
    ``None`` unyanks."""
    row = session.scalar(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.version == version,
            PluginVersion.status == "published",
        )
    )
    if row is None:
        raise NotFoundError("published version", f"{plugin.name} {version}")
    if reason is None:
        if row.yanked_reason is None:
            raise ConflictError("version", f"{plugin.name} {version}", "is not yanked")
        row.yanked_reason = None
        audit.record(session, actor, "version.unyank", f"{plugin.name} {version}")
    else:
        row.yanked_reason = _reason(reason)
        audit.record(
            session, actor, "version.yank", f"{plugin.name} {version}", reason=row.yanked_reason
        )
    refresh_latest(session, plugin)
    return row


def set_quarantined(
    session: Session,
    plugin: Plugin,
    version: str,
    *,
    reason: str | None,
    actor: str,
    report_id: int | None = None,
) -> PluginVersion:
    """``reason`` quarantines (an admin's act: the version leaves the signed index and the
    versions hosts resolve from, so even a pinned install is refused, and its TUF target is
    flagged so hosts that have it are told); ``None`` releases it. ``report_id``: the report
    it answers, kept in the audit record."""
    row = session.scalar(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.version == version,
            PluginVersion.status == "published",
        )
    )
    if row is None:
        raise NotFoundError("published version", f"{plugin.name} {version}")
    subject = f"{plugin.name} {version}"
    if reason is None:
        if row.quarantined_reason is None:
            raise ConflictError("version", subject, "is not quarantined")
        row.quarantined_reason = row.quarantined_at = None
        audit.record(session, actor, "version.release", subject)
    else:
        if row.quarantined_reason is not None:
            raise ConflictError("version", subject, "is quarantined already")
        row.quarantined_reason = _reason(reason)
        row.quarantined_at = utcnow()
        detail = {"report": report_id} if report_id is not None else {}
        audit.record(
            session, actor, "version.quarantine", subject, reason=row.quarantined_reason, **detail
        )
    refresh_latest(session, plugin)
    return row


def deprecate(
    session: Session, plugin: Plugin, *, reason: str | None, replaced_by: str | None, actor: str
) -> Plugin:
    if reason is None:
        plugin.deprecated_reason = plugin.replaced_by = None
        audit.record(session, actor, "plugin.undeprecate", plugin.name)
        return plugin
    if replaced_by is not None:
        try:
            check_plugin_name(replaced_by)
        except ValueError as exc:
            raise InvalidInputError(f"replaced_by: {exc}") from None
        if replaced_by == plugin.name:
            raise InvalidInputError("replaced_by: a plugin cannot replace itself")
    plugin.deprecated_reason = _reason(reason)
    plugin.replaced_by = replaced_by
    audit.record(
        session, actor, "plugin.deprecate", plugin.name, reason=reason, replaced_by=replaced_by
    )
    return plugin


def set_listed(session: Session, plugin: Plugin, listed: bool, *, actor: str) -> Plugin:
    plugin.listed = listed
    audit.record(session, actor, "plugin.list" if listed else "plugin.unlist", plugin.name)
    return plugin


def set_suspended(session: Session, plugin: Plugin, *, reason: str | None, actor: str) -> Plugin:
    plugin.suspended = reason is not None
    action = "plugin.suspend" if reason is not None else "plugin.unsuspend"
    audit.record(session, actor, action, plugin.name, reason=reason and _reason(reason))
    return plugin


def delete_plugin(session: Session, plugin: Plugin, *, actor: str) -> list[str]:
    """Remove the plugin's rows; returns the blobs no other version shares, for the caller to
    delete once this transaction has committed (so a failure never leaves rows without
    their archives)."""
    version_ids = select(PluginVersion.id).where(PluginVersion.plugin_id == plugin.id)
    archives = set(
        session.scalars(select(PluginVersion.sha256).where(PluginVersion.plugin_id == plugin.id))
    )
    shown = set(
        session.scalars(
            select(VersionContent.sha256).where(VersionContent.version_id.in_(version_ids))
        )
    )
    digests = archives | shown
    session.execute(delete(VersionContent).where(VersionContent.version_id.in_(version_ids)))
    for table in (PluginVersion, Review, DailyStat):
        session.execute(delete(table).where(table.plugin_id == plugin.id))
    session.delete(plugin)
    audit.record(session, actor, "plugin.delete", plugin.name, versions=len(archives))
    session.flush()
    shared = set(
        session.scalars(select(PluginVersion.sha256).where(PluginVersion.sha256.in_(digests)))
    ) | set(
        session.scalars(select(VersionContent.sha256).where(VersionContent.sha256.in_(digests)))
    )
    return sorted(digests - shared)
