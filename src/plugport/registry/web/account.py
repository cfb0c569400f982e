"""Signing in with an API token: checked by the token service, then kept in an HttpOnly,
SameSite=Strict cookie (Secure over https) that the pages read on every request. The form
also sets the display name the public sees for the token's identity (a refused name signs
nobody in and stores nothing)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from plugport.errors import AuthenticationError, InvalidInputError
from plugport.registry.deps import SessionDep
from plugport.registry.models import utcnow
from plugport.registry.services import profiles, tokens
from plugport.registry.web._common import (
    ANON_COOKIE,
    TOKEN_COOKIE,
    HtmlRoute,
    User,
    check_csrf,
    redirect,
    render,
    safe_next,
)

router = APIRouter(route_class=HtmlRoute, include_in_schema=False)

COOKIE_MAX_AGE_S = 7 * 24 * 3600
_Field = Annotated[str | None, Form()]


@router.get("/signin", name="web_signin")
def signin_form(request: Request, user: User, next: str | None = None) -> Response:
    return _form(request, safe_next(next))


def _form(
    request: Request,
    next_page: str,
    *,
    error: str | None = None,
    field: str = "",
    display_name: str = "",
    status_code: int = 200,
) -> Response:
    context = {
        "next": next_page,
        "error": error,
        "error_field": field,
        "display_name": display_name,
    }
    return render(request, "signin.html", context, status_code=status_code)


@router.post("/signin")
def signin(
    *,
    request: Request,
    session: SessionDep,
    user: User,
    token: _Field = None,
    csrf: _Field = None,
    next: _Field = None,
    display_name: _Field = None,
) -> Response:
    check_csrf(request, csrf)
    target = safe_next(next)
    value = (token or "").strip()
    name = (display_name or "").strip()
    try:
        principal = tokens.authenticate(session, f"Bearer {value}", now=utcnow())
    except AuthenticationError as exc:
        message = "Paste an API token (ppt_…)." if not value else f"Not signed in: {exc}."
        return _form(
            request, target, error=message, field="token", display_name=name, status_code=401
        )
    if name:
        try:
            profiles.set_display_name(session, principal.identity, name, actor=principal.identity)
        except InvalidInputError as exc:
            session.rollback()  # nothing stored, not even the token's last use
            return _form(
                request,
                target,
                error=f"Not signed in: {exc}",
                field="display_name",
                display_name=name,
                status_code=400,
            )
    response = redirect(request, target, flash=f"Signed in as {principal.identity}.")
    response.set_cookie(
        TOKEN_COOKIE,
        value,
        max_age=COOKIE_MAX_AGE_S,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    response.delete_cookie(ANON_COOKIE, path="/", httponly=True, samesite="strict")
    return response


@router.post("/signout", name="web_signout")
def signout(request: Request, user: User, csrf: _Field = None) -> Response:
    if user is not None:
        check_csrf(request, csrf)
    response = redirect(request, "/", flash="Signed out.", kind="info")
    response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response
