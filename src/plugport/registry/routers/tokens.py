"""``/api/v1/tokens``: admins issue and revoke tokens; anyone may look at their own."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, status

from plugport.registry.deps import Caller, SessionDep
from plugport.registry.models import ApiToken
from plugport.registry.schemas import TokenCreate, TokenCreated, TokenPublic
from plugport.registry.services import audit, profiles, tokens

router = APIRouter(prefix="/api/v1/tokens", tags=["tokens"])


def _public(row: ApiToken) -> TokenPublic:
    return TokenPublic.model_validate(row, from_attributes=True)


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: TokenCreate, session: SessionDep, caller: Caller) -> TokenCreated:
    tokens.require(caller, "admin")
    if body.display_name is not None:  # checked first: a refused name creates no token
        profiles.set_display_name(session, body.identity, body.display_name, actor=caller.identity)
    expires = timedelta(days=body.expires_in_days) if body.expires_in_days else None
    plaintext, row = tokens.create_token(
        session, body.identity, body.scopes, expires_in=expires, description=body.description
    )
    audit.record(session, caller.identity, "token.create", row.prefix, scopes=row.scopes)
    return TokenCreated(**_public(row).model_dump(), token=plaintext)


@router.get("")
def list_(session: SessionDep, caller: Caller) -> list[TokenPublic]:
    mine = None if "admin" in caller.scopes else caller.identity
    return [_public(row) for row in tokens.list_tokens(session, mine)]


@router.delete("/{prefix}")
def revoke(prefix: str, session: SessionDep, caller: Caller) -> TokenPublic:
    if tokens.get_token(session, prefix).identity != caller.identity:
        tokens.require(caller, "admin")  # decided before anything changes
    row = tokens.revoke_token(session, prefix)
    audit.record(session, caller.identity, "token.revoke", prefix)
    return _public(row)
