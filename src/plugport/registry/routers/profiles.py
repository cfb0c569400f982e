"""``/api/v1/profile``: the display name the public sees for your identity (a rating's
author), read and set with your token; an admin names another identity with ``?identity=``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from sqlalchemy.orm import Session

from plugport._identity import check_identity
from plugport.registry._display_names import shown_name
from plugport.registry.deps import Caller, PseudonymSecret, SessionDep
from plugport.registry.schemas import ProfilePublic, ProfileUpdate
from plugport.registry.services import profiles, tokens
from plugport.registry.services.tokens import Principal

router = APIRouter(prefix="/api/v1/profile", tags=["profiles"])

_Identity = Annotated[str | None, Query(max_length=200)]


def _whose(caller: Principal, identity: str | None) -> str:
    if identity is None:
        return caller.identity
    identity = check_identity(identity)
    if identity != caller.identity:
        tokens.require(caller, "admin")
    return identity


def _public(session: Session, identity: str, secret: bytes) -> ProfilePublic:
    name = profiles.display_name_of(session, identity)
    return ProfilePublic(
        identity=identity, display_name=name, shown_as=shown_name(identity, name, secret)
    )


@router.get("")
def show(
    session: SessionDep, caller: Caller, secret: PseudonymSecret, identity: _Identity = None
) -> ProfilePublic:
    return _public(session, _whose(caller, identity), secret)


@router.put("")
def update(
    body: ProfileUpdate,
    session: SessionDep,
    caller: Caller,
    secret: PseudonymSecret,
    identity: _Identity = None,
) -> ProfilePublic:
    """Set the display name; a refused one is a 400 naming ``display_name``, nothing stored."""
    whose = _whose(caller, identity)
    profiles.set_display_name(session, whose, body.display_name, actor=caller.identity)
    return _public(session, whose, secret)


@router.delete("")
def clear(
    session: SessionDep, caller: Caller, secret: PseudonymSecret, identity: _Identity = None
) -> ProfilePublic:
    """Back to the pseudonym."""
    whose = _whose(caller, identity)
    profiles.clear_display_name(session, whose, actor=caller.identity)
    return _public(session, whose, secret)
