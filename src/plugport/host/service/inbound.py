"""``POST /hooks/{workspace}/{plugin}/{endpoint}``: where senders deliver a plugin's webhooks.
No token: the endpoint's verifier is the authentication. The route answers only after the
delivery is verified and committed to the workspace's inbox (202), and the task queue hands it
to the plugin later; every refusal is an audit line (plugin, endpoint, reason), never the
secret, the signature or the token."""

# No ``from __future__ import annotations``: FastAPI reads the route's parameter types.
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from plugport.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
    PluginRuntimeError,
    PlugportError,
    WebhookRefusedError,
)
from plugport.host.inbound.verifiers import safe_headers, verify
from plugport.host.install import HostPaths
from plugport.host.service.operations import describe, read_capped
from plugport.host.state import Installation
from plugport.manifest import WebhookEndpoint, load_manifest

__all__ = ["WebhookReceiver", "inbound_router"]


class SecretNotSetError(PluginRuntimeError):
    """The operator has not set the secret an endpoint verifies with: nothing can be
    accepted until they do (503: the sender may try again)."""


class WebhookReceiver:
    """The service side of the route: finds the endpoint, verifies, stores (which wakes the
    queue). ``service`` is the :class:`~plugport.host.service.service.HostService`."""

    def __init__(self, service: Any, *, clock: Callable[[], float] = time.time) -> None:
        self.service = service
        self._clock = clock
        self._specs: dict[tuple[str, str, str, str], dict[str, WebhookEndpoint]] = {}

    def endpoints(self, paths: HostPaths, installation: Installation) -> dict[str, WebhookEndpoint]:
        """The installed version's endpoints the operator consented to (read once per
        version: the manifest of an installed version never changes)."""
        key = (installation.name, installation.version, installation.sha256, installation.source)
        found = self._specs.get(key)
        if found is None:
            manifest = load_manifest(paths.code_dir(installation))
            granted = (installation.permissions.get("webhooks") or {}).get("receive") or []
            found = {n: s for n, s in manifest.webhooks.items() if n in granted}
            self._specs[key] = found
        return found

    def url(self, ws: str, plugin: str, endpoint: str) -> str:
        settings = self.service.settings
        base = settings.public_url or f"http://{settings.host}:{settings.port}"
        return f"{base}/hooks/{ws}/{plugin}/{endpoint}"

    def listing(self, ws: str, host: Any, installation: Installation) -> list[dict[str, Any]]:
        """Each endpoint the operator consented to: its full URL, its verifier, the secret it
        verifies with and whether that is set (never its value or fingerprint here)."""
        try:
            endpoints = self.endpoints(host.paths, installation)
        except PlugportError:  # its code is gone: the listing still answers
            return []
        try:
            have = {info.name for info in host.list_secrets(installation.name)}
        except PlugportError:  # the store cannot be read: say so rather than guess
            have = None
        return [
            {
                "endpoint": name,
                "url": self.url(ws, installation.name, name),
                "verifier": s.verifier,
                "secret": s.secret,
                "secret_set": None if have is None else s.secret in have,
            }
            for name, s in endpoints.items()
        ]

    async def receive(
        self,
        ws: str,
        plugin: str,
        endpoint: str,
        headers: Mapping[str, str],
        read_body: Callable[[int], Awaitable[bytes]],
    ) -> tuple[int, dict[str, Any] | None]:
        where = f"{ws}/{plugin}/{endpoint}"
        try:
            workspace = self.service.workspace(ws)
        except (NotFoundError, InvalidInputError):
            raise NotFoundError("webhook endpoint", where) from None
        host = await workspace.started()
        installation = host.state.get(plugin)
        if installation is None:
            raise NotFoundError("webhook endpoint", where)
        try:
            spec = self.endpoints(host.paths, installation).get(endpoint)
        except PlugportError:
            spec = None
        if spec is None:
            raise NotFoundError("webhook endpoint", where)

        def refuse(error: PlugportError, reason: str) -> PlugportError:
            host.state.audit(
                "webhook", plugin, "refused", actor="webhook", endpoint=endpoint,
                reason=reason, message=str(error),
            )  # fmt: skip
            return error

        if not installation.enabled:
            raise refuse(ConflictError("plugin", plugin, "is disabled; enable it"), "disabled")
        try:
            body = await read_body(spec.max_body_bytes)
        except InvalidInputError as exc:  # over max-body-bytes
            raise refuse(exc, "too_large") from None
        try:
            secret = host.supervisor.services.secrets.get(plugin, spec.secret)
        except NotFoundError:
            raise refuse(
                SecretNotSetError(
                    f"webhook {where} cannot be verified: its secret {spec.secret!r} is not set "
                    f"(plugport secret set {plugin} {spec.secret})"
                ),
                "secret_not_set",
            ) from None
        now = self._clock()
        try:
            verified = verify(spec, secret, headers, body, now)
        except WebhookRefusedError as exc:
            raise refuse(exc, exc.reason) from None
        accepted = await workspace.inbox.accept(
            plugin,
            endpoint,
            verified.delivery_id,
            headers=safe_headers(spec, headers),
            body=body,
            now=now,
        )
        if accepted.duplicate:
            refuse(
                ConflictError("delivery", str(verified.delivery_id), "was received already"),
                "replay",
            )
            if spec.acknowledge == "empty":
                return 200, None
            return 200, {"delivery": accepted.id, "duplicate": True}
        if spec.acknowledge == "empty":
            return 200, None
        return 202, {"delivery": accepted.id}


def inbound_router(receiver: WebhookReceiver) -> APIRouter:
    router = APIRouter(prefix="/hooks", tags=["webhooks"])

    @router.post("/{workspace}/{plugin}/{endpoint}")
    async def receive(workspace: str, plugin: str, endpoint: str, request: Request) -> Response:
        try:
            status, body = await receiver.receive(
                workspace,
                plugin,
                endpoint,
                request.headers,
                lambda limit: read_capped(request, limit),
            )
        except PlugportError as exc:
            status, error = describe(exc)
            if isinstance(exc, WebhookRefusedError):
                status, error["details"] = exc.status, {"reason": exc.reason}
            elif isinstance(exc, SecretNotSetError):
                status = 503
            return JSONResponse({"error": error}, status)
        if body is None:  # acknowledge = "empty"
            return Response(status_code=status)
        return JSONResponse(body, status)

    return router
