"""``/tuf/``: the registry's TUF repository (metadata and targets) for python-tuf clients.

``timestamp.json`` and ``root.json`` are the only names whose content changes: they are
served with ``no-cache``. Every other file is named by its version (consistent snapshots:
``3.snapshot.json``, ``7.ns.acme.json``) or its hash (``targets/NAME/SHA256.FILE``) and never
changes, so it may be cached for a year."""

from __future__ import annotations

import re
from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from fastapi.responses import StreamingResponse

from plugport.errors import NotFoundError
from plugport.registry.deps import SessionDep
from plugport.registry.models import utcnow
from plugport.registry.services import catalog, tuf_repo
from plugport.registry.tuf.keys import OnlineKeys

router = APIRouter(prefix="/tuf", tags=["tuf"])

_CHANGING = "no-cache"
_IMMUTABLE = "public, max-age=31536000, immutable"
_VERSIONED = re.compile(r"^(?P<version>[1-9][0-9]{0,18})\.(?P<role>[a-z0-9.-]{1,80})\.json$")
_TARGET = re.compile(r"^(?P<sha256>[0-9a-f]{64})\.(?P<file>.+)$")
_CHUNK = 64 * 1024


def _json(document: bytes, cache: str) -> Response:
    return Response(document, media_type="application/json", headers={"Cache-Control": cache})


def _keys(request: Request) -> OnlineKeys:
    keys: tuf_repo.NodeKeys | None = request.app.state.tuf_keys
    if keys is None:
        raise NotFoundError("TUF metadata", "timestamp.json", tuf_repo.NOT_ENABLED)
    return keys.current()


@router.get("/timestamp.json")
def timestamp(request: Request, session: SessionDep) -> Response:
    """The newest timestamp, signed again first when what the registry offers changed."""
    document = tuf_repo.publish(session, _keys(request), now=utcnow())
    return _json(document, _CHANGING)


@router.get("/{filename}")
def metadata(filename: str, session: SessionDep) -> Response:
    """``root.json`` (the newest root) or a versioned file, ``N.ROLE.json``."""
    if filename == "root.json":
        return _json(tuf_repo.document(session, "root"), _CHANGING)
    match = _VERSIONED.match(filename)
    if match is None:
        raise NotFoundError("TUF metadata", filename)
    document = tuf_repo.document(session, match["role"], int(match["version"]))
    return _json(document, _IMMUTABLE)


@router.get("/targets/{name}/{filename}")
def target(name: str, filename: str, request: Request, session: SessionDep) -> StreamingResponse:
    """An archive under its TUF target name, ``targets/NAME/SHA256.NAME-VERSION.plugport``;
    counted as a download like the API's."""
    match = _TARGET.match(filename)
    prefix, suffix = f"{name}-", ".plugport"
    file = match["file"] if match else ""
    if match is None or not (file.startswith(prefix) and file.endswith(suffix)):
        raise NotFoundError("TUF target", f"{name}/{filename}")
    version = file[len(prefix) : -len(suffix)]
    plugin = catalog.get_plugin(session, name)
    row = catalog.downloadable(catalog.get_version(session, plugin, version), name)
    if row.sha256 != match["sha256"]:
        raise NotFoundError("TUF target", f"{name}/{filename}")
    stream = request.app.state.blobs.open(row.sha256)
    catalog.count_download(session, plugin, version, today=catalog.today())

    def chunks() -> Iterator[bytes]:
        with stream:
            while chunk := stream.read(_CHUNK):
                yield chunk

    return StreamingResponse(
        chunks(),
        media_type="application/zip",
        headers={"Content-Length": str(row.length), "Cache-Control": _IMMUTABLE},
    )
