"""The installed-plugins pages: sign in with a workspace token (kept in an HttpOnly,
SameSite=Strict cookie), the workspace's plugins with their state, actions and metrics, its
audit trail, a marketplace search, and installing with consent and a progress view. Every form
carries a CSRF token; everything works without JavaScript, which only makes it quicker."""

# No ``from __future__ import annotations``: the routes' dependencies are bound to one service
# inside pages_router, and FastAPI must see those local aliases as objects, not names.
import secrets
from collections.abc import Callable, Coroutine, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Form, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, RedirectResponse
from fastapi.routing import APIRoute

from plugport import _web
from plugport.errors import AuthenticationError, PlugportError
from plugport.host.secrets._oauth2_rules import DEFAULT_ACCOUNT, check_account
from plugport.host.service._update_rules import POLICIES, POLICY_LABELS, POLICY_WORDS
from plugport.host.service.operations import describe, read_capped
from plugport.host.service.plugin_settings import form_fields
from plugport.host.service.service import HostService
from plugport.host.service.store import Principal, check_workspace_name
from plugport.host.settings import parse_value
from plugport.host.ui._extension_rules import field_error, field_types, menu_entries, nav_pages
from plugport.host.ui.extensions import contributions
from plugport.host.ui.render import STATIC_PATH as UI_STATIC_PATH
from plugport.host.ui.render import FieldTypeView
from plugport.host.ui.views import installed_views

__all__ = ["PAGE_STATIC_DIR", "TOKEN_COOKIE", "pages_router"]

TOKEN_COOKIE = "plugport_workspace_token"  # noqa: S105 a cookie name, not a secret
ANON_COOKIE = "plugport_workspace_anon"
"""A random value for a browser that is not signed in, so the sign-in form has a CSRF token."""
PARTIAL_HEADER = "x-plugport-partial"
"""Sent by the pages' script: answer a form post with JSON instead of a redirect."""
TEMPLATE_DIR = Path(__file__).parent / "templates"
PAGE_STATIC_DIR = Path(__file__).parent / "static"
STATIC_PATH = "/host-service/static"
ACTIONS = ("enable", "disable", "update", "uninstall")
DELIVERIES_SHOWN = 20
"""The received webhooks an installation's page lists, newest first."""

templates = _web.make_templates(TEMPLATE_DIR, product="Plugport host")
templates.env.filters["when"] = lambda at: (
    datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if at else ""
)
templates.env.filters["mib"] = lambda size: f"{(size or 0) / 2**20:.1f} MiB"
templates.env.filters["urlpart"] = lambda text: quote(str(text), safe="")

_SECURITY_HEADERS = {
    **_web.PAGE_HEADERS,
    "Cache-Control": "no-store",
}
_TITLES = {
    400: "That request is not valid",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    409: "That cannot be done now",
    413: "Too large",
    422: "That request is not valid",
}


class _CsrfError(PlugportError):
    pass


class _SignInNeeded(PlugportError):
    def __init__(self, ws: str, message: str) -> None:
        self.ws = ws
        super().__init__(message)


class _Pages:
    """What every page route shares: the service, who is signed in, CSRF, rendering."""

    def __init__(self, service: HostService) -> None:
        self.service = service
        self.secret = service.web_secret
        self.secure = service.settings.secure_cookies

    def signed_in(self, request: Request) -> Principal | None:
        raw = request.cookies.get(TOKEN_COOKIE)
        if not raw:
            return None
        try:
            principal = self.service.store.authenticate(raw)
        except AuthenticationError:
            request.state.drop_token = True  # revoked or expired: forget it
            return None
        return principal if principal.kind == "workspace" else None

    def session(self, request: Request) -> str:
        """What a CSRF token is bound to: the signed-in token, else this browser's random id."""
        raw = request.cookies.get(TOKEN_COOKIE)
        if raw and getattr(request.state, "principal", None) is not None:
            return raw
        anon = request.cookies.get(ANON_COOKIE) or getattr(request.state, "new_anon", None)
        if not anon:
            anon = request.state.new_anon = secrets.token_urlsafe(24)
        return str(anon)

    def csrf(self, request: Request) -> str:
        return _web.csrf_token(self.secret, self.session(request))

    def check_csrf(self, request: Request, token: str | None) -> None:
        if getattr(request.state, "new_anon", None) or not _web.csrf_valid(
            self.secret, self.session(request), token
        ):
            raise _CsrfError(
                "This form has expired or did not come from this site; nothing was changed. "
                "Reload the page and try again."
            )

    def member(self, request: Request, ws: str) -> Principal:
        """The signed-in token, which must be for ``ws``."""
        check_workspace_name(ws)
        principal = self.signed_in(request)
        request.state.principal = principal
        if principal is None:
            raise _SignInNeeded(ws, "Sign in with a token for this workspace.")
        if principal.workspace != ws:
            raise _SignInNeeded(
                ws, f"You are signed in to workspace {principal.workspace!r}, not {ws!r}."
            )
        self.service.workspace(ws)
        return principal

    def finish(self, request: Request, response: Response) -> Response:
        for name, value in _SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        anon = getattr(request.state, "new_anon", None)
        if anon:
            response.set_cookie(
                ANON_COOKIE, anon, path="/", httponly=True, samesite="strict", secure=self.secure
            )
        if getattr(request.state, "drop_token", False):
            response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response

    def extensions(self, request: Request) -> dict[str, Any]:
        """What plugins add to every page of the signed-in workspace: the pages the navigation
        links to and the items of the named menus. Read from the running workspace's memory
        (no plugin call); a workspace not started yet has none."""
        principal = getattr(request.state, "principal", None)
        workspace = (
            self.service.opened_workspace(principal.workspace)
            if principal is not None and principal.workspace
            else None
        )
        if workspace is None:
            return {"plugin_pages": [], "plugin_menus": {}}
        found = contributions(workspace.host.supervisor)
        return {
            "plugin_pages": nav_pages(workspace.name, found),
            "plugin_menus": menu_entries(workspace.name, found),
        }

    def render(
        self, request: Request, name: str, context: dict[str, Any], *, status_code: int = 200
    ) -> Response:
        base = {
            "principal": getattr(request.state, "principal", None),
            "csrf": self.csrf(request),
            "static": STATIC_PATH,
            "ui_static": UI_STATIC_PATH,
        } | self.extensions(request)
        response = _web.render(templates, request, name, base | context, status_code=status_code)
        return self.finish(request, response)

    def redirect(
        self, request: Request, url: str, flash: str | None = None, kind: str = "success"
    ) -> Response:
        response = RedirectResponse(url, status_code=303)
        if flash:
            _web.set_flash(response, flash, kind)
        return self.finish(request, response)

    def json(self, request: Request, payload: dict[str, Any], status: int = 200) -> Response:
        return self.finish(request, JSONResponse(payload, status))

    def error_page(self, request: Request, status: int, message: str) -> Response:
        title = _TITLES.get(status, "Something went wrong")
        context = {"status": status, "title": title, "message": message}
        return self.render(request, "error.html", context, status_code=status)

    def failure(self, request: Request, exc: Exception) -> Response:
        """An error inside a page: an HTML page (JSON for the script) with the status the API
        would answer; a missing or wrong sign-in goes back to the sign-in form."""
        partial = bool(request.headers.get(PARTIAL_HEADER))
        if isinstance(exc, RequestValidationError):
            status, message = (
                422,
                "; ".join(
                    f"{'.'.join(map(str, e.get('loc', ())))}: {e.get('msg', '')}"
                    for e in exc.errors()
                ),
            )
        elif isinstance(exc, _SignInNeeded):
            if not partial:
                return self.redirect(request, "/workspaces", str(exc), "warning")
            status, message = 401, str(exc)
        elif isinstance(exc, _CsrfError):
            status, message = 403, str(exc)
        elif isinstance(exc, PlugportError):
            status, body = describe(exc)
            message = body["message"]
        else:
            raise exc
        if partial:
            return self.json(request, {"ok": False, "kind": "error", "message": message}, status)
        return self.error_page(request, status, message)


class _PageRoute(APIRoute):
    pages: _Pages

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                if request.method == "POST":  # forms are small: never parse a huge one
                    request = await _capped(request, self.pages.service.settings.max_body_bytes)
                return await handler(request)
            except (PlugportError, RequestValidationError) as exc:
                return self.pages.failure(request, exc)

        return route


async def _capped(request: Request, limit: int) -> Request:
    """The same request with its body read (no further than ``limit`` bytes) and replayed."""
    body = await read_capped(request, limit)

    async def replay() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return Request(request.scope, replay)


FormText = Annotated[str | None, Form(max_length=4096)]


def pages_router(service: HostService) -> APIRouter:
    pages = _Pages(service)
    route_class = type("PageRoute", (_PageRoute,), {"pages": pages})
    router = APIRouter(route_class=route_class, include_in_schema=False)
    _signin_routes(router, pages)
    _settings_routes(router, pages)  # before .../{name}/{action}, which would take "settings"
    _workspace_routes(router, pages)
    _installation_routes(router, pages)
    _install_routes(router, pages)
    return router


def _after_signin(ws: str, install: str | None) -> str:
    if install:
        return f"/workspaces/{ws}/install?plugin={quote(install, safe='')}"
    return f"/workspaces/{ws}"


def _signin_routes(router: APIRouter, pages: _Pages) -> None:
    @router.get("/workspaces")
    def signin_form(request: Request, install: str | None = None) -> Response:
        principal = request.state.principal = pages.signed_in(request)
        if principal is not None and principal.workspace is not None:
            return pages.redirect(request, _after_signin(principal.workspace, install))
        return pages.render(request, "signin.html", {"install": install, "error": None})

    @router.post("/workspaces/signin")
    def signin(
        request: Request, token: FormText = None, csrf: FormText = None, install: FormText = None
    ) -> Response:
        pages.check_csrf(request, csrf)
        given = (token or "").strip()
        try:
            principal = pages.service.store.authenticate(given)
            error = (
                None
                if principal.workspace is not None
                else "That is an admin token; sign in with a workspace token."
            )
        except AuthenticationError as exc:
            error = f"That token does not work: {exc}."
        if error is not None:
            context = {"install": install, "error": error}
            return pages.render(request, "signin.html", context, status_code=401)
        ws = str(principal.workspace)
        response = pages.redirect(
            request, _after_signin(ws, install), f"Signed in to workspace {ws}."
        )
        response.set_cookie(
            TOKEN_COOKIE, given, path="/", httponly=True, samesite="strict", secure=pages.secure
        )
        return response

    @router.post("/workspaces/signout")
    def signout(request: Request, csrf: FormText = None) -> Response:
        request.state.principal = pages.signed_in(request)
        pages.check_csrf(request, csrf)
        response = pages.redirect(request, "/workspaces", "Signed out.", "info")
        response.delete_cookie(TOKEN_COOKIE, path="/", httponly=True, samesite="strict")
        return response


def _workspace_routes(router: APIRouter, pages: _Pages) -> None:
    service = pages.service

    @router.get("/workspaces/{ws}")
    async def workspace(request: Request, ws: str, q: str | None = None) -> Response:
        pages.member(request, ws)
        rows = await service.installations(ws)
        found, search_error = None, None
        if q is not None and q.strip():
            try:
                found = (await service.search(ws, q.strip()[:200]))["items"]
            except PlugportError as exc:
                search_error = str(exc)
        context = {
            "ws": ws,
            "rows": rows,
            "audit": await service.audit(ws, limit=20),
            "dead": await service.deliveries(ws, state="dead", limit=20),
            "q": q or "",
            "found": found,
            "search_error": search_error,
            "installed": {r["name"] for r in rows},
        }
        return pages.render(request, "workspace.html", context)

    @router.post("/workspaces/{ws}/installations/{name}/{action}")
    async def act(
        request: Request, ws: str, name: str, action: str, csrf: FormText = None
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        partial = bool(request.headers.get(PARTIAL_HEADER))
        if action not in ACTIONS:
            return pages.error_page(request, 404, f"No action {action!r}.")
        try:
            redirect, row, message = await _act(service, ws, who, name, action)
        except PlugportError as exc:
            status, body = describe(exc)
            message = f"Could not {action} {name}: {body['message']}"
            if partial:
                payload = {"ok": False, "kind": "error", "message": message}
                return pages.json(request, payload, status)
            return pages.redirect(request, f"/workspaces/{ws}", message, "error")
        if partial:
            html = None
            if row is not None:
                html = templates.get_template("_row.html").render(
                    row=row, ws=ws, csrf=pages.csrf(request), **pages.extensions(request)
                )
            payload = {"ok": True, "kind": "success", "message": message, "row": html}
            return pages.json(request, payload | {"redirect": redirect})
        return pages.redirect(request, redirect or f"/workspaces/{ws}", message)

    @router.post("/workspaces/{ws}/deliveries/{delivery_id}/redeliver")
    async def redeliver(
        request: Request, ws: str, delivery_id: str, csrf: FormText = None
    ) -> Response:
        """A dead letter's "Redeliver" button: queued again, audited as the signed-in token."""
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        try:
            row = await service.redeliver(ws, who, delivery_id)
        except PlugportError as exc:
            _, body = describe(exc)
            message = f"Could not redeliver {delivery_id}: {body['message']}"
            return pages.redirect(request, f"/workspaces/{ws}", message, "error")
        message = f"Delivery {row['id']} to {row['target']} is queued again."
        return pages.redirect(request, f"/workspaces/{ws}", message)


def _installation_routes(router: APIRouter, pages: _Pages) -> None:
    service = pages.service

    @router.get("/workspaces/{ws}/installations/{name}")
    async def installation(request: Request, ws: str, name: str) -> Response:
        """One plugin: whether it has an update and its auto-update policy (a form), its custom
        views (when it is enabled and was granted them), its webhook endpoints (URL, verifier,
        secret set or not) and the last deliveries received for it, with a retry for the dead
        ones."""
        pages.member(request, ws)
        row = await service.installation(ws, name)
        context = {
            "ws": ws,
            "row": row,
            "deliveries": await service.inbox(ws, plugin=name, limit=DELIVERIES_SHOWN),
            "views": installed_views(service.workspace(ws).host, name),
            "auto_update": service.auto_updates.policy_of(ws, name),
            "policies": POLICIES,
            "policy_words": POLICY_WORDS,
            "policy_labels": POLICY_LABELS,
        }
        return pages.render(request, "installation.html", context)

    @router.post("/workspaces/{ws}/installations/{name}/inbox/{delivery}/retry")
    async def retry(
        request: Request, ws: str, name: str, delivery: str, csrf: FormText = None
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        back = f"/workspaces/{ws}/installations/{quote(name, safe='')}"
        found = service.workspace(ws).inbox.get(delivery)
        if found is None or found.plugin != name:
            return pages.redirect(request, back, f"No delivery {delivery} of {name}.", "error")
        try:
            await service.retry_delivery(ws, who, delivery)
        except PlugportError as exc:
            _, body = describe(exc)
            return pages.redirect(request, back, f"Could not retry: {body['message']}", "error")
        return pages.redirect(request, back, f"Delivery {delivery} will be handed to {name} again.")


async def _act(
    service: HostService, ws: str, who: Principal, name: str, action: str
) -> tuple[str | None, dict[str, Any] | None, str]:
    """``(where to go next, the row now, what happened)``."""
    if action == "update":
        operation = service.start_update(ws, who, name)
        return f"/workspaces/{ws}/operations/{operation.id}", None, f"Updating {name}."
    if action == "uninstall":
        await service.uninstall(ws, who, name, purge=False)
        return None, None, f"Uninstalled {name}."
    if action == "enable":
        return None, await service.enable(ws, who, name), f"Enabled {name}."
    return None, await service.disable(ws, who, name), f"Disabled {name}."


def _install_routes(router: APIRouter, pages: _Pages) -> None:
    service = pages.service

    @router.get("/workspaces/{ws}/install")
    async def install_form(request: Request, ws: str, plugin: str = "") -> Response:
        pages.member(request, ws)
        preview = await service.preview(ws, plugin)
        context = {"ws": ws, "preview": preview, "error": None}
        return pages.render(request, "install.html", context)

    @router.post("/workspaces/{ws}/install")
    async def install(
        request: Request,
        ws: str,
        plugin: FormText = None,
        csrf: FormText = None,
        consent: FormText = None,
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        form = await request.form()
        granted = [str(v) for v in form.getlist("permission")][:100]
        preview = await service.preview(ws, plugin or "")
        if preview["added"] and consent != "yes":
            error = "Tick the box to allow these permissions, or go back."
            context = {"ws": ws, "preview": preview, "error": error}
            return pages.render(request, "install.html", context, status_code=400)
        if preview["installed_version"] is not None:  # installing again means the newest
            operation = service.start_update(ws, who, preview["name"], granted)
        else:
            operation = service.start_install(ws, who, preview["name"], None, granted)
        return pages.redirect(request, f"/workspaces/{ws}/operations/{operation.id}")

    @router.get("/workspaces/{ws}/operations/{operation_id}")
    def operation(request: Request, ws: str, operation_id: str) -> Response:
        pages.member(request, ws)
        found = service.operation(ws, operation_id).public()
        return pages.render(request, "operation.html", {"ws": ws, "op": found})

    @router.get("/workspaces/{ws}/operations/{operation_id}/status")
    def operation_status(request: Request, ws: str, operation_id: str) -> Response:
        """For the progress view's script (the cookie, not a bearer token, signs it in)."""
        pages.member(request, ws)
        return pages.json(request, service.operation(ws, operation_id).public())


async def _field_types_of(service: HostService, ws: str) -> dict[str, FieldTypeView]:
    host = await service.workspace(ws).started()
    return field_types(contributions(host.supervisor))


async def _settings_page(
    pages: _Pages,
    request: Request,
    ws: str,
    name: str,
    *,
    error: str | None = None,
    status: int = 200,
    field_errors: Mapping[str, str] | None = None,
    typed: Any = None,
) -> Response:
    """The settings form; after a refused save, ``field_errors`` beside their fields and what
    was typed (``typed``: the posted form) in the fields that are not secrets."""
    service = pages.service
    settings = await service.plugin_settings(ws, name)
    fields = form_fields(settings["schema"], settings, await _field_types_of(service, ws))
    for field in fields:
        field["error"] = (field_errors or {}).get(field["key"])
        text = typed.get(f"setting.{field['key']}") if typed is not None else None
        if isinstance(text, str) and not field["secret"] and field["kind"] != "boolean":
            field["text"] = text
    context = {
        "ws": ws,
        "name": name,
        "settings": settings,
        "fields": fields,
        "secrets": (await service.plugin_secrets(ws, name))["secrets"],
        "oauth2": await service.plugin_oauth2(ws, name),
        "error": error,
    }
    return pages.render(request, "settings.html", context, status_code=status)


def _settings_routes(router: APIRouter, pages: _Pages) -> None:
    service = pages.service

    async def show(
        request: Request, ws: str, name: str, error: str | None = None, status: int = 200
    ) -> Response:
        return await _settings_page(pages, request, ws, name, error=error, status=status)

    @router.get("/workspaces/{ws}/installations/{name}/settings")
    async def settings_form(request: Request, ws: str, name: str) -> Response:
        pages.member(request, ws)
        return await show(request, ws, name)

    @router.post("/workspaces/{ws}/installations/{name}/settings")
    async def save_settings(
        request: Request, ws: str, name: str, csrf: FormText = None
    ) -> Response:
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        settings = await service.plugin_settings(ws, name)
        form = await request.form()
        fields = form_fields(settings["schema"], settings, await _field_types_of(service, ws))
        changes, unset = _form_changes(fields, settings, form)
        errors = await _field_errors(service, ws, fields, changes)
        if errors:  # nothing is saved: the field types' plugins refused a value
            said = "Not saved: " + "; ".join(f"{key}: {why}" for key, why in errors.items())
            return await _settings_page(
                pages, request, ws, name, error=said, status=400, field_errors=errors, typed=form
            )
        try:
            await service.change_settings(ws, who, name, changes, unset)
        except PlugportError as exc:
            status, body = describe(exc)
            return await show(request, ws, name, body["message"], status)
        return pages.redirect(request, f"/workspaces/{ws}", f"Saved the settings of {name}.")

    @router.post("/workspaces/{ws}/installations/{name}/oauth2/{credential}/revoke")
    async def revoke_account(
        request: Request,
        ws: str,
        name: str,
        credential: str,
        *,
        csrf: FormText = None,
        account: FormText = None,
    ) -> Response:
        """Revoke one connected account's tokens at the provider (when it has a revocation
        endpoint) and forget them, as ``DELETE .../oauth2/{credential}/{account}`` does."""
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        workspace = service.workspace(ws)
        await workspace.started()
        label = check_account(account or "")
        done = await workspace.oauth2.revoke(name, credential, label, who.actor)
        where = {
            True: "revoked at the provider",
            False: "the provider did not confirm the revocation",
            None: "the provider has no revocation endpoint",
        }[done["revoked_at_provider"]]
        return pages.redirect(
            request,
            f"/workspaces/{ws}/installations/{quote(name, safe='')}/settings",
            f"Disconnected account {label!r} of credential {credential!r} ({where}).",
            "success" if done["revoked_at_provider"] is not False else "warning",
        )

    @router.post("/workspaces/{ws}/installations/{name}/oauth2/{credential}/connect")
    async def connect_client(
        request: Request,
        ws: str,
        name: str,
        credential: str,
        *,
        csrf: FormText = None,
        account: FormText = None,
    ) -> Response:
        """Connect a client-credentials credential now (no browser trip to the provider)."""
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        workspace = service.workspace(ws)
        await workspace.started()
        label = check_account(account or DEFAULT_ACCOUNT)
        await workspace.oauth2.connect_client(name, credential, label, who.actor)
        return pages.redirect(
            request,
            f"/workspaces/{ws}/installations/{quote(name, safe='')}/settings",
            f"Connected account {label!r} to credential {credential!r}.",
        )

    @router.post("/workspaces/{ws}/installations/{name}/secrets")
    async def save_secrets(request: Request, ws: str, name: str, csrf: FormText = None) -> Response:
        """Write-only fields, one per declared credential: a value given is set, an empty one
        keeps what is there."""
        who = pages.member(request, ws)
        pages.check_csrf(request, csrf)
        form = await request.form()
        changed = []
        for row in (await service.plugin_secrets(ws, name))["secrets"]:
            text = form.get(f"secret.{row['name']}")
            if not isinstance(text, str) or text == "":
                continue
            try:
                await service.set_secret(ws, who, name, row["name"], text.encode())
            except PlugportError as exc:
                status, body = describe(exc)
                return await show(request, ws, name, body["message"], status)
            changed.append(row["name"])
        said = f"Set {', '.join(changed)} of {name}." if changed else "No secret was changed."
        return pages.redirect(request, f"/workspaces/{ws}", said)


async def _field_errors(
    service: HostService, ws: str, fields: list[dict[str, Any]], changes: Mapping[str, Any]
) -> dict[str, str]:
    """Each changed value whose field uses a plugin's field type, as that type's ``@field``
    handler judged it: key -> its error (none: every value is valid)."""
    await service.workspace(ws).started()
    surfaces = service.workspace(ws).ui  # under the service's UI deadline
    errors = {}
    for field in fields:
        widget, key = field["widget"], field["key"]
        if not widget or not widget["available"] or key not in changes:
            continue
        answer = await surfaces.ask(
            widget["plugin"], widget["id"], context={"value": changes[key]}, workspace=ws
        )
        failure = (answer.failure.kind, answer.failure.message) if answer.failure else None
        if (said := field_error(widget["plugin"], answer.value, failure)) is not None:
            errors[key] = said
    return errors


def _form_changes(
    fields: list[dict[str, Any]], settings: dict[str, Any], form: Any
) -> tuple[dict[str, Any], list[str]]:
    """What the settings form asks for: keys whose value changed, and keys emptied (a secret
    left empty is kept; an unchecked box is ``false``)."""
    present = set(form.getlist("present"))
    current = settings["values"]
    changes: dict[str, Any] = {}
    unset: list[str] = []
    for field in fields:
        key = field["key"]
        if field["kind"] == "boolean":
            if key in present and (checked := f"setting.{key}" in form) != current.get(key):
                changes[key] = checked
            continue
        text = form.get(f"setting.{key}")
        if not isinstance(text, str):
            continue
        if text == "":
            if not field["secret"] and key in settings["set"]:
                unset.append(key)
            continue
        value: Any = text if field["kind"] == "string" else parse_value(text)
        if field["secret"] or value != current.get(key):
            changes[key] = value
    return changes, unset
