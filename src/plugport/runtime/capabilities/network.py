"""The host side of ``net.fetch``: fetch a URL for a sandboxed plugin, reaching only the hosts it
was granted and never the host's own network (SSRF-safe).

Every hop, redirects included, runs the same pure checks: :func:`check_url` on the URL (scheme,
no user info, a granted host *name*, never an address literal) and :func:`check_address` on
*every* address DNS returns for it. The connection then goes to an address that was checked
(:class:`PinnedTransport`), so a second, different DNS answer (rebinding) cannot redirect it,
while the ``Host`` header, TLS SNI and certificate verification stay on the host name.
"""

from __future__ import annotations

import asyncio
import json as jsonlib
import re
import socket
import ssl
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import httpx

from plugport.errors import NetworkFetchError, PermissionDeniedError
from plugport.manifest import match_host
from plugport.runtime.capabilities._addresses import (
    DEFAULT_BLOCKED_NETWORKS,
    IPNetwork,
    blocked_reason,
    parse_address,
    parse_labelled_networks,
    parse_networks,
)

__all__ = [
    "CAPABILITY",
    "DEFAULT_ALLOWED_REQUEST_HEADERS",
    "DEFAULT_BLOCKED_NETWORKS",
    "DEFAULT_METHODS",
    "PIN_EXTENSION",
    "DeniedCallback",
    "FetchPolicy",
    "FetchResult",
    "NetworkBroker",
    "PinnedTransport",
    "Resolver",
    "StaticResolver",
    "SystemResolver",
    "Target",
    "check_address",
    "check_body",
    "check_headers",
    "check_method",
    "check_url",
]

CAPABILITY = "net.fetch"
PIN_EXTENSION = "plugport.connect_to"
"""Request extension naming the checked address :class:`PinnedTransport` must connect to."""

DEFAULT_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"})
DEFAULT_ALLOWED_REQUEST_HEADERS = frozenset(
    {
        "accept",
        "accept-language",
        "authorization",
        "cache-control",
        "content-type",
        "if-match",
        "if-modified-since",
        "if-none-match",
        "if-unmodified-since",
        "range",
        "user-agent",
    }
)
# Refused whatever the policy says: they steer routing, framing, proxies or the host's own
# identity (cookies), or let a server behind a proxy be told a different host, client or method.
_NEVER_HEADERS = frozenset(
    {
        "accept-encoding",
        "connection",
        "content-length",
        "cookie",
        "cookie2",
        "expect",
        "forwarded",
        "host",
        "http2-settings",
        "keep-alive",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "via",
        "x-client-ip",
        "x-host",
        "x-http-method",
        "x-http-method-override",
        "x-method-override",
        "x-original-url",
        "x-real-ip",
        "x-rewrite-url",
    }
)
_NEVER_HEADER_PREFIXES = ("proxy-", "x-forwarded-")
_DROPPED_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_CHARS = 8192
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# What inet_aton and the WHATWG URL parser read as (part of) an IPv4 address: 127.1, 2130706433,
# 0x7f000001, 0177.0.0.1. A host whose last label looks like this is never a name.
_NUMERIC_LABEL_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

DeniedCallback = Callable[[str, str, str], None]
"""``on_denied(plugin, capability, reason)``: told of every refusal, e.g. by the audit log."""


@dataclass(frozen=True)
class FetchPolicy:
    """What one plugin's fetches may do; built by the host from the plugin's grants."""

    allowed: tuple[str, ...]
    """Granted host patterns (``permissions.network``): ``api.example.com``, ``*.example.com``,
    ``hooks.example.com:8443``; without a port they cover 80 and 443."""
    methods: frozenset[str] = DEFAULT_METHODS
    max_request_bytes: int = 1024**2
    max_response_bytes: int = 5 * 1024**2
    max_request_header_bytes: int = 16 * 1024
    timeout_ms: int = 10_000
    """The whole fetch, DNS and every redirect included."""
    max_redirects: int = 5
    allowed_request_headers: frozenset[str] = DEFAULT_ALLOWED_REQUEST_HEADERS
    allow_custom_x_headers: bool = True
    """Also pass ``X-*`` headers (API keys, versions), except the proxy ones always refused."""
    blocked_networks: tuple[tuple[str, str], ...] = DEFAULT_BLOCKED_NETWORKS
    """(CIDR, label) ranges refused with that label; add the operator's own public ranges here.
    Any address that is not globally routable is refused even if it is not listed."""
    extra_allowed_networks: tuple[str, ...] = ()
    """Test-only escape hatch: CIDRs reachable despite being non-public, so end-to-end tests can
    use a server on 127.0.0.1. Production never sets it."""

    _blocked: tuple[tuple[IPNetwork, str], ...] = field(init=False, repr=False, compare=False)
    _extra_allowed: tuple[IPNetwork, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("max_request_bytes", "max_response_bytes", "max_request_header_bytes"):
            if getattr(self, name) < 0:
                raise ValueError(f"FetchPolicy.{name} must not be negative")
        if self.timeout_ms <= 0 or self.max_redirects < 0:
            raise ValueError("FetchPolicy.timeout_ms must be positive, max_redirects >= 0")
        object.__setattr__(self, "allowed", tuple(self.allowed))
        object.__setattr__(self, "methods", frozenset(m.upper() for m in self.methods))
        object.__setattr__(
            self,
            "allowed_request_headers",
            frozenset(h.lower() for h in self.allowed_request_headers),
        )
        # Parsed once here, so a typo in a CIDR fails when the policy is built, not per fetch.
        object.__setattr__(self, "_blocked", parse_labelled_networks(self.blocked_networks))
        object.__setattr__(self, "_extra_allowed", parse_networks(self.extra_allowed_networks))


@dataclass(frozen=True)
class Target:
    """A URL that passed :func:`check_url`, in the only form the broker will request."""

    scheme: str
    host: str
    port: int
    path_query: str

    @property
    def url(self) -> str:
        netloc = (
            self.host if _DEFAULT_PORTS[self.scheme] == self.port else f"{self.host}:{self.port}"
        )
        return f"{self.scheme}://{netloc}{self.path_query}"

    @property
    def origin(self) -> tuple[str, str, int]:
        return (self.scheme, self.host, self.port)


@dataclass(frozen=True)
class FetchResult:
    """What the plugin gets back. Headers are lower-cased, repeated ones joined with ", ", and
    cookies are dropped (the host keeps no cookie jar for plugins)."""

    status: int
    headers: dict[str, str]
    body: bytes
    url: str
    """The final URL, after redirects."""
    elapsed_ms: float


# --- pure decisions ------------------------------------------------------------------------------


def _denied(plugin: str, reason: str) -> PermissionDeniedError:
    return PermissionDeniedError(plugin, CAPABILITY, reason)


def _looks_like_ip(host: str) -> bool:
    if ":" in host:  # only IPv6 literals have colons once the port is split off
        return True
    try:
        parse_address(host)
    except ValueError:
        return _NUMERIC_LABEL_RE.fullmatch(host.rsplit(".", 1)[-1]) is not None
    return True


def check_url(url: str, policy: FetchPolicy, *, plugin: str = "") -> Target:
    """The :class:`Target` for ``url``, or :class:`PermissionDeniedError` naming the rule it
    breaks. Only the returned target is ever requested, so what was checked is what is sent."""
    if len(url) > _MAX_URL_CHARS:
        raise _denied(plugin, f"URL is longer than {_MAX_URL_CHARS} characters")
    try:
        parsed = httpx.URL(url)
    except httpx.InvalidURL as exc:
        raise _denied(plugin, f"not a valid URL ({exc})") from None
    scheme = parsed.scheme
    if scheme not in _DEFAULT_PORTS:
        shown = repr(scheme) if scheme else "a relative URL"
        raise _denied(plugin, f"only http and https URLs may be fetched, not {shown}")
    if parsed.userinfo:
        raise _denied(plugin, "URLs with user info ('user@host') are refused: they hide the host")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise _denied(plugin, "the URL has no host")
    if _looks_like_ip(host):
        raise _denied(plugin, f"{host!r} is an IP address; only granted host names may be fetched")
    if not _HOSTNAME_RE.fullmatch(host) or len(host) > 253:
        raise _denied(plugin, f"{host!r} is not a valid host name")
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    if not 1 <= port <= 65535:
        raise _denied(plugin, f"port {port} is out of range 1-65535")
    if not any(match_host(pattern, host, port) for pattern in policy.allowed):
        granted = ", ".join(policy.allowed) or "none"
        raise _denied(plugin, f"{host}:{port} is not in the plugin's network grants ({granted})")
    return Target(scheme, host, port, parsed.raw_path.decode("ascii"))


def check_address(
    address: str, policy: FetchPolicy, *, plugin: str = "", host: str | None = None
) -> None:
    """Refuse ``address`` unless it is on the public internet (or in the test-only
    ``extra_allowed_networks``); the reason names the range, e.g. "loopback (127.0.0.0/8)"."""
    subject = f"{host} resolves to {address}" if host else f"address {address}"
    try:
        parsed = parse_address(address)
    except ValueError:
        raise _denied(plugin, f"{subject}, which is not an IP address") from None
    reason = blocked_reason(parsed, policy._blocked, policy._extra_allowed)
    if reason is not None:
        raise _denied(plugin, f"{subject}, which is {reason}")


def check_method(method: str, policy: FetchPolicy, *, plugin: str = "") -> str:
    """The method, upper-cased, if the policy allows it."""
    upper = method.upper()
    if not _TOKEN_RE.fullmatch(upper) or upper not in policy.methods:
        allowed = ", ".join(sorted(policy.methods))
        raise _denied(plugin, f"method {method!r} is not allowed (allowed: {allowed})")
    return upper


def check_headers(
    headers: Mapping[str, str] | None, policy: FetchPolicy, *, plugin: str = ""
) -> list[tuple[str, str]]:
    """The request headers, names lower-cased, if each is allowed and well formed."""
    checked: list[tuple[str, str]] = []
    size = 0
    for raw_name, value in (headers or {}).items():
        name = raw_name.lower()
        if not _TOKEN_RE.fullmatch(name):
            raise _denied(plugin, f"header name {raw_name!r} is not a valid HTTP token")
        if name in _NEVER_HEADERS or name.startswith(_NEVER_HEADER_PREFIXES):
            raise _denied(plugin, f"header {name!r} is set by the host and never by a plugin")
        custom = policy.allow_custom_x_headers and name.startswith("x-")
        if not custom and name not in policy.allowed_request_headers:
            allowed = ", ".join(sorted(policy.allowed_request_headers))
            extra = " and X-* headers" if policy.allow_custom_x_headers else ""
            raise _denied(plugin, f"header {name!r} is not allowed (allowed: {allowed}{extra})")
        if _BAD_VALUE_RE.search(value):
            raise _denied(plugin, f"header {name!r} has a control character in its value")
        size += len(name) + len(value.encode()) + 4
        checked.append((name, value))
    if size > policy.max_request_header_bytes:
        raise _denied(
            plugin,
            f"request headers are {size} bytes; max_request_header_bytes = "
            f"{policy.max_request_header_bytes}",
        )
    return checked


def check_body(
    body: bytes | None, json: object, policy: FetchPolicy, *, plugin: str = ""
) -> tuple[bytes | None, str | None]:
    """The request body and the content type it implies (JSON), within max_request_bytes.

    ``body`` and ``json`` are exclusive; passing both, or a value JSON cannot encode, is a
    caller bug (TypeError/ValueError), not a refusal.
    """
    if body is not None and json is not None:
        raise TypeError("pass body or json, not both")
    content_type = None
    if json is not None:
        body = jsonlib.dumps(json, separators=(",", ":"), allow_nan=False).encode()
        content_type = "application/json"
    if body is not None and len(body) > policy.max_request_bytes:
        raise _denied(
            plugin,
            f"request body is {len(body)} bytes; max_request_bytes = {policy.max_request_bytes}",
        )
    return body, content_type


# --- DNS -----------------------------------------------------------------------------------------


class Resolver(Protocol):
    """Host-side DNS: every address a name has, each of which the broker checks."""

    async def resolve(self, host: str, port: int) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (getaddrinfo), without blocking the event loop."""

    async def resolve(self, host: str, port: int) -> list[str]:
        infos = await asyncio.get_running_loop().getaddrinfo(
            host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP
        )
        return list(dict.fromkeys(str(info[4][0]) for info in infos))


class StaticResolver:
    """An in-memory resolver (name -> addresses) for tests and fixed deployments; an unknown
    name fails the way DNS does. ``calls`` records every lookup."""

    def __init__(self, mapping: Mapping[str, Sequence[str]]) -> None:
        self._mapping = {name.lower().rstrip("."): list(addrs) for name, addrs in mapping.items()}
        self.calls: list[tuple[str, int]] = []

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        try:
            return list(self._mapping[host.lower().rstrip(".")])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the table") from None


# --- the connection ------------------------------------------------------------------------------


class PinnedTransport(httpx.AsyncBaseTransport):
    """Sends each request to the address named by its :data:`PIN_EXTENSION`, not to whatever
    the host name resolves to now.

    The request keeps its host name everywhere except the socket: the URL's host is swapped for
    the checked address (so httpcore connects there without resolving anything), the ``Host``
    header was already set from the name when the request was built, and for https the
    ``sni_hostname`` extension makes httpcore send the name as SNI and verify the certificate
    against it. A request without a pin is refused, so nothing leaves unchecked.

    With no ``inner`` transport, each host name gets its own connection pool, so a connection
    opened (and certificate-verified) for one name is never reused for another on the same
    address. An ``inner`` transport is shared and belongs to the caller, who closes it.
    """

    def __init__(
        self,
        inner: httpx.AsyncBaseTransport | None = None,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self._inner = inner
        self._ssl_context = ssl_context
        self._pools: dict[str, httpx.AsyncHTTPTransport] = {}

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pin = request.extensions.get(PIN_EXTENSION)
        if not isinstance(pin, str):
            raise ValueError(f"request to {request.url} has no {PIN_EXTENSION} address")
        address = parse_address(pin)
        name = request.url.host
        extensions = {k: v for k, v in request.extensions.items() if k != PIN_EXTENSION}
        if request.url.scheme == "https":
            extensions["sni_hostname"] = name
        request.url = request.url.copy_with(host=str(address))
        request.extensions = extensions
        return await self._transport_for(name).handle_async_request(request)

    def _transport_for(self, name: str) -> httpx.AsyncBaseTransport:
        if self._inner is not None:
            return self._inner
        pool = self._pools.get(name)
        if pool is None:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            pool = httpx.AsyncHTTPTransport(verify=self._ssl_context, trust_env=False, retries=0)
            self._pools[name] = pool
        return pool

    @property
    def ssl_context(self) -> ssl.SSLContext | None:
        return self._ssl_context

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


# --- the broker ----------------------------------------------------------------------------------


class NetworkBroker:
    """``net.fetch`` for one plugin: checks, resolves, pins, follows redirects and caps.

    Refusals raise :class:`PermissionDeniedError` (capability ``net.fetch``) and are reported to
    ``on_denied``; fetches that were allowed but failed raise :class:`NetworkFetchError`.
    ``transport`` replaces the real connection (tests); it still only ever receives pinned
    requests. ``ssl_context`` replaces the default certificate store.
    """

    def __init__(
        self,
        plugin: str,
        policy: FetchPolicy,
        resolver: Resolver | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        *,
        on_denied: DeniedCallback | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.plugin = plugin
        self.policy = policy
        self._resolver: Resolver = resolver if resolver is not None else SystemResolver()
        self._transport = transport
        self._on_denied = on_denied
        self._ssl_context = ssl_context

    async def fetch(
        self,
        url: str,
        *,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        json: object = None,
    ) -> FetchResult:
        """Fetch ``url`` for the plugin, re-checking every redirect hop."""
        try:
            return await self._fetch(url, method, headers, body, json)
        except PermissionDeniedError as exc:
            if self._on_denied is not None:
                self._on_denied(exc.plugin, exc.capability, exc.reason)
            raise

    async def _fetch(
        self,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        json: object,
    ) -> FetchResult:
        policy, plugin = self.policy, self.plugin
        loop = asyncio.get_running_loop()
        started = loop.time()
        method = check_method(method, policy, plugin=plugin)
        header_list = check_headers(headers, policy, plugin=plugin)
        content, content_type = check_body(body, json, policy, plugin=plugin)
        if content_type and not any(name == "content-type" for name, _ in header_list):
            header_list.append(("content-type", content_type))
        hop = _Hop(check_url(url, policy, plugin=plugin), method, tuple(header_list), content)
        visited = [hop.target.url]
        deadline = started + policy.timeout_ms / 1000
        try:
            async with asyncio.timeout_at(deadline):
                pinned = PinnedTransport(self._transport, ssl_context=self._ssl_context)
                async with pinned:
                    status, response_headers, data = await self._follow(
                        pinned, hop, deadline, visited
                    )
                # Keep the certificate store the first fetch loaded; it is costly to build.
                self._ssl_context = pinned.ssl_context
        except (TimeoutError, httpx.TimeoutException):
            timed_out = f"no complete response within timeout_ms = {policy.timeout_ms}"
            raise NetworkFetchError(plugin, visited[-1], timed_out) from None
        except httpx.HTTPError as exc:
            raise NetworkFetchError(plugin, visited[-1], f"{type(exc).__name__}: {exc}") from None
        elapsed_ms = (loop.time() - started) * 1000
        return FetchResult(status, response_headers, data, visited[-1], elapsed_ms)

    async def _follow(
        self, transport: PinnedTransport, hop: _Hop, deadline: float, visited: list[str]
    ) -> tuple[int, dict[str, str], bytes]:
        policy, plugin = self.policy, self.plugin
        redirects = 0
        while True:
            addresses = await self._resolve(hop.target)
            response = await self._send(transport, hop, addresses, deadline)
            location = response.headers.get("location")
            if response.status_code not in _REDIRECT_STATUSES or location is None:
                data = await self._read(response, hop)
                return response.status_code, _result_headers(response.headers), data
            await response.aclose()
            if redirects >= policy.max_redirects:
                raise NetworkFetchError(
                    plugin, hop.target.url, f"more than max_redirects = {policy.max_redirects}"
                )
            redirects += 1
            try:
                next_url = str(httpx.URL(hop.target.url).join(location))
            except httpx.InvalidURL as exc:
                raise NetworkFetchError(
                    plugin, hop.target.url, f"redirect to an invalid Location ({exc})"
                ) from None
            hop = hop.redirected(response.status_code, check_url(next_url, policy, plugin=plugin))
            visited.append(hop.target.url)

    async def _resolve(self, target: Target) -> list[str]:
        try:
            addresses = await self._resolver.resolve(target.host, target.port)
        except OSError as exc:
            raise NetworkFetchError(
                self.plugin, target.url, f"could not resolve {target.host}: {exc}"
            ) from None
        if not addresses:
            raise NetworkFetchError(self.plugin, target.url, f"{target.host} has no addresses")
        # Every answer must pass, not just the one we connect to: a name that resolves to a
        # public and a private address is an attack on whichever address is tried first.
        for address in addresses:
            check_address(address, self.policy, plugin=self.plugin, host=target.host)
        return addresses

    async def _send(
        self, transport: PinnedTransport, hop: _Hop, addresses: list[str], deadline: float
    ) -> httpx.Response:
        failures: list[str] = []
        for address in addresses:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
            request = httpx.Request(
                hop.method,
                hop.target.url,
                headers=[*hop.headers, ("accept-encoding", "identity")],
                content=hop.content,
                extensions={
                    PIN_EXTENSION: address,
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), remaining),
                },
            )
            try:
                return await transport.handle_async_request(request)
            except httpx.ConnectError as exc:
                # Nothing was sent, so trying the next checked address is safe for any method.
                failures.append(f"{address}: {exc}")
        host = hop.target.host
        raise NetworkFetchError(
            self.plugin, hop.target.url, f"could not connect to {host} ({'; '.join(failures)})"
        )

    async def _read(self, response: httpx.Response, hop: _Hop) -> bytes:
        limit = self.policy.max_response_bytes
        too_big = f"response body is larger than max_response_bytes = {limit}"
        try:
            declared = response.headers.get("content-length", "")
            if hop.method != "HEAD" and declared.isdigit() and int(declared) > limit:
                raise NetworkFetchError(self.plugin, hop.target.url, too_big)
            chunks: list[bytes] = []
            size = 0
            async for chunk in response.aiter_bytes():
                size += len(chunk)
                if size > limit:
                    raise NetworkFetchError(self.plugin, hop.target.url, too_big)
                chunks.append(chunk)
            return b"".join(chunks)
        finally:
            await response.aclose()


@dataclass(frozen=True)
class _Hop:
    """One request of a fetch: the checked target and what to send it."""

    target: Target
    method: str
    headers: tuple[tuple[str, str], ...]
    content: bytes | None

    def redirected(self, status: int, target: Target) -> _Hop:
        """The request for the next hop, changing method and body as browsers and httpx do."""
        method, headers, content = self.method, self.headers, self.content
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
            headers = tuple((n, v) for n, v in headers if n != "content-type")
        if target.origin != self.target.origin:
            # Credentials were meant for the first origin only.
            headers = tuple((n, v) for n, v in headers if n != "authorization")
        return _Hop(target, method, headers, content)


def _result_headers(headers: httpx.Headers) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.multi_items():
        if name in _DROPPED_RESPONSE_HEADERS:
            continue
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result
