"""``/api/v1/namespaces``: admins create namespaces; owners register publisher keys and
manage members. Every change needs ``publish:<namespace>`` from an owner, or ``admin``
(:mod:`plugport.registry.services.access`)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, status
from sqlalchemy.orm import Session

from plugport.registry.deps import Caller, CheckerDep, SessionDep, SettingsDep
from plugport.registry.models import DomainVerification, Member, Namespace, PublisherKey
from plugport.registry.schemas import (
    ChallengePublic,
    DomainCreate,
    DomainPublic,
    KeyCreate,
    KeyPublic,
    MemberCreate,
    MemberPublic,
    NamespaceCreate,
    NamespacePublic,
)
from plugport.registry.services import access, domains, namespaces, revocation, tokens
from plugport.registry.services.tokens import Principal

router = APIRouter(prefix="/api/v1/namespaces", tags=["namespaces"])


def namespace_public(session: Session, namespace: Namespace) -> NamespacePublic:
    members = namespaces.members_of(session, namespace)
    return NamespacePublic(
        name=namespace.name,
        trusted=namespace.trusted,
        owners=[m.identity for m in members if m.role == "owner"],
        members=[m.identity for m in members],
        roles={m.identity: m.role for m in members},
        created_at=namespace.created_at,
        verified_domain=namespace.verified_domain,
        name_review=namespace.name_review,
        name_review_reason=namespace.name_review_reason,
    )


def _domain(row: DomainVerification) -> DomainPublic:
    challenge = domains.challenge_of(row)
    return DomainPublic(
        domain=row.domain,
        status=row.status,
        method=row.method,
        verified_at=row.verified_at,
        checked_at=row.checked_at,
        last_error=row.last_error,
        challenge=ChallengePublic(
            txt_name=challenge.txt_name,
            txt_value=challenge.txt_value,
            https_url=challenge.https_url,
            https_body=challenge.https_body,
        ),
    )


def _key(key: PublisherKey) -> KeyPublic:
    return KeyPublic.model_validate(key, from_attributes=True)


def _member(member: Member) -> MemberPublic:
    return MemberPublic.model_validate(member, from_attributes=True)


def _managed(session: Session, name: str, caller: Principal) -> Namespace:
    """The namespace, if ``caller`` may manage it: scope and role, never the identity alone."""
    namespace = namespaces.get_namespace(session, name)
    role = namespaces.role_of(session, namespace.id, caller.identity)
    access.require(caller, namespace.name, role, "manage")
    return namespace


@router.post("", status_code=status.HTTP_201_CREATED)
def create(body: NamespaceCreate, session: SessionDep, caller: Caller) -> NamespacePublic:
    tokens.require(caller, "admin")
    namespace = namespaces.create_namespace(
        session, body.name, body.owner, actor=caller.identity, trusted=body.trusted
    )
    session.flush()
    return namespace_public(session, namespace)


@router.get("/{name}")
def show(name: str, session: SessionDep) -> NamespacePublic:
    return namespace_public(session, namespaces.get_namespace(session, name))


@router.get("/{name}/members")
def members(name: str, session: SessionDep) -> list[MemberPublic]:
    """Owners first, then members; public, like the namespace's page."""
    namespace = namespaces.get_namespace(session, name)
    return [_member(m) for m in namespaces.members_of(session, namespace)]


@router.post("/{name}/members", status_code=status.HTTP_201_CREATED)
def add_member(name: str, body: MemberCreate, session: SessionDep, caller: Caller) -> MemberPublic:
    namespace = _managed(session, name, caller)
    return _member(
        namespaces.add_member(session, namespace, body.identity, body.role, actor=caller.identity)
    )


@router.delete("/{name}/members")
def remove_member(
    name: str,
    identity: Annotated[str, Query(min_length=1, max_length=200)],
    session: SessionDep,
    caller: Caller,
) -> MemberPublic:
    """``?identity=``: in the query, so any identity, even one with a ``/``, can be named.
    Refused (409) for the namespace's last owner."""
    namespace = _managed(session, name, caller)
    return _member(namespaces.remove_member(session, namespace, identity, actor=caller.identity))


@router.get("/{name}/keys")
def keys(name: str, session: SessionDep) -> list[KeyPublic]:
    return [_key(k) for k in namespaces.keys_of(session, name)]


@router.post("/{name}/keys", status_code=status.HTTP_201_CREATED)
def add_key(name: str, body: KeyCreate, session: SessionDep, caller: Caller) -> KeyPublic:
    _managed(session, name, caller)
    return _key(namespaces.add_key(session, name, body.public_key_pem, actor=caller.identity))


@router.delete("/{name}/keys/{key_id}")
def revoke_key(name: str, key_id: str, session: SessionDep, caller: Caller) -> KeyPublic:
    """Revoking a key withdraws every version it signed: no longer offered to hosts, still
    shown on the plugins' pages with the reason."""
    _managed(session, name, caller)
    return _key(revocation.revoke_key(session, name, key_id, actor=caller.identity))


@router.get("/{name}/domains")
def list_domains(name: str, session: SessionDep, caller: Caller) -> list[DomainPublic]:
    """The domains claimed for the namespace, with their challenges: for those who manage it
    (the badge itself is public: ``verified_domain`` on the namespace)."""
    namespace = _managed(session, name, caller)
    return [_domain(row) for row in domains.domains_of(session, namespace)]


@router.post("/{name}/domains", status_code=status.HTTP_201_CREATED)
def request_domain(
    name: str, body: DomainCreate, session: SessionDep, caller: Caller
) -> DomainPublic:
    """A challenge for the domain: publish its TXT record or its HTTPS file, then ask for a
    check. Asking again for the same domain returns the same challenge."""
    namespace = _managed(session, name, caller)
    return _domain(
        domains.request_challenge(session, namespace, body.domain, actor=caller.identity)
    )


@router.post("/{name}/domains/{domain}/check")
def check_domain(
    name: str,
    domain: str,
    *,
    session: SessionDep,
    caller: Caller,
    checker: CheckerDep,
    settings: SettingsDep,
) -> DomainPublic:
    """Check the domain now (DNS first, then HTTPS). Not proved: 409 saying what each method
    saw, and nothing changes."""
    namespace = _managed(session, name, caller)
    row = domains.check_now(
        session,
        namespace,
        domain,
        checker,
        actor=caller.identity,
        allowed_failures=settings.domain_recheck_failures_allowed,
    )
    return _domain(row)
