"""Publishing a version: everything that can refuse an upload runs before anything is stored,
then the blob, the version row and its audit record are written; a failure after the blob
removes it again unless another version already shares it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugport import signing
from plugport.archive import ArchiveLimits, sha256_file
from plugport.authoring import read_archive_manifest
from plugport.errors import ConflictError, InvalidInputError, SignatureError
from plugport.registry.blobs import BlobStore
from plugport.registry.models import Plugin, PluginVersion, PublisherKey, utcnow
from plugport.registry.orphans import InFlight
from plugport.registry.scanner import ScanReport, scan_archive
from plugport.registry.services import audit, namespaces, tokens
from plugport.registry.services.tokens import Principal
from plugport.versions import parse_version

__all__ = ["Upload", "initial_status", "publish", "refresh_latest"]


@dataclass(frozen=True)
class Upload:
    """A received archive (already on disk, within the size cap) and its signature."""

    archive: Path
    signature: bytes


def initial_status(trusted: bool, report: ScanReport) -> str:
    """A trusted namespace skips review unless the scan found something serious."""
    return "published" if trusted and report.highest != "high" else "pending_review"


def _verify(
    session: Session, namespace_id: int, upload: Upload, facts: signing.ArchiveFacts
) -> str:
    keyid = signing.signer_key_id(upload.signature)
    key = session.scalar(
        select(PublisherKey).where(
            PublisherKey.namespace_id == namespace_id,
            PublisherKey.key_id == keyid,
            PublisherKey.revoked_at.is_(None),
        )
    )
    if key is None:
        raise SignatureError(
            "key",
            f"signed by key {signing.fingerprint(keyid)}…, which is not a registered, "
            f"unrevoked key of namespace {facts.name.split('.')[0]!r}",
        )
    public_key = signing.public_key_from_pem(key.public_key_pem.encode(), source="a stored key")
    signing.verify(upload.signature, public_key, facts)
    return keyid


def publish(
    session: Session,
    blobs: BlobStore,
    upload: Upload,
    *,
    name: str,
    caller: Principal,
    limits: ArchiveLimits,
    upload_in_flight: InFlight | None = None,
) -> PluginVersion:
    """``upload_in_flight`` claims the blob's digest, so that the orphan collector cannot
    remove the blob between here and the caller's commit."""
    manifest = read_archive_manifest(upload.archive)
    if manifest.name != name:
        raise InvalidInputError(
            f"the archive is {manifest.name!r}, but it was uploaded to {name!r}"
        )
    tokens.require(caller, f"publish:{manifest.namespace}")
    namespace = namespaces.get_namespace(session, manifest.namespace)
    plugin = session.scalar(select(Plugin).where(Plugin.name == name).with_for_update())
    if plugin is not None and session.scalar(
        select(PluginVersion.id).where(
            PluginVersion.plugin_id == plugin.id, PluginVersion.version == manifest.version
        )
    ):
        raise ConflictError(
            "version",
            f"{name} {manifest.version}",
            "was published before; versions are immutable, even yanked or rejected ones",
        )
    digest, length = sha256_file(upload.archive)
    facts = signing.ArchiveFacts(manifest.name, manifest.version, digest, length)
    keyid = _verify(session, namespace.id, upload, facts)
    report = scan_archive(upload.archive, limits=limits)
    status = initial_status(namespace.trusted, report)

    if upload_in_flight is not None:
        upload_in_flight.claim(digest)  # before asking whether it exists: see orphans
    existed = blobs.exists(digest)
    with upload.archive.open("rb") as source:
        ref = blobs.put(source, max_bytes=limits.max_archive_bytes)
    try:
        if plugin is None:
            plugin = Plugin(name=name, namespace_id=namespace.id)
            session.add(plugin)
            session.flush()
        if plugin.latest_version is None:  # nothing published yet: the upload describes it
            _describe(plugin, manifest.model_dump(mode="json"))
        version = PluginVersion(
            plugin_id=plugin.id,
            version=manifest.version,
            status=status,
            sha256=ref.sha256,
            length=ref.size,
            key_id=keyid,
            signature=upload.signature,
            manifest=manifest.model_dump(mode="json"),
            scan=report.as_dict(),
            published_at=utcnow() if status == "published" else None,
        )
        session.add(version)
        if status == "published":
            refresh_latest(session, plugin)
        audit.record(
            session,
            caller.identity,
            "version.upload",
            f"{name} {manifest.version}",
            status=status,
            sha256=ref.sha256,
            highest_finding=report.highest,
        )
        session.flush()
    except IntegrityError:  # a concurrent upload of the same name and version won the race
        if not existed:
            blobs.delete(ref.sha256)
        raise ConflictError(
            "version", f"{name} {manifest.version}", "was just published by another upload"
        ) from None
    except BaseException:
        if not existed:
            blobs.delete(ref.sha256)
        raise
    return version


def _describe(plugin: Plugin, manifest: Mapping[str, Any]) -> None:
    """What search and the plugin's page show. Once a version is published, only the latest
    published one describes the plugin: an upload waiting for review cannot put unreviewed
    text into search results."""
    plugin.display_name = manifest["display_name"]
    plugin.description = manifest["description"]
    plugin.categories = list(manifest.get("categories") or [])
    plugin.tags = list(manifest.get("tags") or [])


def refresh_latest(session: Session, plugin: Plugin) -> None:
    """The highest published, not yanked version is the one shown, searched and resolved by
    default; the plugin counts as updated when that changes."""
    session.flush()
    versions = session.execute(
        select(PluginVersion.version, PluginVersion.manifest).where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.status == "published",
            PluginVersion.yanked_reason.is_(None),
        )
    ).all()
    latest = max(versions, key=lambda row: parse_version(row[0]), default=None)
    if latest is None:
        plugin.latest_version = None
        return
    if latest[0] != plugin.latest_version:
        plugin.updated_at = utcnow()
    plugin.latest_version = latest[0]
    _describe(plugin, latest[1])
