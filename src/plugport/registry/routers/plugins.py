"""``/api/v1/plugins``: publishing versions (more of the read API is being built)."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Request, UploadFile, status

from plugport.archive import ArchiveLimits
from plugport.errors import ArchiveLimitError, InvalidInputError
from plugport.registry.deps import Caller, SessionDep, SettingsDep
from plugport.registry.models import PluginVersion
from plugport.registry.schemas import VersionPublic
from plugport.registry.services import publish as publishing

router = APIRouter(prefix="/api/v1/plugins", tags=["plugins"])

MAX_SIGNATURE_BYTES = 16 * 1024


def version_public(name: str, row: PluginVersion) -> VersionPublic:
    return VersionPublic(
        name=name,
        version=row.version,
        status=row.status,
        sha256=row.sha256,
        length=row.length,
        key_id=row.key_id,
        yanked=row.yanked_reason is not None,
        yanked_reason=row.yanked_reason,
        scan=row.scan,
        permissions=row.manifest.get("permissions", {}),
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
                        f"the upload is more than {max_bytes} bytes",
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
        )
    return version_public(name, row)
