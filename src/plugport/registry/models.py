"""The registry's tables (SQLAlchemy 2). Alembic migrations in ``migrations/`` create them;
the models describe them for queries. Times are stored and returned in UTC."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    and_,
    literal_column,
    select,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.default import DefaultExecutionContext
from sqlalchemy.orm import (
    DeclarativeBase,
    Mapped,
    column_property,
    mapped_column,
    relationship,
)

from plugport.versions import canonical_version

__all__ = [
    "AbuseReport",
    "ApiToken",
    "AuditRecord",
    "Base",
    "DailyStat",
    "IndexState",
    "Member",
    "Namespace",
    "Plugin",
    "PluginVersion",
    "Profile",
    "PublisherKey",
    "Review",
    "TufMetadata",
    "TufNamespaceKey",
    "TufState",
    "UtcDateTime",
    "utcnow",
]


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no zone, so it is put back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC) if value is not None else None

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UtcDateTime, dict[str, Any]: JSON}


class Namespace(Base):
    """``acme`` in ``acme.hello``: who may publish under it, and with which keys."""

    __tablename__ = "namespaces"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    trusted: Mapped[bool] = mapped_column(Boolean, default=False)
    """Versions without a high-severity finding are published without waiting for review."""
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_domain: Mapped[str | None] = mapped_column(String(253), default=None)
    """The domain the badge shows (migration 0021): the first of the namespace's domains still
    verified, kept by ``services.domains`` whenever a check changes one; None: no badge."""
    name_review: Mapped[str | None] = mapped_column(String(16), default=None)
    """``held``: the name resembles a verified namespace or a popular plugin, so every upload
    waits for review; ``cleared``: a reviewer decided it is no impersonation; None: neither."""
    name_review_reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Which name it resembles (held), or the reviewer's reason (cleared)."""
    members: Mapped[list[Member]] = relationship(back_populates="namespace")


class DomainVerification(Base):
    """A domain a namespace's owner claims (migration 0021): the token the registry issued
    for it and what the checks found. ``status``: pending (never proved), verified, lost
    (proved once, not any more)."""

    __tablename__ = "domain_verifications"
    __table_args__ = (UniqueConstraint("namespace_id", "domain"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    domain: Mapped[str] = mapped_column(String(253))
    token: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(16), default="pending")
    method: Mapped[str | None] = mapped_column(String(8), default=None)
    """``dns`` or ``https``: what proved it last."""
    failures: Mapped[int] = mapped_column(Integer, default=0)
    """Checks in a row that did not prove it."""
    last_error: Mapped[str | None] = mapped_column(Text, default=None)
    requested_by: Mapped[str] = mapped_column(String(200))
    requested_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_at: Mapped[datetime | None] = mapped_column(default=None)
    checked_at: Mapped[datetime | None] = mapped_column(default=None)


class Member(Base):
    """Someone's role in a namespace: owners manage its keys and members and publish;
    members publish (each also needs a token with ``publish:<namespace>``)."""

    __tablename__ = "namespace_members"
    __table_args__ = (CheckConstraint("role IN ('owner', 'member')", name="ck_member_role"),)
    namespace_id: Mapped[int] = mapped_column(
        ForeignKey("namespaces.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))  # owner or member
    added_at: Mapped[datetime | None] = mapped_column(default=utcnow)
    """None for members added before migration 0008."""
    added_by: Mapped[str | None] = mapped_column(String(200), default=None)
    namespace: Mapped[Namespace] = relationship(back_populates="members")


class PublisherKey(Base):
    """An Ed25519 public key allowed to sign archives for one namespace."""

    __tablename__ = "publisher_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id", ondelete="CASCADE"))
    key_id: Mapped[str] = mapped_column(String(64), unique=True)
    public_key_pem: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)


class ApiToken(Base):
    """A bearer token: only its SHA-256 is stored; ``prefix`` finds the row and is shown in
    listings so an operator can tell tokens apart without seeing them."""

    __tablename__ = "api_tokens"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    prefix: Mapped[str] = mapped_column(String(16), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    identity: Mapped[str] = mapped_column(String(200), index=True)
    scopes: Mapped[list[str]] = mapped_column(JSON)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(default=None)
    last_used_at: Mapped[datetime | None] = mapped_column(default=None)


class Plugin(Base):
    __tablename__ = "plugins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(130), unique=True)
    namespace_id: Mapped[int] = mapped_column(ForeignKey("namespaces.id"))
    display_name: Mapped[str] = mapped_column(String(80), default="")
    description: Mapped[str] = mapped_column(Text, default="")
    categories: Mapped[list[str]] = mapped_column(JSON, default=list)
    tags: Mapped[list[str]] = mapped_column(JSON, default=list)
    latest_version: Mapped[str | None] = mapped_column(String(64), default=None)
    """The highest published version neither yanked nor withdrawn (its signing key revoked);
    what search shows."""
    listed: Mapped[bool] = mapped_column(Boolean, default=True)
    suspended: Mapped[bool] = mapped_column(Boolean, default=False)
    deprecated_reason: Mapped[str | None] = mapped_column(Text, default=None)
    replaced_by: Mapped[str | None] = mapped_column(String(130), default=None)
    downloads: Mapped[int] = mapped_column(BigInteger, default=0)
    rating_count: Mapped[int] = mapped_column(Integer, default=0)
    rating_sum: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)
    verified_domain: Mapped[str | None] = column_property(
        select(Namespace.verified_domain)
        .where(Namespace.id == namespace_id)
        .correlate_except(Namespace)
        .scalar_subquery()
    )
    """Its namespace's verified domain (the badge), read with the plugin, so a page of cards
    costs no query per card."""
    versions: Mapped[list[PluginVersion]] = relationship(back_populates="plugin")


# Search and browse (migration 0005): one index per sort over the visible plugins only, so a
# page is read off an index and the scan stops when it is full. Search writes the same
# predicate (listed, not suspended, published) so the planners can use them.
_VISIBLE = and_(Plugin.listed, ~Plugin.suspended, Plugin.latest_version.is_not(None))
for _name, *_columns in (
    ("ix_plugins_visible_downloads", Plugin.downloads.desc(), Plugin.name),
    ("ix_plugins_visible_updated", Plugin.updated_at.desc(), Plugin.name),
    ("ix_plugins_visible_name", Plugin.name),
):
    Index(_name, *_columns, sqlite_where=_VISIBLE, postgresql_where=_VISIBLE)
# The rated plugins, small and covering (id too, for PostgreSQL): sorting them by average (an
# expression SQLite's reflection cannot read back from an index) is cheap; the unrated follow
# by name.
_RATED = and_(_VISIBLE, Plugin.rating_count > literal_column("0"))
Index(
    "ix_plugins_visible_rated",
    Plugin.rating_count,
    Plugin.rating_sum,
    Plugin.name,
    Plugin.id,
    sqlite_where=_RATED,
    postgresql_where=_RATED,
)


_OWNER = Plugin.__table__.alias("signer_owner")
"""The version's own plugin, inside :attr:`PluginVersion.signer_revoked_at`: aliased, so the
subquery never correlates with a ``plugins`` of the query around it."""


def _canonical_of_row(context: DefaultExecutionContext) -> str:
    parameters: dict[str, Any] = context.get_current_parameters()  # type: ignore[no-untyped-call]
    return canonical_version(str(parameters["version"]))


class PluginVersion(Base):
    """One uploaded archive. Versions are immutable: a name+version is never reused, not even
    after a rejection or a yank, nor under another spelling of the same PEP 440 version."""

    __tablename__ = "plugin_versions"
    __table_args__ = (
        UniqueConstraint("plugin_id", "version"),
        # Migration 0009: ``1.0`` and ``1.0.0`` are one version, so a pin names one archive.
        Index("uq_plugin_versions_canonical", "plugin_id", "canonical_version", unique=True),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    plugin_id: Mapped[int] = mapped_column(ForeignKey("plugins.id", ondelete="CASCADE"))
    version: Mapped[str] = mapped_column(String(64))
    canonical_version: Mapped[str] = mapped_column(String(64), default=_canonical_of_row)
    """:func:`plugport.versions.canonical_version` of ``version``, filled in by every insert
    that does not give it (the ORM and Core alike), so no path can create a second spelling."""
    status: Mapped[str] = mapped_column(String(16))  # pending_review, published, rejected
    sha256: Mapped[str] = mapped_column(String(64))
    length: Mapped[int] = mapped_column(BigInteger)
    key_id: Mapped[str] = mapped_column(String(64))
    signature: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """The publisher's signature document as uploaded: hosts check it against the key they
    pinned for the namespace, so even this registry cannot alter an archive unnoticed."""
    manifest: Mapped[dict[str, Any]] = mapped_column(JSON)
    scan: Mapped[dict[str, Any]] = mapped_column(JSON)
    libraries: Mapped[list[dict[str, Any]] | None] = mapped_column(JSON, default=None)
    """The locked Python libraries the archive ships (``registry.libraries.record``): name,
    version, wheels with sha256, size and whether compiled. None for versions uploaded before
    migration 0010, which recorded nothing."""
    yanked_reason: Mapped[str | None] = mapped_column(Text, default=None)
    quarantined_reason: Mapped[str | None] = mapped_column(Text, default=None)
    """Set by an admin (migration 0022): the registry refuses this version to every host, even
    pinned (unlike a yank); it stays in the TUF targets flagged, so hosts that have it installed
    are told. None while it is not quarantined."""
    quarantined_at: Mapped[datetime | None] = mapped_column(default=None)
    review_reason: Mapped[str | None] = mapped_column(Text, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    published_at: Mapped[datetime | None] = mapped_column(default=None)
    signer_revoked_at: Mapped[datetime | None] = column_property(
        select(PublisherKey.revoked_at)
        .join(_OWNER, _OWNER.c.namespace_id == PublisherKey.namespace_id)
        .where(_OWNER.c.id == plugin_id, PublisherKey.key_id == key_id)
        .correlate_except(PublisherKey, _OWNER)
        .scalar_subquery()
    )
    """When the plugin's namespace revoked the key that signed this archive (None while the key
    stands). Such a version is *withdrawn*: the registry no longer offers it (not in the signed
    index, not among the versions hosts resolve from) but still shows it, saying why. Derived
    from the key on every read, never copied here, so no revocation can be half-applied; a
    query filters by it as by a column (``PluginVersion.signer_revoked_at.is_(None)``)."""
    plugin: Mapped[Plugin] = relationship(back_populates="versions")


class VersionContent(Base):
    """A file of a version's archive the marketplace shows (migration 0019): its icon,
    screenshots, README and changelog, each checked at publish (``plugport._content_rules``)
    and stored as its own blob, named by its sha256 like the archives, so its URL never
    changes and a blob shared by several versions is stored once."""

    __tablename__ = "version_content"
    __table_args__ = (UniqueConstraint("version_id", "kind", "position"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version_id: Mapped[int] = mapped_column(
        ForeignKey("plugin_versions.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))  # icon, screenshot, readme, changelog
    position: Mapped[int] = mapped_column(Integer, default=0)  # the screenshots' order
    path: Mapped[str] = mapped_column(String(255))  # in the archive
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(Integer)
    media_type: Mapped[str] = mapped_column(String(64))
    width: Mapped[int | None] = mapped_column(Integer, default=None)
    height: Mapped[int | None] = mapped_column(Integer, default=None)


# The permission filter (migration 0005): per permission, the published versions that ask
# for it. The predicate holds the JSON test, so a lookup here reads no manifest; search
# takes these predicates from the indexes themselves, so query and index cannot drift.
_GRANTS = {
    "network": (
        "json_array_length(manifest, '$.permissions.network') > 0",
        "json_array_length(manifest #> '{permissions,network}') > 0",
    ),
    "storage": (
        "json_extract(manifest, '$.permissions.storage') > 0",
        "CAST(manifest #>> '{permissions,storage}' AS BIGINT) > 0",
    ),
    "events": (
        "coalesce(json_array_length(manifest, '$.permissions.events.publish'), 0)"
        " + coalesce(json_array_length(manifest, '$.permissions.events.subscribe'), 0) > 0",
        "coalesce(json_array_length(manifest #> '{permissions,events,publish}'), 0)"
        " + coalesce(json_array_length(manifest #> '{permissions,events,subscribe}'), 0) > 0",
    ),
    "ui": (
        "json_array_length(manifest, '$.permissions.ui') > 0",
        "json_array_length(manifest #> '{permissions,ui}') > 0",
    ),
    "config": (
        "json_extract(manifest, '$.permissions.config') = 1",
        "manifest #>> '{permissions,config}' = 'true'",
    ),
    # Migration 0011: what plugins may do with credentials (manifests from before have none).
    "credentials": (
        "json_extract(manifest, '$.permissions.credentials') <> '{}'",
        "manifest #>> '{permissions,credentials}' <> '{}'",
    ),
    "secrets": (
        "json_array_length(manifest, '$.permissions.secrets.reveal') > 0",
        "json_array_length(manifest #> '{permissions,secrets,reveal}') > 0",
    ),
    # Migration 0012: webhooks the host receives for the plugin, and the targets it delivers
    # to: either makes the plugin reachable or reaching.
    "webhooks": (
        "coalesce(json_array_length(manifest, '$.permissions.webhooks.receive'), 0)"
        " + coalesce(json_array_length(manifest, '$.permissions.webhooks.deliver'), 0) > 0",
        "coalesce(json_array_length(manifest #> '{permissions,webhooks,receive}'), 0)"
        " + coalesce(json_array_length(manifest #> '{permissions,webhooks,deliver}'), 0) > 0",
    ),
    # Migration 0013: whom a plugin may email (manifests from before have no mail.to).
    "mail": (
        "json_array_length(manifest, '$.permissions.mail.to') > 0",
        "json_array_length(manifest #> '{permissions,mail,to}') > 0",
    ),
    # Migration 0014: task types a plugin may submit (manifests from before have none).
    "tasks": (
        "json_array_length(manifest, '$.permissions.tasks.submit') > 0",
        "json_array_length(manifest #> '{permissions,tasks,submit}') > 0",
    ),
}
for _permission, (_sqlite, _postgresql) in _GRANTS.items():
    Index(
        f"ix_plugin_versions_grants_{_permission}",
        PluginVersion.plugin_id,
        PluginVersion.version,
        sqlite_where=text(f"status = 'published' AND {_sqlite}"),
        postgresql_where=text(f"status = 'published' AND {_postgresql}"),
    )


class Profile(Base):
    """What the public sees of an identity (migration 0020): the display name it chose or an
    admin set, never the identity itself (:mod:`plugport.registry._display_names`)."""

    __tablename__ = "profiles"
    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    display_name: Mapped[str] = mapped_column(String(40))
    display_key: Mapped[str] = mapped_column(String(160), unique=True)
    """The name as :func:`~plugport.registry._display_names.display_key` spells it: no two
    identities share one."""
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Review(Base):
    """One rating per identity per plugin; editing replaces it."""

    __tablename__ = "reviews"
    plugin_id: Mapped[int] = mapped_column(
        ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True
    )
    identity: Mapped[str] = mapped_column(String(200), primary_key=True)
    stars: Mapped[int] = mapped_column(Integer)
    text: Mapped[str] = mapped_column(Text, default="")
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class AbuseReport(Base):
    """A signed-in user's report of a plugin, a version or a review (migration 0022), queued
    for admins until resolved. At most one open report per reporter and target
    (``target_key``), enforced by a partial unique index."""

    __tablename__ = "abuse_reports"
    __table_args__ = (
        CheckConstraint("kind IN ('plugin', 'version', 'review')", name="ck_report_kind"),
        CheckConstraint("status IN ('open', 'resolved')", name="ck_report_status"),
        Index(
            "uq_abuse_reports_open",
            "reporter",
            "target_key",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
        Index("ix_abuse_reports_reporter_created", "reporter", "created_at"),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reporter: Mapped[str] = mapped_column(String(200))
    """The identity that filed it: shown to admins as a display name or pseudonym only."""
    kind: Mapped[str] = mapped_column(String(16))  # plugin, version, review
    plugin_name: Mapped[str] = mapped_column(String(130), index=True)
    version: Mapped[str | None] = mapped_column(String(64), default=None)
    review_identity: Mapped[str | None] = mapped_column(String(200), default=None)
    """For a review: its author's identity (the public and the queue see the shown name)."""
    target_key: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(String(32))
    text: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open", index=True)
    decision: Mapped[str | None] = mapped_column(String(32), default=None)
    note: Mapped[str | None] = mapped_column(Text, default=None)
    resolved_by: Mapped[str | None] = mapped_column(String(200), default=None)
    resolved_at: Mapped[datetime | None] = mapped_column(default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class DailyStat(Base):
    __tablename__ = "daily_stats"
    plugin_id: Mapped[int] = mapped_column(
        ForeignKey("plugins.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[str] = mapped_column(String(64), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True, index=True)  # trending: by day
    downloads: Mapped[int] = mapped_column(Integer, default=0)
    installs: Mapped[int] = mapped_column(Integer, default=0)
    uninstalls: Mapped[int] = mapped_column(Integer, default=0)


# Trending (migration 0005): a week of downloads summed from the index alone.
Index("ix_daily_stats_trending", DailyStat.day, DailyStat.plugin_id, DailyStat.downloads)


class AuditRecord(Base):
    """Every change of state, by whom and why; status never changes without one."""

    __tablename__ = "audit_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(40), index=True)
    subject: Mapped[str] = mapped_column(String(200), index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    at: Mapped[datetime] = mapped_column(default=utcnow)


class IndexState(Base):
    """The signed index last issued (one row, id 1, created by migration 0003). ``version``
    only ever increases: every re-signing, even one that only moves the expiry, takes the next
    number, so a host can refuse anything older than what it has seen."""

    __tablename__ = "index_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_digest: Mapped[str | None] = mapped_column(String(64), default=None)
    """sha256 of the entries the document lists, to tell cheaply whether it is still true."""
    expires_at: Mapped[datetime | None] = mapped_column(default=None)
    document: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    """The signed document exactly as served."""


class TufMetadata(Base):
    """Every TUF metadata file the registry signed, exactly as served: ``(role, version)``
    is what consistent snapshots name (``3.snapshot.json``); a version never changes."""

    __tablename__ = "tuf_metadata"
    role: Mapped[str] = mapped_column(String(80), primary_key=True)
    version: Mapped[int] = mapped_column(BigInteger, primary_key=True)
    document: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class TufState(Base):
    """One row (id 1, created by migration 0017): the newest timestamp's version, which nodes
    compare-and-set to publish, and the digest of the entries the newest targets list."""

    __tablename__ = "tuf_state"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    timestamp_version: Mapped[int] = mapped_column(BigInteger, default=0)
    entries_digest: Mapped[str | None] = mapped_column(String(64), default=None)


class TufNamespaceKey(Base):
    """A namespace's TUF key generation (no row: generation 1). Raising it replaces the
    namespace's delegated key: what the old key signs no longer verifies."""

    __tablename__ = "tuf_namespace_keys"
    namespace: Mapped[str] = mapped_column(String(64), primary_key=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    rotated_at: Mapped[datetime | None] = mapped_column(default=None)
