"""The review queue for tokens with the ``review`` scope: pending versions, one submission
with its scan findings, permission changes and Python libraries, and the decision, made
through the review service (which audits it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.exceptions import HTTPException

from plugport.registry.deps import SessionDep
from plugport.registry.libraries import python_table
from plugport.registry.libraries import shown as libraries
from plugport.registry.services import review, tokens
from plugport.registry.services.tokens import Principal
from plugport.registry.web._common import HtmlRoute, User, check_csrf, redirect, render

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

_Field = Annotated[str | None, Form()]
MAX_REASON_CHARS = 2000


def _reviewer(request: Request, user: Principal | None) -> Principal | Response:
    if user is None:
        return redirect(
            request, f"/signin?next={request.url.path}", flash="Sign in to review.", kind="info"
        )
    tokens.require(user, "review")
    return user


@router.get("/review", name="web_review_queue")
def queue(request: Request, session: SessionDep, user: User) -> Response:
    reviewer = _reviewer(request, user)
    if isinstance(reviewer, Response):
        return reviewer
    rows = [
        (item, libraries(item.version.libraries, item.version.manifest))
        for item in review.queue(session)
    ]
    return render(request, "review_queue.html", {"queue": rows})


@router.get("/review/{name}/{version}", name="web_review_item")
def item(name: str, version: str, request: Request, session: SessionDep, user: User) -> Response:
    reviewer = _reviewer(request, user)
    if isinstance(reviewer, Response):
        return reviewer
    return _item_page(request, session, name, version)


def _item_page(
    request: Request,
    session: SessionDep,
    name: str,
    version: str,
    *,
    error: str | None = None,
    status_code: int = 200,
) -> Response:
    """A submission with its findings and permission diff, and the decision form (with
    ``error`` above it when the last decision was refused)."""
    found = review.submission(session, name, version)
    context = {
        "item": found,
        "row": found.version,
        "scan": found.version.scan,
        "changes": found.permission_changes,
        "libraries": libraries(found.version.libraries, found.version.manifest),
        "python": python_table(found.version.manifest),
        "library_diff": found.library_diff,
        "error": error,
        "reason": "",
    }
    return render(request, "review_item.html", context, status_code=status_code)


@router.post("/review/{name}/{version}", name="web_review_decide")
def decide(
    name: str,
    version: str,
    *,
    request: Request,
    session: SessionDep,
    user: User,
    decision: _Field = None,
    reason: _Field = None,
    csrf: _Field = None,
) -> Response:
    check_csrf(request, csrf)
    reviewer = _reviewer(request, user)
    if isinstance(reviewer, Response):
        return reviewer
    if decision not in ("approve", "reject"):
        raise HTTPException(400, "decision: approve or reject")
    text = (reason or "").strip()
    if decision == "reject" and not text:
        return _item_page(
            request,
            session,
            name,
            version,
            error="reason: a rejection needs a reason, for the publisher and the audit log",
            status_code=400,
        )
    if len(text) > MAX_REASON_CHARS:
        raise HTTPException(400, f"reason: at most {MAX_REASON_CHARS} characters")
    approve = decision == "approve"
    review.decide(
        session,
        name,
        version,
        approve=approve,
        reason=text or "approved in the review queue",
        actor=reviewer.identity,
    )
    done = "approved and published" if approve else "rejected"
    return redirect(request, "/review", flash=f"{name} {version} {done}.")
