"""``/api/v1/plugins``: publishing versions, reading plugins and versions, downloads and
resolution of the best version for a host."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Query, Request, Response, UploadFile, status
from fastapi.responses import StreamingResponse

from plugport.archive import ArchiveLimits
from plugport.errors import ArchiveLimitError, InvalidInputError, NotFoundError
from plugport.registry.deps import Caller, SessionDep, SettingsDep, UploadDep
from plugport.registry.libraries import python_table, shown
from plugport.registry.models import PluginVersion
from plugport.registry.schemas import LibraryPublic, VersionPublic
from plugport.registry.services import catalog, content
from plugport.registry.services import publish as publishing

router = APIRouter(prefix="/api/v1/plugins", tags=["plugins"])

MAX_SIGNATURE_BYTES = 16 * 1024
CONTENT_CACHE = "public, max-age=31536000, immutable"
CONTENT_CSP = "default-src 'none'; style-src 'unsafe-inline'; sandbox"
"""For every file shown from an archive, SVG icons and rendered READMEs included: opened on
their own, they can load nothing, run nothing and reach no other page of the registry."""


def version_public(name: str, row: PluginVersion) -> VersionPublic:
    python = python_table(row.manifest)
    libraries = shown(row.libraries, row.manifest)
    return VersionPublic(
        name=name,
        version=row.version,
        status=row.status,
        sha256=row.sha256,
        length=row.length,
        key_id=row.key_id,
        yanked=row.yanked_reason is not None,
        yanked_reason=row.yanked_reason,
        withdrawn=row.signer_revoked_at is not None,
        withdrawn_reason=catalog.withdrawn_reason(row),
        quarantined=row.quarantined_reason is not None,
        quarantine_reason=row.quarantined_reason,
        key_revoked_at=row.signer_revoked_at,
        scan=row.scan,
        permissions=row.manifest.get("permissions", {}),
        engines=row.manifest.get("engines") or {},
        dependencies=row.manifest.get("dependencies") or {},
        python_requires=python["dependencies"],
        requires_python=python["requires_python"],
        python_platforms=python["platforms"],
        python_dependencies=(
            None if libraries is None else [LibraryPublic.model_validate(p) for p in libraries]
        ),
        created_at=row.created_at,
        published_at=row.published_at,
    )


@contextlib.contextmanager
def _spooled(upload: UploadFile, max_bytes: int) -> Iterator[Path]:
    """The uploaded archive in a private temp file, refused past ``max_bytes``."""
    with tempfile.TemporaryDirectory(prefix="plugport-upload-") as scratch:
        target = Path(scratch) / "upload.plugport"
        written = 0
        with target.open("wb") as out:
            while chunk := upload.file.read(1024 * 1024):
                written += len(chunk)
                if written > max_bytes:
                    raise ArchiveLimitError(
                        "max_archive_bytes",
                        written,
                        max_bytes,
                        f"the archive is more than {max_bytes} bytes, this registry's limit for "
                        "an archive with everything in it, the wheels of its Python libraries "
                        "included; make it smaller, or ask the operator to raise the setting "
                        "max_archive_bytes (PLUGPORT_MAX_ARCHIVE_BYTES)",
                    )
                out.write(chunk)
        yield target


@router.post("/{name}/versions", status_code=status.HTTP_201_CREATED)
def publish(
    name: str,
    *,
    request: Request,
    archive: Annotated[UploadFile, File(description="the .plugport archive")],
    signature: Annotated[UploadFile, File(description="its .sig document")],
    upload: UploadDep,  # before the session: the upload ends after the commit
    session: SessionDep,
    settings: SettingsDep,
    caller: Caller,
) -> VersionPublic:
    """Upload a signed version: validated, verified against the namespace's keys, scanned,
    stored, and queued for review (or published at once in a trusted namespace)."""
    document = signature.file.read(MAX_SIGNATURE_BYTES + 1)
    if len(document) > MAX_SIGNATURE_BYTES:
        raise InvalidInputError(f"signature: more than {MAX_SIGNATURE_BYTES} bytes")
    limits = ArchiveLimits(max_archive_bytes=settings.max_archive_bytes)
    with _spooled(archive, settings.max_archive_bytes) as path:
        row = publishing.publish(
            session,
            request.app.state.blobs,
            publishing.Upload(path, document),
            name=name,
            caller=caller,
            limits=limits,
            upload_in_flight=upload,
        )
    return version_public(name, row)


@router.get("/{name}")
def show(name: str, session: SessionDep) -> dict[str, Any]:
    """The plugin and every published version, withdrawn and quarantined ones too, each saying
    why (a quarantined version is refused to every host, even pinned); a plugin
    whose every version is withdrawn says so (``withdrawn``): nothing of it can be installed."""
    plugin = catalog.get_plugin(session, name)
    versions = catalog.published(session, plugin)
    latest = next((v for v in versions if v.version == plugin.latest_version), versions[0])
    return {
        **catalog.plugin_summary(plugin),
        "content": content.of_version(session, latest).public(name),
        "withdrawn": all(v.signer_revoked_at is not None for v in versions),
        "versions": [
            {
                "version": v.version,
                "yanked": v.yanked_reason is not None,
                "withdrawn": v.signer_revoked_at is not None,
                "withdrawn_reason": catalog.withdrawn_reason(v),
                "quarantined": v.quarantined_reason is not None,
                "quarantine_reason": v.quarantined_reason,
                "key_id": v.key_id,
                "key_revoked_at": v.signer_revoked_at,
            }
            for v in versions
        ],
    }


def _content_headers(sha256: str) -> dict[str, str]:
    return {
        "Cache-Control": CONTENT_CACHE,
        "ETag": f'"{sha256}"',
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": CONTENT_CSP,
    }


@router.get("/{name}/content/{sha256}")
def content_file(name: str, sha256: str, request: Request, session: SessionDep) -> Response:
    """An icon, screenshot, README or changelog of a published version, as the archive has it
    (an SVG icon was refused at publish if it could run or load anything). Named by its
    sha256, so cached for ever."""
    row = content.published_file(session, catalog.get_plugin(session, name), sha256)
    if request.headers.get("if-none-match") == f'"{row.sha256}"':
        return Response(status_code=304, headers=_content_headers(row.sha256))
    with request.app.state.blobs.open(row.sha256) as stream:
        body = stream.read(row.size + 1)
    return Response(body, media_type=row.media_type, headers=_content_headers(row.sha256))


@router.get("/{name}/content/{sha256}/html")
def content_html(name: str, sha256: str, request: Request, session: SessionDep) -> Response:
    """A README or changelog rendered to HTML: CommonMark without raw HTML, then an
    allow-list sanitiser; a fragment, for a page to place."""
    row = content.published_file(session, catalog.get_plugin(session, name), sha256)
    if row.kind not in ("readme", "changelog"):
        raise NotFoundError("rendered text", f"{name} {sha256}", f"it is the {row.kind}")
    html = content.rendered(request.app.state.blobs, row)
    return Response(
        str(html), media_type="text/html; charset=utf-8", headers=_content_headers(row.sha256)
    )


@router.get("/{name}/versions")
def versions(name: str, session: SessionDep) -> list[VersionPublic]:
    """What hosts resolve from: the versions the signed index lists, so no withdrawn ones
    (``GET /{name}`` and ``/{name}/versions/{version}`` still show those, and why)."""
    plugin = catalog.get_plugin(session, name)
    return [version_public(name, row) for row in catalog.offered(session, plugin)]


@router.get("/{name}/versions/{version}")
def version(name: str, version: str, session: SessionDep) -> VersionPublic:
    plugin = catalog.get_plugin(session, name)
    return version_public(name, catalog.get_version(session, plugin, version))


@router.get("/{name}/versions/{version}/download")
def download(name: str, version: str, request: Request, session: SessionDep) -> StreamingResponse:
    """The archive bytes; every download is counted (per version per day). A quarantined
    version's archive is not served (404, saying why)."""
    plugin = catalog.get_plugin(session, name)
    row = catalog.downloadable(catalog.get_version(session, plugin, version), name)
    stream = request.app.state.blobs.open(row.sha256)
    catalog.count_download(session, plugin, version, today=catalog.today())
    filename = f"{name}-{version}.plugport"

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(64 * 1024):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Content-Length": str(row.length),
            "X-Plugport-Sha256": row.sha256,
        },
    )


@router.get("/{name}/versions/{version}/signature")
def signature(name: str, version: str, session: SessionDep) -> Response:
    """The publisher's signature document for this archive, exactly as it was uploaded."""
    plugin = catalog.get_plugin(session, name)
    row = catalog.get_version(session, plugin, version)
    if row.signature is None:
        raise NotFoundError("signature", f"{name} {version}")
    return Response(content=row.signature, media_type="application/json")


@router.get("/{name}/resolve")
def resolve(
    name: str,
    session: SessionDep,
    host: Annotated[str | None, Query(max_length=64)] = None,
    host_version: Annotated[str | None, Query(max_length=64)] = None,
    plugport_version: Annotated[str | None, Query(max_length=64)] = None,
) -> dict[str, Any]:
    """The best offered (published, not withdrawn), not yanked version for this host; decided
    by the server."""
    if (host is None) != (host_version is None):
        raise InvalidInputError("host and host_version: give both or neither")
    engines = {"plugport": plugport_version} if plugport_version else {}
    if host and host_version:
        engines[host] = host_version
    plugin = catalog.get_plugin(session, name)
    candidates = [
        catalog.Candidate(
            v.version, dict(v.manifest.get("engines", {})), v.yanked_reason is not None
        )
        for v in catalog.offered(session, plugin)
    ]
    chosen, skipped = catalog.choose_version(candidates, engines)
    if chosen is None:
        # get_plugin found a published version: with no candidate, every one is withdrawn
        why = "; ".join(skipped) or "every version is withdrawn (signed with a revoked key)"
        raise NotFoundError("compatible version", name, why)
    return {"name": name, "version": chosen, "skipped": skipped}
