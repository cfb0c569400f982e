"""What anyone may read: plugins, their published versions (and which of them are withdrawn,
and why), downloads (counted), and the server-side choice of the best version for a host."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from plugport.errors import InvalidInputError, NotFoundError
from plugport.registry.models import DailyStat, Plugin, PluginVersion, utcnow
from plugport.registry.services.signed_index import current_entries
from plugport.versions import is_compatible, parse_version

__all__ = [
    "Candidate",
    "bump_daily",
    "choose_version",
    "count_download",
    "downloadable",
    "get_plugin",
    "get_version",
    "offered",
    "published",
    "withdrawn_reason",
]


@dataclass(frozen=True)
class Candidate:
    version: str
    engines: dict[str, str]
    yanked: bool


def choose_version(
    candidates: Iterable[Candidate], engines: dict[str, str]
) -> tuple[str | None, list[str]]:
    """The highest non-yanked, final (not pre-release) version compatible with every engine
    given (``{"plugport": "0.1.0", "myapp": "2.4"}``), and why each higher one was passed
    over. Pre-releases and yanked versions stay installable by exact version."""
    for name, version in engines.items():
        try:
            parse_version(version)
        except ValueError:
            raise InvalidInputError(f"{name}: {version!r} is not a PEP 440 version") from None
    skipped: list[str] = []
    for candidate in sorted(candidates, key=lambda c: parse_version(c.version), reverse=True):
        if candidate.yanked:
            skipped.append(f"{candidate.version}: yanked")
            continue
        if parse_version(candidate.version).is_prerelease:
            skipped.append(f"{candidate.version}: pre-release")
            continue
        clash = [
            f"{engine} {version} is not in {candidate.engines[engine]}"
            for engine, version in engines.items()
            if engine in candidate.engines and not is_compatible(version, candidate.engines[engine])
        ]
        if clash:
            skipped.append(f"{candidate.version}: {'; '.join(clash)}")
            continue
        return candidate.version, skipped
    return None, skipped


def get_plugin(session: Session, name: str) -> Plugin:
    """A plugin the public may see: not suspended, with at least one published version (a
    plugin whose only upload waits for review does not exist yet for anyone else)."""
    plugin = session.scalar(select(Plugin).where(Plugin.name == name))
    visible = (
        plugin is not None
        and not plugin.suspended
        and session.scalar(
            select(PluginVersion.id)
            .where(PluginVersion.plugin_id == plugin.id, PluginVersion.status == "published")
            .limit(1)
        )
    )
    if plugin is None or not visible:
        raise NotFoundError("plugin", name)
    return plugin


def published(session: Session, plugin: Plugin) -> list[PluginVersion]:
    rows = session.scalars(
        select(PluginVersion).where(
            PluginVersion.plugin_id == plugin.id, PluginVersion.status == "published"
        )
    ).all()
    return sorted(rows, key=lambda v: parse_version(v.version), reverse=True)


def offered(session: Session, plugin: Plugin) -> list[PluginVersion]:
    """The published versions the signed index lists (withdrawn ones left out), newest first:
    what a host may resolve from, decided by the index's own definition
    (:func:`~plugport.registry.services.signed_index.current_entries`), so a host is never
    pointed at a version the index does not vouch for."""
    listed = {entry.version for entry in current_entries(session, plugin_id=plugin.id)}
    return [row for row in published(session, plugin) if row.version in listed]


def withdrawn_reason(row: PluginVersion) -> str | None:
    """Why the registry no longer offers ``row``, in words for its pages and API; None while
    it is offered (yanked or not)."""
    if row.signer_revoked_at is None:
        return None
    revoked = row.signer_revoked_at.astimezone(UTC)
    return (
        f"signed with key {row.key_id[:16]}… which the publisher revoked on "
        f"{revoked:%Y-%m-%d %H:%M} UTC"
    )


def get_version(session: Session, plugin: Plugin, version: str) -> PluginVersion:
    """A published version by exact number, yanked and withdrawn ones included: pinned installs
    of yanked ones still work, and a withdrawn one's page and usage reports (an uninstall) do."""
    for row in published(session, plugin):
        if row.version == version:
            return row
    raise NotFoundError("version", f"{plugin.name} {version}")


def downloadable(row: PluginVersion, name: str) -> PluginVersion:
    """``row``, unless the registry quarantined it: then its archive is not served at all
    (a version-level suspension), whoever asks and however."""
    if row.quarantined_reason is not None:
        raise NotFoundError(
            "downloadable version",
            f"{name} {row.version}",
            f"the registry quarantined it ({row.quarantined_reason})",
        )
    return row


def count_download(session: Session, plugin: Plugin, version: str, *, today: date) -> None:
    session.execute(
        update(Plugin).where(Plugin.id == plugin.id).values(downloads=Plugin.downloads + 1)
    )
    bump_daily(session, plugin, version, today, "downloads")


def bump_daily(session: Session, plugin: Plugin, version: str, day: date, column: str) -> None:
    """Add one to a day's counter in one statement (an upsert), so two reports of the same
    plugin, version and day at once both count, instead of one failing on the primary key."""
    dialect = session.get_bind().dialect.name
    insert: Any = postgresql_insert if dialect == "postgresql" else sqlite_insert
    counters = dict.fromkeys(("downloads", "installs", "uninstalls"), 0) | {column: 1}
    statement = insert(DailyStat).values(plugin_id=plugin.id, version=version, day=day, **counters)
    session.execute(
        statement.on_conflict_do_update(
            index_elements=["plugin_id", "version", "day"],
            set_={column: getattr(DailyStat, column) + 1},
        )
    )


def plugin_summary(plugin: Plugin) -> dict[str, Any]:
    average = plugin.rating_sum / plugin.rating_count if plugin.rating_count else None
    return {
        "name": plugin.name,
        "display_name": plugin.display_name,
        "description": plugin.description,
        "categories": plugin.categories,
        "tags": plugin.tags,
        "latest_version": plugin.latest_version,
        "downloads": plugin.downloads,
        "rating": {"average": average, "count": plugin.rating_count},
        "deprecated": plugin.deprecated_reason,
        "replaced_by": plugin.replaced_by,
        "updated_at": plugin.updated_at.isoformat(),
        "verified_domain": plugin.verified_domain,
    }


def today() -> date:
    return utcnow().date()
