"""``/api/v1/index`` (the signed list of every published archive) and ``/api/v1/keys`` (the
registry key that signs it, for hosts to pin)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request, Response

from plugport.index import public_key_document
from plugport.registry.deps import SessionDep, SettingsDep
from plugport.registry.models import utcnow
from plugport.registry.services.signed_index import current_document

router = APIRouter(prefix="/api/v1", tags=["index"])


@router.get("/index")
def signed_index(request: Request, session: SessionDep, settings: SettingsDep) -> Response:
    """``{"signed": {"_type", "version", "issued_at", "expires_at", "entries": [...]},
    "signatures": [{"keyid", "sig"}]}``: the signature covers the canonical JSON of
    ``signed``; ``version`` only increases; each entry is name, version, sha256, length,
    key_id (the publisher key) and yanked."""
    document = current_document(
        session,
        request.app.state.index_key,
        now=utcnow(),
        ttl=timedelta(seconds=settings.index_ttl_s),
        rotate=settings.rotate_index_key,
    )
    return Response(content=document, media_type="application/json")


@router.get("/keys")
def keys(request: Request) -> dict[str, Any]:
    """``{"keys": [{"keyid", "algorithm", "public_key_pem"}]}``: the index signing key."""
    return public_key_document(request.app.state.index_key)
