"""Revoking a publisher key, and what that withdraws: every published version the key signed
in its namespace leaves what the registry offers (the signed index, the versions hosts resolve
from, search) at once, in the revoking transaction, and stays on the plugins' pages saying why.

Withdrawal is not stored on the versions: it is read off the key on every query
(``PluginVersion.signer_revoked_at``), so there is nothing to keep in step. What *is* stored
from a version, its plugin's ``latest_version``, is recomputed here; the signed index follows
on the next request to any node (its entries' digest changed), and kept search answers on every
node are dropped by the trigger on ``publisher_keys.revoked_at`` (migration 0017)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport.errors import NotFoundError
from plugport.registry.models import Plugin, PluginVersion, PublisherKey, utcnow
from plugport.registry.services import audit, namespaces
from plugport.registry.services.publish import refresh_latest

__all__ = ["revoke_key"]


def revoke_key(session: Session, namespace_name: str, keyid: str, *, actor: str) -> PublisherKey:
    """Revoke ``keyid`` (once: revoking it again changes nothing and records nothing). The
    audit record counts the versions this withdrew (``withdrawn_versions``) and names their
    plugins."""
    namespace = namespaces.get_namespace(session, namespace_name)
    key = session.scalar(
        select(PublisherKey).where(
            PublisherKey.namespace_id == namespace.id, PublisherKey.key_id == keyid
        )
    )
    if key is None:
        raise NotFoundError("publisher key", keyid)
    if key.revoked_at is not None:
        return key
    key.revoked_at = utcnow()
    session.flush()
    signed = session.execute(
        select(Plugin, PluginVersion.version)
        .join(PluginVersion, PluginVersion.plugin_id == Plugin.id)
        .where(
            Plugin.namespace_id == namespace.id,
            PluginVersion.key_id == keyid,
            PluginVersion.status == "published",
        )
        .order_by(Plugin.name, PluginVersion.version)
    ).all()
    plugins = {plugin.id: plugin for plugin, _ in signed}
    for plugin in plugins.values():
        refresh_latest(session, plugin)
    audit.record(
        session,
        actor,
        "key.revoke",
        namespace_name,
        key_id=keyid,
        withdrawn_versions=len(signed),
        plugins=sorted(p.name for p in plugins.values()),
    )
    return key
