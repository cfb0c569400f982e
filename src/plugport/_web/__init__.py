"""The web core that every Plugport HTML surface shares (the registry's marketplace pages, the
host service's pages): one Jinja2 environment with autoescaping, a base layout, one stylesheet,
flash messages and CSRF tokens. It imports only the plugport core, never registry or host."""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

import jinja2
from fastapi import FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from plugport._permissions import is_dangerous
from plugport._version import __version__

__all__ = [
    "FLASH_COOKIE",
    "PAGE_HEADERS",
    "STATIC_DIR",
    "TEMPLATE_DIR",
    "Flash",
    "clear_shown_flash",
    "csrf_token",
    "csrf_valid",
    "make_templates",
    "mount_static",
    "pop_flashes",
    "render",
    "set_flash",
]

TEMPLATE_DIR = Path(__file__).parent / "templates"
STATIC_DIR = Path(__file__).parent / "static"
FLASH_COOKIE = "plugport_flash"
_FLASH_KINDS = frozenset({"info", "success", "warning", "error"})
_MAX_FLASH_CHARS = 500

PAGE_HEADERS = {
    # Pages load nothing from elsewhere and run no inline script: an injected tag does nothing.
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}
"""Headers every HTML page sends; each surface adds its own caching rules."""

Flash = tuple[str, str]
"""A flash message: (kind, text), kind one of info, success, warning, error."""


def make_templates(
    *directories: str | Path,
    product: str = "Plugport",
    context_processors: Sequence[Callable[[Request], dict[str, Any]]] = (),
) -> Jinja2Templates:
    """Templates from ``directories`` first, then the core's (``base.html``), autoescaped.

    A page template starts with ``{% extends "base.html" %}`` and fills ``title``, ``nav``,
    ``content`` and ``scripts``; ``product`` is the name shown in the header.
    """
    loader = jinja2.FileSystemLoader([*(str(d) for d in directories), str(TEMPLATE_DIR)])
    env = jinja2.Environment(
        loader=loader,
        autoescape=True,  # every template, whatever its extension
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.tests["dangerous"] = is_dangerous  # {% if line is dangerous %}: consent lines in red
    env.globals["product_name"] = product
    env.globals["plugport_version"] = __version__
    return Jinja2Templates(env=env, context_processors=[_flash_context, *context_processors])


def mount_static(app: FastAPI, extra: Mapping[str, str | Path] | None = None) -> None:
    """Serve the core's files at ``/static`` and each ``extra`` directory at ``/static/<key>``.

    The extras are mounted first: a mount matches by prefix, so ``/static`` would otherwise
    swallow ``/static/<key>/...``.
    """
    for key, directory in (extra or {}).items():
        app.mount(f"/static/{key}", StaticFiles(directory=directory), name=f"static-{key}")
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")


def render(
    templates: Jinja2Templates,
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Render a page, and drop the flash cookie if the page showed its message."""
    response = templates.TemplateResponse(
        request, name, context or {}, status_code=status_code, headers=headers
    )
    clear_shown_flash(request, response)
    return response


def set_flash(response: Response, text: str, kind: str = "info") -> None:
    """Show ``text`` on the next page this browser renders (a short-lived cookie)."""
    if kind not in _FLASH_KINDS:
        raise ValueError(f"flash kind must be one of {sorted(_FLASH_KINDS)}, not {kind!r}")
    value = quote(json.dumps([kind, text[:_MAX_FLASH_CHARS]]))
    response.set_cookie(FLASH_COOKIE, value, max_age=60, path="/", httponly=True, samesite="strict")


def pop_flashes(request: Request) -> list[Flash]:
    """The flash message set by the previous response, if any (rendering removes it)."""
    raw = request.cookies.get(FLASH_COOKIE)
    if not raw:
        return []
    try:
        kind, text = json.loads(unquote(raw))
    except (ValueError, TypeError):
        return []
    if kind not in _FLASH_KINDS or not isinstance(text, str):
        return []
    request.state.plugport_flash_shown = True
    return [(kind, text[:_MAX_FLASH_CHARS])]


def clear_shown_flash(request: Request, response: Response) -> None:
    """Delete the flash cookie once a page has shown it (call on the rendered response)."""
    if getattr(request.state, "plugport_flash_shown", False):
        response.delete_cookie(FLASH_COOKIE, path="/", httponly=True, samesite="strict")


def csrf_token(secret: bytes, session: str) -> str:
    """The CSRF token for one session: an HMAC of the session value under a server secret.

    A page puts it in a hidden field; a cross-site form cannot read it, so it cannot send it.
    """
    return hmac.new(secret, b"csrf\0" + session.encode(), hashlib.sha256).hexdigest()


def csrf_valid(secret: bytes, session: str, token: str | None) -> bool:
    """Whether ``token`` is the CSRF token of ``session`` (compared in constant time)."""
    if not token or not session:
        return False
    return hmac.compare_digest(csrf_token(secret, session), token)


def _flash_context(request: Request) -> dict[str, Any]:
    return {"flashes": pop_flashes(request)}
