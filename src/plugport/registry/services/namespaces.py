"""Namespaces (``acme`` of ``acme.hello``): owners and members, and the publisher keys allowed
to sign archives in them (revoking one withdraws what it signed: ``services.revocation``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from plugport._identity import check_identity
from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.manifest import check_plugin_name
from plugport.registry.models import Member, Namespace, PublisherKey
from plugport.registry.services import audit, lookalikes
from plugport.registry.services.access import ROLES
from plugport.signing import key_id, public_key_from_pem

__all__ = [
    "add_key",
    "add_member",
    "create_namespace",
    "get_namespace",
    "keys_of",
    "members_of",
    "remove_member",
    "role_of",
]


def _check_name(name: str) -> str:
    try:
        check_plugin_name(f"{name}.x0")
    except ValueError:
        raise InvalidInputError(
            f"namespace {name!r}: 2-64 lowercase letters, digits or '-' (not at either end)"
        ) from None
    return name


def get_namespace(session: Session, name: str) -> Namespace:
    found = session.scalar(select(Namespace).where(Namespace.name == name))
    if found is None:
        raise NotFoundError("namespace", name, "an admin creates it: POST /api/v1/namespaces")
    return found


def create_namespace(
    session: Session, name: str, owner: str, *, actor: str, trusted: bool = False
) -> Namespace:
    _check_name(name)
    owner = check_identity(owner, field="owner")
    if session.scalar(select(Namespace.id).where(Namespace.name == name)) is not None:
        raise ConflictError("namespace", name, "exists already")
    namespace = Namespace(name=name, trusted=trusted)
    session.add(namespace)
    session.flush()
    session.add(Member(namespace_id=namespace.id, identity=owner, role="owner", added_by=actor))
    audit.record(session, actor, "namespace.create", name, owner=owner, trusted=trusted)
    lookalikes.hold_if_confusable(session, namespace, actor=actor)
    return namespace


def role_of(session: Session, namespace_id: int, identity: str) -> str | None:
    """``owner``, ``member``, or None for someone with no role in the namespace."""
    return session.scalar(
        select(Member.role).where(Member.namespace_id == namespace_id, Member.identity == identity)
    )


def members_of(session: Session, namespace: Namespace) -> list[Member]:
    """Owners first, then members, each by identity."""
    rows = session.scalars(select(Member).where(Member.namespace_id == namespace.id))
    return sorted(rows, key=lambda m: (ROLES.index(m.role) if m.role in ROLES else 9, m.identity))


def add_member(
    session: Session, namespace: Namespace, identity: str, role: str, *, actor: str
) -> Member:
    identity = check_identity(identity)
    if role not in ROLES:
        raise InvalidInputError(f"role: {role!r}; use {' or '.join(ROLES)}")
    _lock(session, namespace)
    found = role_of(session, namespace.id, identity)
    if found is not None:
        raise ConflictError(
            "member",
            identity,
            f"is already {found} of namespace {namespace.name!r}; remove them first to change "
            "the role",
        )
    member = Member(namespace_id=namespace.id, identity=identity, role=role, added_by=actor)
    session.add(member)
    session.flush()
    audit.record(session, actor, "member.add", namespace.name, identity=identity, role=role)
    return member


def _lock(session: Session, namespace: Namespace) -> None:
    """One member change at a time per namespace (PostgreSQL; SQLite has one writer anyway),
    so two owners removing each other at once cannot both see the other one still there."""
    session.execute(select(Namespace.id).where(Namespace.id == namespace.id).with_for_update())


def _owners(session: Session, namespace_id: int) -> int:
    query = select(func.count()).where(Member.namespace_id == namespace_id, Member.role == "owner")
    return int(session.scalar(query) or 0)


def remove_member(session: Session, namespace: Namespace, identity: str, *, actor: str) -> Member:
    """Refused for the last owner: a namespace always has someone who can manage it."""
    identity = check_identity(identity)
    _lock(session, namespace)
    member = session.get(Member, (namespace.id, identity))
    if member is None:
        raise NotFoundError("member", f"{identity} of namespace {namespace.name}")
    if member.role == "owner" and _owners(session, namespace.id) <= 1:
        raise ConflictError(
            "member",
            identity,
            f"is the last owner of namespace {namespace.name!r}; add another owner first",
        )
    session.delete(member)
    session.flush()
    audit.record(session, actor, "member.remove", namespace.name, identity=identity)
    return member


def add_key(session: Session, namespace_name: str, pem: str, *, actor: str) -> PublisherKey:
    namespace = get_namespace(session, namespace_name)
    public_key = public_key_from_pem(pem.encode(), source="the uploaded key")
    keyid = key_id(public_key)
    if session.scalar(select(PublisherKey.id).where(PublisherKey.key_id == keyid)) is not None:
        raise ConflictError("publisher key", keyid, "is registered already")
    key = PublisherKey(namespace_id=namespace.id, key_id=keyid, public_key_pem=pem)
    session.add(key)
    session.flush()
    audit.record(session, actor, "key.add", namespace_name, key_id=keyid)
    return key


def keys_of(session: Session, namespace_name: str) -> list[PublisherKey]:
    namespace = get_namespace(session, namespace_name)
    query = select(PublisherKey).where(PublisherKey.namespace_id == namespace.id)
    return list(session.scalars(query.order_by(PublisherKey.id)))
