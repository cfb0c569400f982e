"""Names that imitate a verified namespace or a popular plugin are held for review: at
namespace creation (the namespace is marked held, so every upload into it waits for a
reviewer) and at a plugin's first publish (a high finding on the upload). The decision is
:mod:`plugport.registry._confusable_rules`; this module reads what is protected."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from plugport.errors import ConflictError, InvalidInputError, NotFoundError
from plugport.inspection import Finding
from plugport.registry._confusable_rules import Protected, Resemblance, resemblances
from plugport.registry.models import Namespace, Plugin
from plugport.registry.services import audit

__all__ = [
    "POPULAR_PLUGINS",
    "RULE",
    "clear",
    "held",
    "hold_if_confusable",
    "namespace_resemblances",
    "upload_findings",
]

POPULAR_PLUGINS = 200
"""The most downloaded plugins are the ones worth imitating."""
RULE = "confusable-name"


def _verified_namespaces(session: Session) -> list[Protected]:
    rows = session.execute(
        select(Namespace.name, Namespace.verified_domain).where(
            Namespace.verified_domain.is_not(None)
        )
    ).all()
    return [Protected(name, f"the verified namespace {name!r} ({domain})") for name, domain in rows]


def _popular(session: Session) -> list[str]:
    return list(
        session.scalars(
            select(Plugin.name)
            .where(Plugin.latest_version.is_not(None), Plugin.downloads > 0)
            .order_by(Plugin.downloads.desc(), Plugin.name)
            .limit(POPULAR_PLUGINS)
        )
    )


def namespace_resemblances(session: Session, name: str) -> list[Resemblance]:
    """Verified namespaces, and the namespaces of popular plugins, that ``name`` imitates."""
    protected = _verified_namespaces(session)
    seen = {p.name for p in protected}
    for plugin in _popular(session):
        owner = plugin.split(".", 1)[0]
        if owner not in seen:
            seen.add(owner)
            protected.append(Protected(owner, f"the namespace of the popular plugin {plugin!r}"))
    return resemblances(name, protected)


def hold_if_confusable(session: Session, namespace: Namespace, *, actor: str) -> None:
    """Mark a new namespace held when its name imitates a protected one (audited)."""
    found = namespace_resemblances(session, namespace.name)
    if not found:
        return
    namespace.name_review = "held"
    namespace.name_review_reason = "; ".join(r.message for r in found)
    audit.record(
        session,
        actor,
        "namespace.hold",
        namespace.name,
        resembles=[r.protected.name for r in found],
        reason=namespace.name_review_reason,
    )


def upload_findings(
    session: Session, namespace: Namespace, name: str, *, first_publish: bool
) -> list[Finding]:
    """High findings for an upload whose names imitate a protected one: the namespace while
    it is held (or, not yet cleared, once it resembles a namespace verified since), and a
    plugin's name at its first publish (an approved name is not asked about again)."""
    messages: list[str] = []
    if namespace.name_review == "held" and namespace.name_review_reason:
        messages.append(f"namespace held for review: {namespace.name_review_reason}")
    elif namespace.name_review != "cleared":
        messages += [r.message for r in namespace_resemblances(session, namespace.name)]
    if first_publish:
        others = [p for p in _popular(session) if p.split(".", 1)[0] != namespace.name]
        protected = [Protected(p, f"the popular plugin {p!r}") for p in others]
        messages += [r.message for r in resemblances(name, protected)]
    return [Finding("plugport.toml", 1, RULE, "high", message) for message in messages]


def held(session: Session) -> list[Namespace]:
    query = select(Namespace).where(Namespace.name_review == "held").order_by(Namespace.name)
    return list(session.scalars(query))


def clear(session: Session, name: str, *, reason: str, actor: str) -> Namespace:
    """A reviewer's decision that a held namespace is no impersonation: its uploads are
    reviewed as any other namespace's again."""
    if not reason.strip():
        raise InvalidInputError("reason: say why, for the audit log")
    namespace = session.scalar(select(Namespace).where(Namespace.name == name))
    if namespace is None:
        raise NotFoundError("namespace", name)
    if namespace.name_review != "held":
        raise ConflictError("namespace", name, "is not held for review")
    namespace.name_review = "cleared"
    namespace.name_review_reason = reason.strip()
    audit.record(session, actor, "namespace.clear", name, reason=reason.strip())
    return namespace
