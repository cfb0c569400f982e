"""OAuth2 through the host service: the start page an operator opens (what is authorised, then
on to the provider with state and PKCE), the provider's callback (single-use state, the code
exchanged, tokens stored, back to the installation page), and the API that lists and revokes
connected accounts (never a token) or connects a client-credentials credential at once."""

# No ``from __future__ import annotations``: FastAPI must see the routes' annotations as objects.
import logging
import time
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

from fastapi import APIRouter, Header, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import Field, StrictStr

from plugport._web import set_flash
from plugport.errors import (
    AuthenticationError,
    ConflictError,
    NetworkFetchError,
    NotFoundError,
    PermissionDeniedError,
    PlugportError,
)
from plugport.host.secrets._oauth2_rules import DEFAULT_ACCOUNT, check_account
from plugport.host.service.api import ErrorRoute, _Strict, read_body
from plugport.host.service.pages import TOKEN_COOKIE, _Pages
from plugport.host.service.service import HostService
from plugport.host.service.store import Principal, authorize, check_workspace_name, parse_bearer
from plugport.manifest import check_plugin_name
from plugport.runtime.audit import AuditEvent

__all__ = ["oauth2_api_router", "oauth2_pages_router"]

CALLBACK = "/oauth2/callback"


def redirect_uri(service: HostService, request: Request) -> str:
    """``{public_url}/oauth2/callback``; without ``public_url``, the address asked."""
    base = service.settings.public_url or str(request.base_url).rstrip("/")
    return base + CALLBACK


def start_url(service: HostService, request: Request, ws: str, plugin: str, cred: str) -> str:
    base = service.settings.public_url or str(request.base_url).rstrip("/")
    return f"{base}/oauth2/{ws}/{plugin}/{cred}/start"


def _installation_page(ws: str, plugin: str) -> str:
    return f"/workspaces/{ws}/installations/{quote(plugin, safe='')}/settings"


def oauth2_pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    router = APIRouter(include_in_schema=False)

    def operator(request: Request, ws: str) -> Principal:
        """A token for ``ws`` (or an admin's): the Authorization header, else the sign-in."""
        header = request.headers.get("authorization")
        raw = parse_bearer(header) if header else request.cookies.get(TOKEN_COOKIE)
        if not raw:
            raise AuthenticationError(f"sign in to workspace {ws!r} first: /workspaces")
        principal = service.store.authenticate(raw)
        authorize(principal, ws)
        return principal

    def error(request: Request, status: int, title: str, message: str) -> Response:
        context = {"title": title, "message": message, "status": status}
        return pages.render(request, "error.html", context, status_code=status)

    @router.get("/oauth2/{ws}/{plugin}/{credential}/start")
    async def start(
        request: Request,
        ws: str,
        plugin: str,
        credential: str,
        account: Annotated[str, Query(max_length=64)] = DEFAULT_ACCOUNT,
    ) -> Response:
        try:
            check_workspace_name(ws)
            check_plugin_name(plugin)
            principal = operator(request, ws)
            workspace = service.workspace(ws)
            await workspace.started()
            url, _, provider = workspace.oauth2.begin(
                plugin, credential, account, principal.actor, redirect_uri(service, request)
            )
        except AuthenticationError as exc:
            return error(request, 401, "Sign in first", str(exc))
        except (PlugportError, ValueError) as exc:
            return error(request, _status(exc), "Cannot connect", str(exc))
        context = {
            "ws": ws,
            "plugin": plugin,
            "credential": credential,
            "account": account,
            "scopes": provider.scopes,
            "provider_host": urlsplit(url).netloc,
            "redirect_uri": redirect_uri(service, request),
            "authorize": url,
        }
        return pages.render(request, "oauth2.html", context)

    @router.get(CALLBACK)
    async def callback(
        request: Request,
        state: Annotated[str, Query(max_length=200)] = "",
        code: Annotated[str | None, Query(max_length=2000)] = None,
        error_code: Annotated[str | None, Query(alias="error", max_length=200)] = None,
        error_description: Annotated[str | None, Query(max_length=500)] = None,
    ) -> Response:
        pending, problem = service.oauth2_states.claim(state, _now())
        if problem is not None or pending is None:
            reason = problem.message if problem is not None else "unknown state"
            if problem is not None and problem.pending is not None:
                found = problem.pending
                _audit(service, found.workspace, found.plugin, f"OAuth2 callback refused: {reason}")
            else:
                _log_unknown()
            return error(request, 400, "Authorization refused", reason)
        workspace = service.workspace(pending.workspace)
        host = await workspace.started()
        if error_code is not None or code is None:
            said = error_code or "no code"
            detail = f": {error_description}" if error_description else ""
            message = f"The provider did not authorise the account ({said}{detail})."
            reason = f"OAuth2 authorization of {pending.credential!r} ended by the provider: {said}"
            host.supervisor.audit.record(AuditEvent(pending.plugin, "refuse", reason, "oauth2"))
            return error(request, 400, "Authorization refused", message)
        try:
            shown = await workspace.oauth2.complete(pending, code, redirect_uri(service, request))
        except PlugportError as exc:
            return error(request, _status(exc), "Could not connect the account", str(exc))
        response = RedirectResponse(_installation_page(pending.workspace, pending.plugin), 303)
        set_flash(
            response,
            f"Connected account {shown['account']!r} to credential {pending.credential!r}.",
            "success",
        )
        return response

    return router


class OAuth2Connect(_Strict):
    account: StrictStr = Field(default=DEFAULT_ACCOUNT, max_length=64)


def oauth2_api_router(service: HostService) -> APIRouter:
    router = APIRouter(
        prefix="/api/v1/workspaces/{ws}/installations/{name}/oauth2",
        tags=["host service: oauth2"],
        route_class=ErrorRoute,
    )

    async def member(ws: str, authorization: str | None) -> Any:
        principal = service.store.authenticate(parse_bearer(authorization))
        check_workspace_name(ws)
        authorize(principal, ws)
        workspace = service.workspace(ws)
        await workspace.started()
        return workspace, principal

    @router.get("/{credential}")
    async def accounts(
        request: Request,
        ws: str,
        name: str,
        credential: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """The credential's provider, where to start the code flow, and every connected
        account with its scopes and expiry (never a token)."""
        workspace, _ = await member(ws, authorization)
        provider = workspace.oauth2.providers(name, credential)
        return {
            "credential": credential,
            "grant": provider.grant,
            "scopes": provider.scopes,
            "redirect_uri": redirect_uri(service, request),
            "start_url": start_url(service, request, ws, name, credential),
            "accounts": workspace.oauth2.accounts(name, credential),
        }

    @router.post("/{credential}", status_code=201)
    async def connect(
        request: Request,
        ws: str,
        name: str,
        credential: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Connect a client-credentials credential now (the code flow needs a browser: open
        ``start_url``)."""
        workspace, principal = await member(ws, authorization)
        body = await read_body(request, OAuth2Connect, service.settings.max_body_bytes)
        check_account(body.account)
        try:
            shown: dict[str, Any] = await workspace.oauth2.connect_client(
                name, credential, body.account, principal.actor
            )
        except AuthenticationError as exc:
            raise ConflictError("oauth2 account", f"{name}/{credential}", str(exc)) from None
        return shown

    @router.delete("/{credential}/{account}")
    async def revoke(
        ws: str,
        name: str,
        credential: str,
        account: str,
        authorization: Annotated[str | None, Header()] = None,
    ) -> dict[str, Any]:
        """Revoke the account's tokens at the provider (when it has a revocation endpoint)
        and forget them."""
        workspace, principal = await member(ws, authorization)
        answer: dict[str, Any] = await workspace.oauth2.revoke(
            name, credential, account, principal.actor
        )
        return answer

    return router


def _status(exc: Exception) -> int:
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, PermissionDeniedError):
        return 403
    if isinstance(exc, NetworkFetchError | AuthenticationError):
        return 502
    return 400


def _now() -> float:
    return time.time()


def _audit(service: HostService, ws: str, plugin: str, reason: str) -> None:
    try:
        host = service.workspace(ws).host
    except PlugportError:
        return
    host.supervisor.audit.record(AuditEvent(plugin, "refuse", reason, "oauth2"))


def _log_unknown() -> None:
    logging.getLogger("plugport.audit").warning(
        "OAuth2 callback refused: its state is not one this service started"
    )
