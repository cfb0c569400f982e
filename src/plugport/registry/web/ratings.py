"""A signed-in user's review of a plugin, from the form on its page: one per identity,
written again to edit, deleted with its own button; through the community service, like
``PUT``/``DELETE /api/v1/plugins/{name}/reviews``."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response
from starlette.exceptions import HTTPException

from plugport.registry.deps import SessionDep
from plugport.registry.services import catalog, community
from plugport.registry.services.tokens import Principal
from plugport.registry.web._common import HtmlRoute, User, check_csrf, redirect

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

MAX_REVIEW_CHARS = 5000
_Field = Annotated[str | None, Form()]


def _signed_in(user: Principal | None) -> Principal:
    if user is None:
        raise HTTPException(401, "Sign in to review a plugin.")
    return user


@router.post("/plugins/{name}/review", name="web_review_put")
def put_review(
    name: str,
    *,
    request: Request,
    session: SessionDep,
    user: User,
    stars: _Field = None,
    text: _Field = None,
    csrf: _Field = None,
) -> Response:
    check_csrf(request, csrf)
    caller = _signed_in(user)
    plugin = catalog.get_plugin(session, name)
    page = f"/plugins/{plugin.name}#reviews"
    if stars not in {"1", "2", "3", "4", "5"}:
        return redirect(request, page, flash="Choose 1 to 5 stars.", kind="error")
    body = (text or "").strip()
    if len(body) > MAX_REVIEW_CHARS:
        return redirect(
            request, page, flash=f"A review has at most {MAX_REVIEW_CHARS} characters.",
            kind="error",
        )  # fmt: skip
    community.upsert_review(session, plugin, caller.identity, int(stars), body)
    return redirect(request, page, flash="Your review is saved.")


@router.post("/plugins/{name}/review/delete", name="web_review_delete")
def delete_review(
    name: str, request: Request, session: SessionDep, user: User, csrf: _Field = None
) -> Response:
    check_csrf(request, csrf)
    caller = _signed_in(user)
    plugin = catalog.get_plugin(session, name)
    community.delete_review(session, plugin, caller.identity)
    return redirect(request, f"/plugins/{plugin.name}#reviews", flash="Your review is deleted.")
