"""Display names: what the public sees of an identity (a rating's author). Set by the person
(on signing in to the marketplace, or ``PUT /api/v1/profile``) or by an admin (with the
identity's token, or for any identity); checked by
:func:`plugport.registry._display_names.check_display_name`. An identity without one is shown
by its pseudonym, never by itself."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from plugport._identity import check_identity
from plugport.errors import InvalidInputError
from plugport.registry._display_names import (
    FIELD,
    check_display_name,
    display_key,
    shown_name,
)
from plugport.registry.models import Member, Namespace, Profile, utcnow
from plugport.registry.services import audit

__all__ = [
    "clear_display_name",
    "display_name_of",
    "pseudonym_secret",
    "set_display_name",
    "shown_names",
]


def pseudonym_secret(index_key: ed25519.Ed25519PrivateKey) -> bytes:
    """The key of every pseudonym, derived from the index key all nodes share: each node
    shows the same pseudonym for an identity, and nobody without the key can compute one."""
    raw = index_key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    )
    return hmac.new(raw, b"plugport registry pseudonyms v1", hashlib.sha256).digest()


def _reserved(session: Session, identity: str) -> set[str]:
    """Names that would pass for a namespace or one of its owners: every namespace the
    identity has no role in, and every other owner (and an e-mail owner's local part)."""
    mine = set(session.scalars(select(Member.namespace_id).where(Member.identity == identity)))
    reserved = {
        display_key(name)
        for ns_id, name in session.execute(select(Namespace.id, Namespace.name))
        if ns_id not in mine
    }
    owners = session.scalars(
        select(Member.identity).where(Member.role == "owner", Member.identity != identity)
    )
    for owner in set(owners):
        reserved |= {display_key(owner), display_key(owner.partition("@")[0])}
    return reserved - {""}


def set_display_name(session: Session, identity: str, value: object, *, actor: str) -> Profile:
    """Give ``identity`` the display name ``value`` (checked; nothing changes when refused)."""
    identity = check_identity(identity)
    others = session.scalars(select(Profile.display_key).where(Profile.identity != identity)).all()
    name = check_display_name(value, taken=others, reserved=_reserved(session, identity))
    profile = session.get(Profile, identity)
    if profile is None:
        profile = Profile(identity=identity, display_name=name, display_key=display_key(name))
        session.add(profile)
    else:
        profile.display_name, profile.display_key = name, display_key(name)
        profile.updated_at = utcnow()
    try:
        session.flush()
    except IntegrityError:  # taken by someone else meanwhile: the request's rollback undoes it
        error = InvalidInputError(f"{FIELD}: {name!r} is already someone else's display name")
        error.field = FIELD  # type: ignore[attr-defined]
        raise error from None
    audit.record(session, actor, "profile.display_name", identity, display_name=name)
    return profile


def clear_display_name(session: Session, identity: str, *, actor: str) -> None:
    """Back to the pseudonym."""
    profile = session.get(Profile, check_identity(identity))
    if profile is not None:
        session.delete(profile)
        audit.record(session, actor, "profile.display_name", identity, display_name=None)


def display_name_of(session: Session, identity: str) -> str | None:
    profile = session.get(Profile, identity)
    return profile.display_name if profile is not None else None


def shown_names(session: Session, identities: Iterable[str], secret: bytes) -> dict[str, str]:
    """What the public sees for each identity: its display name, else its pseudonym."""
    wanted = set(identities)
    names: dict[str, str] = {}
    if wanted:
        rows = session.execute(
            select(Profile.identity, Profile.display_name).where(Profile.identity.in_(wanted))
        )
        names = {str(row[0]): str(row[1]) for row in rows}
    return {i: shown_name(i, names.get(i), secret) for i in wanted}
