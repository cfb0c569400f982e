"""Namespaces (``acme`` of ``acme.hello``): owners and members, and the publisher keys allowed
to sign archives in them."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.manifest import check_plugin_name
from plugport.registry.models import Member, Namespace, PublisherKey, utcnow
from plugport.registry.services import audit
from plugport.signing import key_id, public_key_from_pem

__all__ = ["add_key", "create_namespace", "get_namespace", "is_member", "keys_of", "revoke_key"]


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
    if session.scalar(select(Namespace.id).where(Namespace.name == name)) is not None:
        raise ConflictError("namespace", name, "exists already")
    namespace = Namespace(name=name, trusted=trusted)
    session.add(namespace)
    session.flush()
    session.add(Member(namespace_id=namespace.id, identity=owner, role="owner"))
    audit.record(session, actor, "namespace.create", name, owner=owner, trusted=trusted)
    return namespace


def is_member(namespace: Namespace, identity: str) -> bool:
    return any(m.identity == identity for m in namespace.members)


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


def revoke_key(session: Session, namespace_name: str, keyid: str, *, actor: str) -> PublisherKey:
    namespace = get_namespace(session, namespace_name)
    key = session.scalar(
        select(PublisherKey).where(
            PublisherKey.namespace_id == namespace.id, PublisherKey.key_id == keyid
        )
    )
    if key is None:
        raise NotFoundError("publisher key", keyid)
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        audit.record(session, actor, "key.revoke", namespace_name, key_id=keyid)
    return key
