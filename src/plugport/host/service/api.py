"""The host service's JSON API under ``/api/v1``: admin routes (workspaces, tokens) and one
router per workspace resource (installations, operations, audit, metrics). Every error leaves
in the registry's shape, ``{"error": {"code", "message", "details"}}``, whatever app the
routers are mounted in: the route class renders them itself."""

# No ``from __future__ import annotations``: the routes' dependencies are bound to one service
# inside api_router, and FastAPI must see those local aliases as objects, not names.
import json
from collections.abc import Callable, Coroutine
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, ConfigDict, Field, StrictStr, ValidationError

from plugport._api_errors import validation_error_response
from plugport.errors import PlugportError
from plugport.host.inbound.inbox import State
from plugport.host.service.operations import BadJsonError, describe, read_capped
from plugport.host.service.service import HostService
from plugport.host.service.store import (
    FieldError,
    Principal,
    authorize,
    check_workspace_name,
    parse_bearer,
)
from plugport.runtime.metrics import RuntimeMetrics

__all__ = ["ErrorRoute", "api_router", "error_response"]

Model = TypeVar("Model", bound=BaseModel)


def error_response(error: PlugportError) -> JSONResponse:
    status, body = describe(error)
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse({"error": body}, status, headers=headers)


class ErrorRoute(APIRoute):
    """Turns our errors and FastAPI's validation errors into the API's JSON shape inside the
    route, so mounting these routers never depends on (or changes) the app's handlers."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except PlugportError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                return validation_error_response(exc)

        return route


async def read_body(request: Request, model: type[Model], limit: int) -> Model:
    """The body as ``model``, read no further than ``limit`` bytes: 413 beyond it, 400 when it
    is not JSON, 422 when it does not fit the model."""
    body = await read_capped(request, limit)
    try:
        data = json.loads(body or b"{}")
    except ValueError as exc:
        raise BadJsonError(f"the body is not JSON: {exc}") from None
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise RequestValidationError(exc.errors()) from None


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class WorkspaceCreate(_Strict):
    name: StrictStr


class TokenCreate(_Strict):
    workspace: StrictStr
    expires_days: float | None = Field(default=None, gt=0, le=3650)
    description: StrictStr = Field(default="", max_length=200)


class InstallCreate(_Strict):
    plugin: StrictStr = Field(max_length=200)
    version: StrictStr | None = Field(default=None, max_length=200)
    consent: list[StrictStr] = Field(default_factory=list, max_length=100)


class UpdateCreate(_Strict):
    consent: list[StrictStr] = Field(default_factory=list, max_length=100)


class SettingUpdate(_Strict):
    value: Any = Field(
        description="The setting's new value (any JSON), checked against the plugin's config schema"
    )


class SecretUpdate(_Strict):
    value: Any = Field(
        description="The secret's value, a string of 1 to 65536 bytes; stored encrypted, never "
        "shown back (only a fingerprint)"
    )


class ExecuteRequest(_Strict):
    hook: StrictStr | None = Field(default=None, max_length=200)
    command: StrictStr | None = Field(default=None, max_length=200)
    args: list[Any] = Field(default_factory=list)
    input: dict[str, Any] = Field(default_factory=dict)


def _documented(model: type[BaseModel]) -> dict[str, Any]:
    """The body's schema for OpenAPI (the routes read bodies themselves, to cap their size)."""
    schema = {"schema": model.model_json_schema()}
    return {"requestBody": {"required": True, "content": {"application/json": schema}}}


def api_router(service: HostService) -> APIRouter:  # noqa: PLR0915 every route, one place
    """Every API route, bound to ``service``."""
    settings = service.settings

    def caller(authorization: Annotated[str | None, Header()] = None) -> Principal:
        return service.store.authenticate(parse_bearer(authorization))

    Caller = Annotated[Principal, Depends(caller)]

    def admin(principal: Caller) -> Principal:
        authorize(principal, None)
        return principal

    Admin = Annotated[Principal, Depends(admin)]

    def member(ws: str, principal: Caller) -> Principal:
        """A token for ``ws`` (or an admin's), for a workspace that exists."""
        check_workspace_name(ws)
        authorize(principal, ws)
        service.workspace(ws)
        return principal

    Member = Annotated[Principal, Depends(member)]

    async def body(request: Request, model: type[Model], limit: int | None = None) -> Model:
        return await read_body(request, model, limit or settings.max_body_bytes)

    router = APIRouter(prefix="/api/v1", route_class=ErrorRoute)
    admin_routes = APIRouter(tags=["host service: admin"], route_class=ErrorRoute)
    ws_routes = APIRouter(prefix="/workspaces/{ws}", tags=["host service"], route_class=ErrorRoute)

    # --- admin -------------------------------------------------------------------------------

    @admin_routes.post("/workspaces", status_code=201, openapi_extra=_documented(WorkspaceCreate))
    async def create_workspace(request: Request, who: Admin) -> dict[str, Any]:
        given = await body(request, WorkspaceCreate)
        created, _ = service.create_workspace(given.name, actor=who.actor)
        return created

    @admin_routes.delete("/workspaces/{ws}")
    async def delete_workspace(ws: str, who: Admin) -> dict[str, Any]:
        """Stops its plugins, revokes its tokens and removes its home (plugin data too)."""
        check_workspace_name(ws)
        return await service.delete_workspace(ws)

    @admin_routes.get("/workspaces")
    def list_workspaces(who: Admin) -> dict[str, Any]:
        return {"items": [w.public() for w in service.store.workspaces()]}

    @admin_routes.post("/tokens", status_code=201, openapi_extra=_documented(TokenCreate))
    async def create_token(request: Request, who: Admin) -> dict[str, Any]:
        given = await body(request, TokenCreate)
        check_workspace_name(given.workspace)
        token, info = service.store.create_token(
            "workspace",
            given.workspace,
            expires_days=given.expires_days,
            description=given.description or f"created by {who.actor}",
        )
        return info.public() | {"token": token}

    @admin_routes.get("/tokens")
    def list_tokens(who: Admin, workspace: str | None = None) -> dict[str, Any]:
        return {"items": [t.public() for t in service.store.tokens(workspace)]}

    @admin_routes.post("/tokens/{prefix}/revoke")
    def revoke_token(prefix: str, who: Admin) -> dict[str, Any]:
        return service.store.revoke(prefix).public()

    # --- a workspace -------------------------------------------------------------------------

    @ws_routes.get("/installations")
    async def list_installations(ws: str, who: Member) -> dict[str, Any]:
        return {"items": await service.installations(ws)}

    @ws_routes.post("/installations", status_code=202, openapi_extra=_documented(InstallCreate))
    async def install(ws: str, request: Request, who: Member) -> dict[str, Any]:
        given = await body(request, InstallCreate)
        return service.start_install(ws, who, given.plugin, given.version, given.consent).public()

    @ws_routes.get("/installations/{name}")
    async def get_installation(ws: str, name: str, who: Member) -> dict[str, Any]:
        return await service.installation(ws, name)

    @ws_routes.get("/installations/{name}/problems")
    async def get_problems(ws: str, name: str, who: Member) -> dict[str, Any]:
        """What the runtime found wrong with the plugin now (error rate, latency regression,
        memory growth, restarts, timeouts, storage quota, slow hook): each finding's kind,
        severity, summary, explanation, the numbers behind it and when it was first seen."""
        return {"items": await service.problems(ws, name)}

    @ws_routes.post("/installations/{name}/enable")
    async def enable(ws: str, name: str, who: Member) -> dict[str, Any]:
        return await service.enable(ws, who, name)

    @ws_routes.post("/installations/{name}/disable")
    async def disable(ws: str, name: str, who: Member) -> dict[str, Any]:
        return await service.disable(ws, who, name)

    @ws_routes.post("/installations/{name}/uninstall", status_code=204)
    async def uninstall(ws: str, name: str, who: Member, purge: bool = False) -> Response:
        await service.uninstall(ws, who, name, purge=purge)
        return Response(status_code=204)

    @ws_routes.post(
        "/installations/{name}/update", status_code=202, openapi_extra=_documented(UpdateCreate)
    )
    async def update(ws: str, name: str, request: Request, who: Member) -> dict[str, Any]:
        given = await body(request, UpdateCreate)
        return service.start_update(ws, who, name, given.consent).public()

    @ws_routes.get("/installations/{name}/settings")
    async def get_settings(ws: str, name: str, who: Member) -> dict[str, Any]:
        """Effective values (schema defaults filled in; secrets only as set/not set), the keys
        required and missing, and the plugin's config JSON Schema."""
        return await service.plugin_settings(ws, name)

    @ws_routes.put("/installations/{name}/settings/{key}", openapi_extra=_documented(SettingUpdate))
    async def set_setting(
        ws: str, name: str, key: str, request: Request, who: Member
    ) -> dict[str, Any]:
        """Set one key, checked against the schema (a refusal is 400 naming the key and the
        rule, and stores nothing); answers the settings as ``GET`` does."""
        given = await body(request, SettingUpdate)
        if "value" not in given.model_fields_set:
            raise FieldError("value", 'give the setting\'s value as {"value": ...}')
        return await service.change_settings(ws, who, name, {key: given.value})

    @ws_routes.delete("/installations/{name}/settings/{key}")
    async def unset_setting(ws: str, name: str, key: str, who: Member) -> dict[str, Any]:
        """Remove one key, so its default (if any) applies again."""
        return await service.change_settings(ws, who, name, {}, unset=[key])

    @ws_routes.get("/installations/{name}/secrets")
    async def list_secrets(ws: str, name: str, who: Member) -> dict[str, Any]:
        """The plugin's declared credentials: set or not, fingerprint, updated, last used.
        Values are write-only."""
        return await service.plugin_secrets(ws, name)

    @ws_routes.put(
        "/installations/{name}/secrets/{secret}", openapi_extra=_documented(SecretUpdate)
    )
    async def set_secret(
        ws: str, name: str, secret: str, request: Request, who: Member
    ) -> dict[str, Any]:
        """Set or replace one secret (a credential the manifest declares); answers its
        fingerprint, never the value."""
        given = await body(request, SecretUpdate, 4 * 64 * 1024)  # a 64 KiB value, escaped
        if "value" not in given.model_fields_set or not isinstance(given.value, str):
            raise FieldError("value", 'give the secret as {"value": "..."} (a JSON string)')
        return await service.set_secret(ws, who, name, secret, given.value.encode())

    @ws_routes.delete("/installations/{name}/secrets/{secret}", status_code=204)
    async def delete_secret(ws: str, name: str, secret: str, who: Member) -> Response:
        await service.delete_secret(ws, who, name, secret)
        return Response(status_code=204)

    @ws_routes.post("/installations/{name}/execute", openapi_extra=_documented(ExecuteRequest))
    async def execute(ws: str, name: str, request: Request, who: Member) -> dict[str, Any]:
        given = await body(request, ExecuteRequest, settings.max_input_bytes)
        return await service.execute(
            ws, name, hook=given.hook, command=given.command, args=given.args, kwargs=given.input
        )

    @ws_routes.get("/operations")
    def list_operations(ws: str, who: Member) -> dict[str, Any]:
        return {"items": [o.public() for o in service.operations(ws)]}

    @ws_routes.get("/operations/{operation_id}")
    def get_operation(ws: str, operation_id: str, who: Member) -> dict[str, Any]:
        return service.operation(ws, operation_id).public()

    @ws_routes.get("/audit")
    async def audit(
        ws: str,
        who: Member,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
        subject: Annotated[str | None, Query(max_length=200)] = None,
    ) -> dict[str, Any]:
        return {"items": await service.audit(ws, subject=subject, limit=limit)}

    @ws_routes.get("/policy")
    def policy(ws: str, who: Member) -> dict[str, Any]:
        return service.policy(ws)

    @ws_routes.get("/deliveries")
    async def deliveries(
        ws: str,
        who: Member,
        state: Annotated[str | None, Query(pattern="^(pending|sending|done|dead)$")] = None,
        plugin: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Outbound webhook deliveries, newest first; ``state=dead`` lists the dead letters."""
        return {"items": await service.deliveries(ws, state=state, plugin=plugin, limit=limit)}

    @ws_routes.post("/deliveries/{delivery_id}/redeliver")
    async def redeliver(ws: str, delivery_id: str, who: Member) -> dict[str, Any]:
        """Send a dead delivery again, with a fresh count of attempts."""
        return await service.redeliver(ws, who, delivery_id)

    @ws_routes.get("/inbox")
    async def inbox(
        ws: str,
        who: Member,
        state: Annotated[State | None, Query()] = None,
        plugin: Annotated[str | None, Query(max_length=200)] = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> dict[str, Any]:
        """Received (inbound) webhooks, newest first, without bodies or headers;
        ``state=dead`` lists those whose handler failed every attempt."""
        return {"items": await service.inbox(ws, state=state, plugin=plugin, limit=limit)}

    @ws_routes.post("/inbox/{delivery}/retry")
    async def retry_delivery(ws: str, delivery: str, who: Member) -> dict[str, Any]:
        """Hand a dead received webhook to its plugin again, with a fresh count of attempts."""
        return await service.retry_delivery(ws, who, delivery)

    @ws_routes.get("/metrics")
    async def metrics(ws: str, who: Member) -> Response:
        return Response(await service.metrics(ws), media_type=RuntimeMetrics.CONTENT_TYPE)

    router.include_router(admin_routes)
    router.include_router(ws_routes)
    return router
