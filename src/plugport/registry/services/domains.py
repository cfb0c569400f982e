"""Verified publishers: the domains a namespace's owners claim, the checks that prove them, and
the badge (``Namespace.verified_domain``) those checks keep in step. Every change of a domain's
standing is audited in the same transaction (:mod:`plugport.registry.services.audit`)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.registry._verification_rules import (
    Outcome,
    after_check,
    check_domain,
    https_url,
    txt_name,
    txt_value,
)
from plugport.registry.models import DomainVerification, Namespace, utcnow
from plugport.registry.services import audit
from plugport.registry.verification import CheckResult, DomainChecker

__all__ = [
    "SYSTEM_ACTOR",
    "Challenge",
    "DomainNotProvedError",
    "challenge_of",
    "check_now",
    "domains_of",
    "get_domain",
    "recheck_due",
    "record_check",
    "request_challenge",
]

SYSTEM_ACTOR = "registry:domain-recheck"
"""Who the audit log names for a periodic check."""


class DomainNotProvedError(ConflictError):
    """A check found neither proof; ``dns`` and ``https`` say what each method saw. Nothing
    was changed."""

    def __init__(self, domain: str, result: CheckResult) -> None:
        self.domain = domain
        self.dns = result.dns
        self.https = result.https
        super().__init__("domain", domain, f"is not proved: {result.why_not}")


@dataclass(frozen=True)
class Challenge:
    """What an owner publishes to prove a domain, one of the two."""

    txt_name: str
    txt_value: str
    https_url: str
    https_body: str


def challenge_of(row: DomainVerification) -> Challenge:
    return Challenge(txt_name(row.domain), txt_value(row.token), https_url(row.domain), row.token)


def domains_of(session: Session, namespace: Namespace) -> list[DomainVerification]:
    query = select(DomainVerification).where(DomainVerification.namespace_id == namespace.id)
    return list(session.scalars(query.order_by(DomainVerification.domain)))


def get_domain(session: Session, namespace: Namespace, domain: str) -> DomainVerification:
    row = session.scalar(
        select(DomainVerification).where(
            DomainVerification.namespace_id == namespace.id,
            DomainVerification.domain == domain.strip().lower().rstrip("."),
        )
    )
    if row is None:
        raise NotFoundError(
            "domain",
            f"{domain} of namespace {namespace.name}",
            f"request a challenge first: POST /api/v1/namespaces/{namespace.name}/domains",
        )
    return row


def request_challenge(
    session: Session, namespace: Namespace, domain: str, *, actor: str
) -> DomainVerification:
    """The challenge for ``domain``: a new token the first time, the same one after (asking
    again never invalidates a record already published)."""
    try:
        domain = check_domain(domain)
    except ValueError as exc:
        raise InvalidInputError(str(exc)) from None
    existing = session.scalar(
        select(DomainVerification).where(
            DomainVerification.namespace_id == namespace.id, DomainVerification.domain == domain
        )
    )
    if existing is not None:
        return existing
    row = DomainVerification(
        namespace_id=namespace.id,
        domain=domain,
        token=secrets.token_urlsafe(24),
        status="pending",
        failures=0,
        requested_by=actor,
    )
    session.add(row)
    session.flush()
    audit.record(session, actor, "domain.challenge", namespace.name, domain=domain)
    return row


def _refresh_badge(session: Session, namespace_id: int) -> None:
    namespace = session.get(Namespace, namespace_id)
    if namespace is None:
        return
    session.flush()
    verified = session.scalars(
        select(DomainVerification)
        .where(
            DomainVerification.namespace_id == namespace_id,
            DomainVerification.status == "verified",
        )
        .order_by(DomainVerification.verified_at, DomainVerification.id)
    ).first()
    namespace.verified_domain = verified.domain if verified is not None else None


def record_check(
    session: Session,
    row: DomainVerification,
    result: CheckResult,
    *,
    actor: str,
    allowed_failures: int,
) -> Outcome:
    """Apply one check's result to ``row`` and the badge (:func:`after_check` decides)."""
    outcome = after_check(
        row.status, row.failures, result.proved, allowed_failures=allowed_failures
    )
    now = utcnow()
    row.status = outcome.status
    row.failures = outcome.failures
    row.checked_at = now
    row.last_error = None if result.proved else result.why_not
    if result.proved:
        row.method = result.proved_by
        if outcome.action == "domain.verify":
            row.verified_at = now
    _refresh_badge(session, row.namespace_id)
    if outcome.action is not None:
        namespace = session.get(Namespace, row.namespace_id)
        subject = namespace.name if namespace is not None else str(row.namespace_id)
        detail: dict[str, object] = {"domain": row.domain, "method": row.method}
        if not result.proved:
            detail = {"domain": row.domain, "why": result.why_not, "failures": row.failures}
        audit.record(session, actor, outcome.action, subject, **detail)
    return outcome


def check_now(
    session: Session,
    namespace: Namespace,
    domain: str,
    checker: DomainChecker,
    *,
    actor: str,
    allowed_failures: int,
) -> DomainVerification:
    """An owner's check: proved, the domain is verified; not proved, :class:`DomainNotProvedError`
    and nothing changes (a verified domain loses its badge only to the periodic checks)."""
    row = get_domain(session, namespace, domain)
    result = checker.check(row.domain, row.token)
    if not result.proved:
        raise DomainNotProvedError(row.domain, result)
    record_check(session, row, result, actor=actor, allowed_failures=allowed_failures)
    return row


def recheck_due(
    sessions: sessionmaker[Session],
    checker: DomainChecker,
    *,
    older_than_s: float,
    allowed_failures: int,
) -> list[tuple[str, str]]:
    """Check again every verified domain last checked more than ``older_than_s`` ago, each in
    its own transaction, with no database transaction open while the network is asked.
    Returns ``(domain, status)`` for each domain checked."""
    cutoff = utcnow() - timedelta(seconds=older_than_s)
    with sessions() as session:
        due = session.execute(
            select(DomainVerification.id, DomainVerification.domain, DomainVerification.token)
            .where(
                DomainVerification.status == "verified",
                (DomainVerification.checked_at.is_(None))
                | (DomainVerification.checked_at < cutoff),
            )
            .order_by(DomainVerification.checked_at, DomainVerification.id)
        ).all()
    done: list[tuple[str, str]] = []
    for row_id, domain, token in due:
        result = checker.check(domain, token)
        with sessions.begin() as session:
            row = session.get(DomainVerification, row_id)
            if row is None or row.token != token or row.status != "verified":
                continue  # removed or changed meanwhile
            record_check(
                session, row, result, actor=SYSTEM_ACTOR, allowed_failures=allowed_failures
            )
            done.append((domain, row.status))
    return done
