"""``/api/v1/namespaces``: admins create namespaces; owners register publisher keys."""

from __future__ import annotations

from fastapi import APIRouter, status

from plugport.registry.deps import Caller, SessionDep
from plugport.registry.models import Namespace, PublisherKey
from plugport.registry.schemas import KeyCreate, KeyPublic, NamespaceCreate, NamespacePublic
from plugport.registry.services import namespaces, tokens
from plugport.registry.services.tokens import Principal

router = APIRouter(prefix="/api/v1/namespaces", tags=["namespaces"])


def _public(namespace: Namespace) -> NamespacePublic:
    return NamespacePublic(
        name=namespace.name,
        trusted=namespace.trusted,
        owners=sorted(m.identity for m in namespace.members if m.role == "owner"),
        members=sorted(m.identity for m in namespace.members),
        created_at=namespace.created_at,
    )


def _key(key: PublisherKey) -> KeyPublic:
    return KeyPublic.model_validate(key, from_attributes=True)


def _require_owner(caller: Principal, namespace: Namespace) -> None:
    owners = {m.identity for m in namespace.members if m.role == "owner"}
    if caller.identity not in owners:
        tokens.require(caller, "admin")


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: NamespaceCreate, session: SessionDep, caller: Caller) -> NamespacePublic:
    tokens.require(caller, "admin")
    namespace = namespaces.create_namespace(
        session, body.name, body.owner, actor=caller.identity, trusted=body.trusted
    )
    session.refresh(namespace)
    return _public(namespace)


@router.get("/{name}")
def show(name: str, session: SessionDep) -> NamespacePublic:
    return _public(namespaces.get_namespace(session, name))


@router.get("/{name}/keys")
def keys(name: str, session: SessionDep) -> list[KeyPublic]:
    return [_key(k) for k in namespaces.keys_of(session, name)]


@router.post("/{name}/keys", status_code=status.HTTP_201_CREATED)
def add_key(name: str, body: KeyCreate, session: SessionDep, caller: Caller) -> KeyPublic:
    _require_owner(caller, namespaces.get_namespace(session, name))
    return _key(namespaces.add_key(session, name, body.public_key_pem, actor=caller.identity))


@router.delete("/{name}/keys/{key_id}")
def revoke_key(name: str, key_id: str, session: SessionDep, caller: Caller) -> KeyPublic:
    _require_owner(caller, namespaces.get_namespace(session, name))
    return _key(namespaces.revoke_key(session, name, key_id, actor=caller.identity))
