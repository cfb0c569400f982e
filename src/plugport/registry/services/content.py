"""A version's icon, screenshots, README and changelog: read from the archive and checked at
publish (before anything is stored), stored as content-addressed blobs beside the archive,
and read back for pages and the API only from published versions, so nothing waiting for
review is shown."""

from __future__ import annotations

import hashlib
import io
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from markupsafe import Markup
from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport._content_rules import (
    MAX_ICON_BYTES,
    MAX_SCREENSHOT_BYTES,
    MAX_TEXT_BYTES,
    CheckedFile,
    ContentKind,
    check_file,
    content_paths,
)
from plugport.archive import ArchiveLimits, member_names, read_member
from plugport.errors import ArchiveLimitError, NotFoundError, PluginValidationError, Problem
from plugport.manifest import Manifest
from plugport.registry.blobs import BlobStore, check_sha256
from plugport.registry.models import Plugin, PluginVersion, VersionContent
from plugport.registry.orphans import InFlight

__all__ = [
    "Content",
    "extract",
    "icons",
    "of_version",
    "published_file",
    "rendered",
    "store",
    "url",
]

_CAPS: dict[ContentKind, int] = {
    "icon": MAX_ICON_BYTES,
    "screenshot": MAX_SCREENSHOT_BYTES,
    "readme": MAX_TEXT_BYTES,
    "changelog": MAX_TEXT_BYTES,
}
_RENDERED_KEPT = 64


def extract(
    archive: Path, manifest: Manifest, *, limits: ArchiveLimits, shown_as: str
) -> list[tuple[CheckedFile, bytes]]:
    """The files the marketplace will show, checked; :class:`PluginValidationError` naming
    each field and file that fails (a missing file, a PNG too large, an SVG with a script)."""
    members = set(member_names(archive, limits=limits, shown_as=shown_as))
    wanted = content_paths(
        manifest.readme, manifest.changelog, manifest.icon, manifest.screenshots, members
    )
    passed: list[tuple[CheckedFile, bytes]] = []
    problems: list[Problem] = []
    for kind, path in wanted:
        where = {"screenshot": "screenshots"}.get(kind, kind)
        if path not in members:
            problems.append(Problem(where, f"{path!r} is not a file in the archive", path))
            continue
        cap = _CAPS[kind]
        try:
            data = read_member(archive, path, max_bytes=cap, limits=limits, shown_as=shown_as)
        except ArchiveLimitError:
            problems.append(Problem(where, f"{path} is larger than {cap} bytes, the limit", path))
            continue
        checked = check_file(kind, path, data)
        if isinstance(checked, Problem):
            problems.append(checked)
        else:
            passed.append((checked, data))
    if problems:
        raise PluginValidationError(problems, source=shown_as)
    return passed


def store(
    session: Session,
    blobs: BlobStore,
    version: PluginVersion,
    files: Sequence[tuple[CheckedFile, bytes]],
    *,
    created: list[str],
    in_flight: InFlight | None = None,
) -> None:
    """Store each file as a blob and list it for ``version``. Digests of blobs this call
    wrote afresh are appended to ``created`` as they are written, for the caller to remove
    should its transaction fail."""
    positions: dict[str, int] = {}
    for checked, data in files:
        ref_digest = _put(blobs, data, in_flight, created)
        position = positions.get(checked.kind, 0)
        positions[checked.kind] = position + 1
        session.add(
            VersionContent(
                version_id=version.id,
                kind=checked.kind,
                position=position,
                path=checked.path,
                sha256=ref_digest,
                size=len(data),
                media_type=checked.media_type,
                width=checked.width,
                height=checked.height,
            )
        )


def _put(blobs: BlobStore, data: bytes, in_flight: InFlight | None, created: list[str]) -> str:
    digest = hashlib.sha256(data).hexdigest()
    if in_flight is not None:
        in_flight.claim(digest)  # before asking whether it exists: see orphans
    existed = blobs.exists(digest)
    ref = blobs.put(io.BytesIO(data), max_bytes=len(data))
    if not existed:
        created.append(ref.sha256)
    return ref.sha256


def url(name: str, row: VersionContent) -> str:
    """Content-addressed, so it may be cached for ever: new bytes have a new address."""
    return f"/api/v1/plugins/{name}/content/{row.sha256}"


@dataclass
class Content:
    """What one version shows: its icon, screenshots, README and changelog (any may be
    missing: versions published before the registry kept them have none)."""

    icon: VersionContent | None = None
    screenshots: list[VersionContent] = field(default_factory=list)
    readme: VersionContent | None = None
    changelog: VersionContent | None = None

    def public(self, name: str) -> dict[str, Any]:
        """For the JSON API: URLs of the files, and of the rendered README and changelog."""

        def text(row: VersionContent | None) -> dict[str, str] | None:
            if row is None:
                return None
            return {"url": url(name, row), "html_url": url(name, row) + "/html"}

        return {
            "icon": url(name, self.icon) if self.icon else None,
            "icon_type": self.icon.media_type if self.icon else None,
            "screenshots": [
                {"url": url(name, s), "width": s.width, "height": s.height}
                for s in self.screenshots
            ],
            "readme": text(self.readme),
            "changelog": text(self.changelog),
        }


def of_version(session: Session, version: PluginVersion) -> Content:
    rows = session.scalars(
        select(VersionContent)
        .where(VersionContent.version_id == version.id)
        .order_by(VersionContent.kind, VersionContent.position)
    ).all()
    content = Content()
    for row in rows:
        if row.kind == "screenshot":
            content.screenshots.append(row)
        elif row.kind in ("icon", "readme", "changelog"):
            setattr(content, row.kind, row)
    return content


def icons(session: Session, plugins: Iterable[Plugin]) -> dict[int, str]:
    """Each plugin's icon URL from its latest version (what cards show), in one query."""
    by_id = {p.id: p for p in plugins if p.latest_version is not None}
    if not by_id:
        return {}
    rows = session.execute(
        select(PluginVersion.plugin_id, PluginVersion.version, VersionContent)
        .join(VersionContent, VersionContent.version_id == PluginVersion.id)
        .where(
            PluginVersion.plugin_id.in_(by_id),
            PluginVersion.status == "published",
            VersionContent.kind == "icon",
        )
    ).all()
    return {
        plugin_id: url(by_id[plugin_id].name, row)
        for plugin_id, version, row in rows
        if version == by_id[plugin_id].latest_version
    }


def published_file(session: Session, plugin: Plugin, sha256: str) -> VersionContent:
    """A file some published version of ``plugin`` shows; :class:`NotFoundError` for any other
    digest (an archive, a file of a version waiting for review, another plugin's)."""
    check_sha256(sha256)
    row = session.scalars(
        select(VersionContent)
        .join(PluginVersion, VersionContent.version_id == PluginVersion.id)
        .where(
            PluginVersion.plugin_id == plugin.id,
            PluginVersion.status == "published",
            VersionContent.sha256 == sha256,
        )
        .limit(1)
    ).first()
    if row is None:
        raise NotFoundError("content", f"{plugin.name} {sha256}")
    return row


_rendered: OrderedDict[str, Markup] = OrderedDict()
_rendered_lock = threading.Lock()


def rendered(blobs: BlobStore, row: VersionContent) -> Markup:
    """A README or changelog as sanitised HTML (the shared Markdown renderer), kept for the
    most recently shown few: a blob never changes, so neither does its rendering. Rendering
    on reading rather than at publish means a fix to the sanitiser covers every version."""
    from plugport._markdown import render_markdown

    with _rendered_lock:
        if row.sha256 in _rendered:
            _rendered.move_to_end(row.sha256)
            return _rendered[row.sha256]
    with blobs.open(row.sha256) as stream:
        source = stream.read(MAX_TEXT_BYTES + 1)[:MAX_TEXT_BYTES].decode("utf-8", "replace")
    html = render_markdown(source)
    with _rendered_lock:
        _rendered[row.sha256] = html
        while len(_rendered) > _RENDERED_KEPT:
            _rendered.popitem(last=False)
    return html
