"""``/api/v1/review``: the queue and the decisions, for tokens with the ``review`` scope."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from plugport.registry.deps import Caller, SessionDep
from plugport.registry.routers.namespaces import namespace_public
from plugport.registry.routers.plugins import version_public
from plugport.registry.schemas import NamespacePublic, VersionPublic
from plugport.registry.services import lookalikes, review, tokens

router = APIRouter(prefix="/api/v1/review", tags=["review"])


class SubmissionPublic(BaseModel):
    version: VersionPublic
    previous_version: str | None
    permission_diff: dict[str, Any]
    """The raw change per permission key (lists item by item, values ``from``/``to``)."""
    permission_changes: PermissionChangesPublic
    """The same change in the words the host's consent uses, one line per grant."""
    library_diff: dict[str, list[dict[str, Any]]]
    """Python libraries ``added`` and ``removed`` (``{name, version}``) and ``changed``
    (``{name, from, to}``; ``from`` equals ``to`` when the same version ships other wheel files)
    since the previous published version."""


class PermissionChangesPublic(BaseModel):
    added: list[str]
    removed: list[str]


class DecisionCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


def _public(item: review.Submission) -> SubmissionPublic:
    return SubmissionPublic(
        version=version_public(item.name, item.version),
        previous_version=item.previous,
        permission_diff=item.permission_diff,
        permission_changes=PermissionChangesPublic(
            added=item.permission_changes.added, removed=item.permission_changes.removed
        ),
        library_diff=item.library_diff,
    )


@router.get("/namespaces")
def held_namespaces(session: SessionDep, caller: Caller) -> list[NamespacePublic]:
    """Namespaces held because their name resembles a verified namespace or a popular
    plugin (``name_review_reason`` says which); their uploads wait in the queue meanwhile."""
    tokens.require(caller, "review")
    return [namespace_public(session, ns) for ns in lookalikes.held(session)]


@router.post("/namespaces/{name}/clear")
def clear_namespace(
    name: str, body: DecisionCreate, session: SessionDep, caller: Caller
) -> NamespacePublic:
    """Release a held namespace: its name is no impersonation (audited with the reason)."""
    tokens.require(caller, "review")
    namespace = lookalikes.clear(session, name, reason=body.reason, actor=caller.identity)
    return namespace_public(session, namespace)


@router.get("/queue")
def queue(session: SessionDep, caller: Caller) -> list[SubmissionPublic]:
    tokens.require(caller, "review")
    return [_public(item) for item in review.queue(session)]


@router.get("/{name}/{version}")
def show(name: str, version: str, session: SessionDep, caller: Caller) -> SubmissionPublic:
    tokens.require(caller, "review")
    return _public(review.submission(session, name, version))


@router.post("/{name}/{version}/approve")
def approve(
    name: str, version: str, body: DecisionCreate, session: SessionDep, caller: Caller
) -> VersionPublic:
    tokens.require(caller, "review")
    row = review.decide(
        session, name, version, approve=True, reason=body.reason, actor=caller.identity
    )
    return version_public(name, row)


@router.post("/{name}/{version}/reject")
def reject(
    name: str, version: str, body: DecisionCreate, session: SessionDep, caller: Caller
) -> VersionPublic:
    tokens.require(caller, "review")
    row = review.decide(
        session, name, version, approve=False, reason=body.reason, actor=caller.identity
    )
    return version_public(name, row)
