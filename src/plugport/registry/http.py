"""What every request goes through: a size limit, a rate limit per authenticated token or
else per client address (with ``RateLimit-*`` headers; see :mod:`.ratelimit`), ETags with
``If-None-Match`` and Cache-Control on JSON reads, and request metrics. A pure ASGI
middleware, so streamed downloads pass through untouched."""

from __future__ import annotations

import hashlib
import json
import time
from typing import Any

import anyio.to_thread
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from plugport.registry.errors import error_body
from plugport.registry.ratelimit import FallbackRateLimiter, RateLimiter, TokenCheck, bucket

__all__ = ["RegistryMiddleware", "RequestMetrics"]

_UNLIMITED = ("/healthz", "/metrics")
_REQUEST_SETTING = "the registry's max_request_bytes, PLUGPORT_MAX_REQUEST_BYTES"


class RequestMetrics:
    def __init__(self, limiter: FallbackRateLimiter | None = None) -> None:
        self.registry = CollectorRegistry()
        if limiter is not None:
            shared = Gauge(
                "plugport_registry_rate_limits_shared",
                "1 while rate limits are counted in Redis (shared by every node), 0 while "
                "this node counts on its own (no Redis configured, or Redis not answering).",
                registry=self.registry,
            )
            shared.set_function(lambda: float(limiter.shared_counter))
        self.requests = Counter(
            "plugport_registry_requests_total",
            "Requests by route template, method and status.",
            ("method", "route", "status"),
            registry=self.registry,
        )
        self.seconds = Histogram(
            "plugport_registry_request_duration_seconds",
            "Time to the response's first byte, by route template.",
            ("route",),
            registry=self.registry,
        )


class _TooLarge(BaseException):
    """Raised from ``receive``; a BaseException so the body parser's ``except Exception``
    cannot turn it into a 400."""


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _client_address(scope: Scope) -> str:
    client = scope.get("client") or ("unknown", 0)
    return str(client[0])


async def _send_json(
    send: Send, status: int, body: dict[str, Any], headers: dict[str, str]
) -> None:
    payload = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.lower().encode(), v.encode()) for k, v in headers.items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


class RegistryMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        limiter: RateLimiter,
        tokens: TokenCheck,
        limit_per_minute: int,
        max_request_bytes: int,
        metrics: RequestMetrics,
    ) -> None:
        self.app = app
        self.limiter = limiter
        self.tokens = tokens
        self.limit = limit_per_minute
        self.max_request_bytes = max_request_bytes
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method, path = scope["method"], scope["path"]
        extra: dict[str, str] = {}
        if path not in _UNLIMITED:
            decision = self.limiter.hit(await self._bucket(scope), self.limit)
            extra = decision.headers()
            if not decision.allowed:
                message = f"more than {self.limit} requests a minute; retry in {decision.reset_s} s"
                await _send_json(send, 429, error_body("rate_limited", message), extra)
                self._observe(scope, method, 429, started)
                return
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_request_bytes:
            message = (
                f"the request body is {declared} bytes; at most {self.max_request_bytes} "
                f"({_REQUEST_SETTING})"
            )
            await _send_json(send, 413, error_body("too_large", message), extra)
            self._observe(scope, method, 413, started)
            return
        received = 0

        async def counted_receive() -> Message:
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.max_request_bytes:
                raise _TooLarge
            return message

        responder = _Responder(send, scope, extra)
        try:
            await self.app(scope, counted_receive, responder.send)
        except _TooLarge:
            message = (
                f"the request body is more than {self.max_request_bytes} bytes ({_REQUEST_SETTING})"
            )
            await _send_json(send, 413, error_body("too_large", message), extra)
            responder.status = 413
        self._observe(scope, method, responder.status, started)

    async def _bucket(self, scope: Scope) -> str:
        """A token's own bucket only once it authenticates (a database read, off the event
        loop); anything else spends the client address's."""
        authorization = _header(scope, b"authorization")
        prefix = None
        if authorization:
            prefix = await anyio.to_thread.run_sync(self.tokens.prefix_of, authorization)
        return bucket(_client_address(scope), prefix)

    def _observe(self, scope: Scope, method: str, status: int, started: float) -> None:
        route = getattr(scope.get("route"), "path", None) or "unmatched"
        self.metrics.requests.labels(method, route, str(status)).inc()
        self.metrics.seconds.labels(route).observe(time.perf_counter() - started)


class _Responder:
    """Adds the rate-limit headers; for a GET answered with JSON, buffers the body to send an
    ETag (or a 304 when the client already has it) and Cache-Control."""

    def __init__(self, send: Send, scope: Scope, extra: dict[str, str]) -> None:
        self._send = send
        self._scope = scope
        self._extra = [(k.lower().encode(), v.encode()) for k, v in extra.items()]
        self._start: Message | None = None
        self._chunks: list[bytes] = []
        self.status = 500

    def _cacheable(self, message: Message) -> bool:
        headers = dict(message.get("headers", []))
        content_type = bytes(headers.get(b"content-type", b""))
        return bool(
            self._scope["method"] == "GET"
            and message["status"] == 200
            and content_type.startswith(b"application/json")
        )

    async def send(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.status = message["status"]
            message = {**message, "headers": [*message.get("headers", []), *self._extra]}
            if self._cacheable(message):
                self._start = message
                return
            await self._send(message)
            return
        if self._start is None:
            await self._send(message)
            return
        self._chunks.append(message.get("body", b""))
        if message.get("more_body"):
            return
        await self._finish(self._start)

    async def _finish(self, start: Message) -> None:
        body = b"".join(self._chunks)
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        private = _header(self._scope, b"authorization") is not None
        cache = "private, no-cache" if private else "public, max-age=30"
        headers = [(k, v) for k, v in start["headers"] if k not in (b"content-length", b"etag")]
        headers.append((b"etag", etag.encode()))
        if not any(k == b"cache-control" for k, _ in headers):  # a route's own rule wins
            headers.append((b"cache-control", cache.encode()))
        wanted = _header(self._scope, b"if-none-match")
        if wanted is not None and etag in [t.strip() for t in wanted.split(",")]:
            self.status = 304
            headers = [(k, v) for k, v in headers if k != b"content-type"]
            await self._send({"type": "http.response.start", "status": 304, "headers": headers})
            await self._send({"type": "http.response.body", "body": b""})
            return
        headers.append((b"content-length", str(len(body)).encode()))
        await self._send({**start, "headers": headers})
        await self._send({"type": "http.response.body", "body": body})
