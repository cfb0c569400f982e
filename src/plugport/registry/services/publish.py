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
from plugport.errors import (
    ConflictError,
    InvalidInputError,
    ManifestError,
    Problem,
    SignatureError,
)
from plugport.registry.blobs import BlobStore
from plugport.registry.libraries import check_locked_wheels, record
from plugport.registry.models import Namespace, Plugin, PluginVersion, PublisherKey, utcnow
from plugport.registry.orphans import InFlight
from plugport.registry.scanner import ScanReport, inspect_archive
from plugport.registry.services import access, audit, content, lookalikes, namespaces, tokens
from plugport.registry.services.tokens import Principal
from plugport.versions import canonical_version, parse_version

__all__ = [
    "Upload",
    "VersionTakenError",
    "authorised_namespace",
    "initial_status",
    "publish",
    "refresh_latest",
]

_IMMUTABLE = "versions are immutable, even yanked or rejected ones"


def _bump(existing: str) -> str:
    return f"bump `version` in plugport.toml (the registry has {existing})"


class VersionTakenError(ConflictError):
    """The plugin has this version already, perhaps spelled differently (``1.0`` after
    ``1.0.0``); ``existing`` is the spelling uploaded first."""

    def __init__(self, name: str, version: str, existing: str) -> None:
        self.existing = existing
        if existing == version:
            reason = f"was published before; {_IMMUTABLE}: {_bump(existing)}"
        else:
            reason = (
                f"is the same version as {existing}, uploaded before (PEP 440 ignores trailing "
                f"zeros, so a pin =={existing} would match both); {_IMMUTABLE}: {_bump(existing)}"
            )
        super().__init__("version", f"{name} {version}", reason)


@dataclass(frozen=True)
class Upload:
    """A received archive (already on disk, within the size cap) and its signature.

    ``shown_as`` is what errors call the archive: the client's name for it (the form field),
    never the server's path of its temporary copy."""

    archive: Path
    signature: bytes
    shown_as: str = "archive"


def initial_status(trusted: bool, report: ScanReport) -> str:
    """A trusted namespace skips review unless the scan found something serious."""
    return "published" if trusted and report.highest != "high" else "pending_review"


def _check_publishable(version: str) -> None:
    """A local version (``1.0.0+build``) is for builds that stay where they were made: a pin
    ``==1.0.0`` matches it too, so published it would shadow the public release."""
    parsed = parse_version(version)
    if parsed.local is not None:
        problem = Problem(
            "version",
            f"{version!r} has a local label ('+{parsed.local}'), which only builds that are "
            f"never published may have; publish it as {parsed.public!r}",
            version,
        )
        raise ManifestError([problem], source="plugport.toml")


def _check_new(session: Session, plugin: Plugin, version: str) -> None:
    existing = session.scalar(
        select(PluginVersion.version).where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.canonical_version == canonical_version(version),
        )
    )
    if existing is not None:
        raise VersionTakenError(plugin.name, version, existing)


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


def authorised_namespace(session: Session, name: str, caller: Principal) -> Namespace:
    """The namespace of plugin ``name``, if ``caller`` may publish in it (decided before the
    upload is even read): ``publish:<namespace>`` and a role in it, or ``admin``."""
    prefix = name.split(".", 1)[0]
    tokens.require(caller, f"publish:{prefix}")  # before a lookup: 403 rather than 404
    namespace = namespaces.get_namespace(session, prefix)
    role = namespaces.role_of(session, namespace.id, caller.identity)
    access.require(caller, namespace.name, role, "publish")
    return namespace


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
    namespace = authorised_namespace(session, name, caller)
    manifest = read_archive_manifest(upload.archive, shown_as=upload.shown_as)
    if manifest.name != name:
        raise InvalidInputError(
            f"the archive is {manifest.name!r}, but it was uploaded to {name!r}"
        )
    _check_publishable(manifest.version)
    plugin = session.scalar(select(Plugin).where(Plugin.name == name).with_for_update())
    if plugin is not None:
        _check_new(session, plugin, manifest.version)
    digest, length = sha256_file(upload.archive)
    facts = signing.ArchiveFacts(manifest.name, manifest.version, digest, length)
    keyid = _verify(session, namespace.id, upload, facts)
    scanned = inspect_archive(
        upload.archive,
        limits=limits,
        shown_as=upload.shown_as,
        platforms=manifest.python.platforms,
    )
    lock = check_locked_wheels(manifest, scanned.lock, scanned.wheels, shown_as=upload.shown_as)
    libraries = record(lock, scanned.wheels)
    first_publish = plugin is None or not _has_published(session, plugin)
    naming = lookalikes.upload_findings(session, namespace, name, first_publish=first_publish)
    report = scanned.report
    if naming:
        report = ScanReport.of([*report.findings, *naming], files_scanned=report.files_scanned)
    shown = content.extract(upload.archive, manifest, limits=limits, shown_as=upload.shown_as)
    status = initial_status(namespace.trusted, report)

    if upload_in_flight is not None:
        upload_in_flight.claim(digest)  # before asking whether it exists: see orphans
    existed = blobs.exists(digest)
    with upload.archive.open("rb") as source:
        ref = blobs.put(source, max_bytes=limits.max_archive_bytes)
    created = [] if existed else [ref.sha256]  # removed again if the version is not saved
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
            canonical_version=canonical_version(manifest.version),
            status=status,
            sha256=ref.sha256,
            length=ref.size,
            key_id=keyid,
            signature=upload.signature,
            manifest=manifest.model_dump(mode="json"),
            scan=report.as_dict(),
            libraries=libraries,
            published_at=utcnow() if status == "published" else None,
        )
        session.add(version)
        session.flush()  # its id, for the content rows
        content.store(session, blobs, version, shown, created=created, in_flight=upload_in_flight)
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
            libraries=[f"{package['name']}=={package['version']}" for package in libraries],
        )
        session.flush()
    except IntegrityError:  # a concurrent upload of the same name and version won the race
        _remove(blobs, created)
        raise ConflictError(
            "version",
            f"{name} {manifest.version}",
            "(or another spelling of it) was just published by another upload: "
            + _bump(manifest.version),
        ) from None
    except BaseException:
        _remove(blobs, created)
        raise
    return version


def _has_published(session: Session, plugin: Plugin) -> bool:
    query = select(PluginVersion.id).where(
        PluginVersion.plugin_id == plugin.id, PluginVersion.status == "published"
    )
    return session.scalar(query.limit(1)) is not None


def _remove(blobs: BlobStore, created: list[str]) -> None:
    for digest in created:
        blobs.delete(digest)


def _describe(plugin: Plugin, manifest: Mapping[str, Any]) -> None:
    """What search and the plugin's page show. Once a version is published, only the latest
    published one describes the plugin: an upload waiting for review cannot put unreviewed
    text into search results."""
    plugin.display_name = manifest["display_name"]
    plugin.description = manifest["description"]
    plugin.categories = list(manifest.get("categories") or [])
    plugin.tags = list(manifest.get("tags") or [])


def refresh_latest(session: Session, plugin: Plugin) -> None:
    """The highest published version neither yanked, quarantined nor withdrawn (signed with
    a key the publisher revoked) is the one shown, searched and resolved by default; the
    plugin counts as updated when that changes. None when there is no such version."""
    session.flush()
    versions = session.execute(
        select(PluginVersion.version, PluginVersion.manifest).where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.status == "published",
            PluginVersion.yanked_reason.is_(None),
            PluginVersion.quarantined_reason.is_(None),
            PluginVersion.signer_revoked_at.is_(None),
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
