"""What every marketplace page shares: the templates, who is signed in (the API token kept in
a cookie), CSRF tokens for forms, rendering with security headers, and HTML error pages for
errors raised inside a page's route."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from cryptography.hazmat.primitives import serialization
from fastapi import Depends, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from plugport import _web
from plugport.errors import AuthenticationError, PlugportError
from plugport.registry.deps import SessionDep
from plugport.registry.errors import status_for
from plugport.registry.models import utcnow
from plugport.registry.services import tokens
from plugport.registry.services.tokens import Principal
from plugport.registry.settings import RegistrySettings

__all__ = [
    "ANON_COOKIE",
    "STATIC_DIR",
    "TOKEN_COOKIE",
    "HtmlRoute",
    "User",
    "check_csrf",
    "csrf_secret",
    "error_page",
    "pseudonym_secret",
    "redirect",
    "render",
    "safe_next",
    "templates",
]

_log = logging.getLogger(__name__)

TOKEN_COOKIE = "plugport_registry_token"  # noqa: S105 a cookie name, not a secret
ANON_COOKIE = "plugport_registry_anon"
"""A random value for a browser that is not signed in, so the sign-in form has a CSRF token."""
TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"

templates = _web.make_templates(TEMPLATE_DIR, product="Plugport Marketplace")

_SECURITY_HEADERS = {
    **_web.PAGE_HEADERS,
    "Cache-Control": "private, no-cache",
    "Vary": "Cookie, X-Plugport-Partial",
}


def csrf_secret(request: Request) -> bytes:
    """Derived from the registry's index key, which every node behind one load balancer
    shares: a form rendered by one node is accepted by the next."""
    cached: bytes | None = getattr(request.app.state, "web_csrf_secret", None)
    if cached is None:
        raw = request.app.state.index_key.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        cached = hmac.new(raw, b"plugport registry web csrf v1", hashlib.sha256).digest()
        request.app.state.web_csrf_secret = cached
    return cached


def pseudonym_secret(request: Request) -> bytes:
    """The key of the pseudonyms pages show for rating authors without a display name."""
    secret: bytes = request.app.state.pseudonym_secret
    return secret


def _csrf_session(request: Request) -> str:
    """What a CSRF token is bound to: the signed-in token, else this browser's anonymous id."""
    user: Principal | None = getattr(request.state, "web_user", None)
    if user is not None:
        return request.cookies.get(TOKEN_COOKIE, "")
    anon = request.cookies.get(ANON_COOKIE) or getattr(request.state, "web_new_anon", None)
    if not anon:
        anon = secrets.token_urlsafe(24)
        request.state.web_new_anon = anon
    return str(anon)


def check_csrf(request: Request, token: str | None) -> None:
    """Refuse (403) a form post that does not carry this browser's CSRF token."""
    session = _csrf_session(request)
    if getattr(request.state, "web_new_anon", None) or not _web.csrf_valid(
        csrf_secret(request), session, token
    ):
        raise HTTPException(
            403, "This form has expired or did not come from this site. Reload the page and retry."
        )


def _web_user(request: Request, session: SessionDep) -> Principal | None:
    raw = request.cookies.get(TOKEN_COOKIE)
    user = None
    if raw:
        try:
            user = tokens.authenticate(session, f"Bearer {raw}", now=utcnow())
        except AuthenticationError:
            request.state.web_drop_token = True  # revoked or expired: forget it
    request.state.web_user = user
    return user


User = Annotated[Principal | None, Depends(_web_user)]
"""Who is signed in to the pages (None: nobody, or a token that no longer works)."""


def safe_next(value: str | None, default: str = "/") -> str:
    """A local path to go back to; anything else (another site, ``//host``) becomes default."""
    if not value or not value.startswith("/") or value.startswith("//") or "\\" in value:
        return default
    return value


def _finish(request: Request, response: Response) -> Response:
    for name, value in _SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    https = request.url.scheme == "https"
    anon = getattr(request.state, "web_new_anon", None)
    if anon:
        response.set_cookie(
            ANON_COOKIE, anon, path="/", httponly=True, samesite="strict", secure=https
        )
    if getattr(request.state, "web_drop_token", False):
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _base_context(request: Request) -> dict[str, Any]:
    settings: RegistrySettings = request.app.state.settings
    return {
        "user": getattr(request.state, "web_user", None),
        "csrf": _web.csrf_token(csrf_secret(request), _csrf_session(request)),
        "host_service_url": (settings.host_service_url or "").rstrip("/") or None,
        "current_path": request.url.path,
        "signin_url": "/signin?next=" + quote(request.url.path, safe="/"),
    }


def render(
    request: Request, name: str, context: dict[str, Any] | None = None, *, status_code: int = 200
) -> Response:
    response = _web.render(
        templates,
        request,
        name,
        {**_base_context(request), **(context or {})},
        status_code=status_code,
    )
    return _finish(request, response)


def redirect(
    request: Request, url: str, *, flash: str | None = None, kind: str = "success"
) -> Response:
    """303 See Other: after a form post the browser GETs the result page."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        _web.set_flash(response, flash, kind)
    return _finish(request, response)


_TITLES = {
    400: "That request is not valid",
    401: "Please sign in",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    409: "That has changed meanwhile",
    422: "That request is not valid",
}


def error_page(request: Request, status: int, message: str) -> Response:
    title = _TITLES.get(status, "Something went wrong")
    return render(
        request,
        "error.html",
        {"status": status, "title": title, "message": message},
        status_code=status,
    )


class HtmlRoute(APIRoute):
    """A page route: errors become HTML pages with the same status the API would answer
    (the JSON API keeps its own handlers), and every page gets the security headers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def page(request: Request) -> Response:
            try:
                return _finish(request, await handler(request))
            except PlugportError as exc:
                status, _ = status_for(exc)
                return error_page(request, status, str(exc))
            except RequestValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e.get('loc', ())[1:])}: {e.get('msg', '')}"
                    for e in exc.errors()
                )
                return error_page(request, 400, problems)
            except HTTPException as exc:
                return error_page(request, exc.status_code, str(exc.detail))
            except Exception:  # a bug: logged with its traceback, and a page that says sorry
                _log.exception("page %s %s failed", request.method, request.url.path)
                return error_page(
                    request, 500, "The registry could not show this page. Try again later."
                )

        return page
