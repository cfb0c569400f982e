"""What every local fake of an outside service shares: a real HTTP server on 127.0.0.1 (the
standard library's, on a thread), routes declared per service, a log of what it received, and
the failures a real service gives — 429 with ``Retry-After``, 5xx, a refused token — that a test
switches on when it wants them. Each service module (``slack``, ``jira``, …) says what its
service's requests, answers and error bodies look like; this module only runs them.

A fake stands in for the real host names (``hosts``): :meth:`FakeService.mount` points a test's
fake network at it, so the plugin keeps fetching ``https://slack.com/api/...`` through the
host's real network broker and this server answers.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qsl, urlsplit

import httpx

from plugport.testing._local_server import serve_locally, stop_serving

__all__ = [
    "FakeService",
    "Fault",
    "Refusal",
    "Reply",
    "Sent",
    "ServiceRequest",
    "route",
    "send",
]

MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class ServiceRequest:
    """One request the fake received (every one, refused ones too)."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    params: dict[str, str] = field(default_factory=dict)
    """What the route's pattern captured (``(?P<key>...)``)."""

    def json(self) -> Any:
        return json.loads(self.body)

    def form(self) -> dict[str, str]:
        return dict(parse_qsl(self.body.decode("utf-8"), keep_blank_values=True))


@dataclass(frozen=True)
class Reply:
    """An answer: ``json`` (encoded) or ``body``, with headers."""

    status: int = 200
    json: Any = None
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def encoded(self) -> tuple[bytes, dict[str, str]]:
        headers = dict(self.headers)
        if self.json is not None:
            headers.setdefault("Content-Type", "application/json; charset=utf-8")
            return json.dumps(self.json).encode(), headers
        return self.body, headers


@dataclass
class Fault:
    """A failure the fake gives the next ``times`` matching requests instead of answering."""

    status: int
    times: int
    retry_after_s: int | None = None
    path: str | None = None  # a regular expression; None: any request


Handler = Callable[[Any, ServiceRequest], Reply]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Declare a service method's handler: ``@route("POST", r"/api/chat\\.postMessage")``.
    The pattern is matched against the whole path; named groups land in ``request.params``."""

    def mark(handler: Handler) -> Handler:
        handler.__dict__.setdefault("_routes", []).append((method.upper(), pattern))
        return handler

    return mark


class FakeService:
    """A service's fake. Subclasses set ``hosts`` and declare ``@route`` handlers; they shape
    refusals by overriding :meth:`error_reply` (the service's error body for a status) and,
    where the service has its own, :meth:`rate_limit_headers`."""

    hosts: ClassVar[tuple[str, ...]] = ()
    """The real host names this fake answers for (globs allowed)."""
    name: ClassVar[str] = "service"

    def __init__(self) -> None:
        self.requests: list[ServiceRequest] = []
        self.faults: list[Fault] = []
        self._lock = threading.RLock()
        self._server: ThreadingHTTPServer | None = None
        self._table = self._collect_routes()

    # --- running ---------------------------------------------------------------------------

    def start(self) -> Self:
        service = self

        bound = type("BoundHandler", (_HTTPHandler,), {"fake": service})
        self._server = serve_locally(bound)
        return self

    def stop(self) -> None:
        stop_serving(self._server)
        self._server = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def address(self) -> str:
        """``127.0.0.1:PORT``, for ``plugin.net.allow_local``."""
        if self._server is None:
            raise RuntimeError(f"the fake {self.name} is not running: call start()")
        return f"127.0.0.1:{self._server.server_address[1]}"

    @property
    def url(self) -> str:
        return f"http://{self.address}"

    def mount(self, plugin: Any) -> Self:
        """Answer the plugin's fetches to :attr:`hosts` (a ``plugport.testing`` handle)."""
        plugin.net.allow_local(self.address, hosts=self.hosts)
        return self

    # --- what a test switches on -----------------------------------------------------------

    def throttle(self, times: int = 1, *, retry_after_s: int = 1, path: str | None = None) -> None:
        """The next ``times`` requests (to ``path``, a regular expression) get a 429 with
        ``Retry-After``, shaped as the service shapes it."""
        with self._lock:
            self.faults.append(Fault(429, times, retry_after_s, path))

    def fail_next(self, status: int = 503, times: int = 1, *, path: str | None = None) -> None:
        """The next ``times`` requests get ``status`` (a 5xx, or any refusal) instead."""
        with self._lock:
            self.faults.append(Fault(status, times, None, path))

    def received(self, method: str | None = None, path: str | None = None) -> list[ServiceRequest]:
        """What reached the fake, oldest first; ``path`` is a regular expression."""
        with self._lock:
            return [
                r
                for r in self.requests
                if (method is None or r.method == method.upper())
                and (path is None or re.fullmatch(path, r.path))
            ]

    # --- what a service shapes -------------------------------------------------------------

    def error_reply(self, status: int, message: str) -> Reply:
        """The service's error body for ``status``; subclasses follow their service."""
        return Reply(status, json={"error": message})

    def rate_limit_headers(self, retry_after_s: int) -> dict[str, str]:
        return {"Retry-After": str(retry_after_s)}

    def authenticate(self, request: ServiceRequest) -> Reply | None:
        """A refusal for a request without valid credentials, or None to go on."""
        return None

    def parse_json(self, request: ServiceRequest) -> Any:
        """The request's JSON body, or :class:`Refusal` with the service's 400 for a body that
        is not JSON."""
        try:
            return request.json()
        except (ValueError, UnicodeDecodeError):
            raise Refusal(self.error_reply(400, "the body is not valid JSON")) from None

    # --- the loop --------------------------------------------------------------------------

    def _collect_routes(self) -> list[tuple[str, re.Pattern[str], Handler]]:
        table = []
        for klass in reversed(type(self).__mro__):
            for attribute in vars(klass).values():
                for method, pattern in getattr(attribute, "_routes", ()):
                    table.append((method, re.compile(pattern), attribute))
        return table

    def _fault_for(self, path: str) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.times > 0 and (fault.path is None or re.fullmatch(fault.path, path)):
                    fault.times -= 1
                    return fault
            self.faults = [f for f in self.faults if f.times > 0]
        return None

    def handle(self, request: ServiceRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
        fault = self._fault_for(request.path)
        if fault is not None:
            reply = self.error_reply(fault.status, _REASONS.get(fault.status, "fault"))
            if fault.retry_after_s is not None:
                extra = self.rate_limit_headers(fault.retry_after_s)
                reply = Reply(reply.status, reply.json, reply.body, {**reply.headers, **extra})
            return reply
        allowed = []
        for method, pattern, handler in self._table:
            match = pattern.fullmatch(request.path)
            if match is None:
                continue
            if method != request.method:
                allowed.append(method)
                continue
            bound = ServiceRequest(
                request.method,
                request.path,
                request.query,
                request.headers,
                request.body,
                {k: v for k, v in match.groupdict().items() if v is not None},
            )
            refusal = self.authenticate(bound)
            if refusal is not None:
                return refusal
            try:
                return handler(self, bound)
            except Refusal as exc:
                return exc.reply
        if allowed:
            return self.error_reply(405, f"{request.method} is not allowed here")
        return self.error_reply(404, f"no such resource: {request.path}")


class Refusal(Exception):
    """Raised by a handler to answer with ``reply`` (a 4xx in the service's shape)."""

    def __init__(self, reply: Reply) -> None:
        super().__init__(reply.status)
        self.reply = reply


_REASONS = {
    400: "bad request",
    401: "unauthorized",
    403: "forbidden",
    404: "not found",
    429: "rate limited",
    500: "internal server error",
    502: "bad gateway",
    503: "service unavailable",
    504: "gateway timeout",
}


class _HTTPHandler(BaseHTTPRequestHandler):
    fake: ClassVar[FakeService]
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return  # a fake is quiet; tests read ``requests``

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(self.fake.error_reply(413, "the body is too large"))
            return
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = ServiceRequest(
            self.command,
            parts.path,
            dict(parse_qsl(parts.query, keep_blank_values=True)),
            {k.lower(): v for k, v in self.headers.items()},
            body,
        )
        self._answer(self.fake.handle(request))

    def _answer(self, reply: Reply) -> None:
        content, headers = reply.encoded()
        self.send_response(reply.status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(content)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(content)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve


@dataclass(frozen=True)
class Sent:
    """What a fake sender (a service calling a webhook) got back."""

    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)


def send(url: str, body: bytes, headers: Mapping[str, str], *, timeout_s: float = 10.0) -> Sent:
    """POST ``body`` to ``url`` as a service delivering a webhook does; any status is an
    answer (a refusal is what a test often wants to see)."""
    response = httpx.post(url, content=body, headers=dict(headers), timeout=timeout_s)
    return Sent(response.status_code, response.content, dict(response.headers.items()))
