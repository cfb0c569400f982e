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
import ssl
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from plugport._addresses import DEFAULT_BLOCKED_NETWORKS, parse_address
from plugport._fetch_rules import (
    CAPABILITY,
    DEFAULT_ALLOWED_REQUEST_HEADERS,
    DEFAULT_METHODS,
    FetchPolicy,
    FetchResult,
    Target,
    check_address,
    check_addresses,
    check_body,
    check_headers,
    check_method,
    check_url,
    endpoint_text,
    parse_endpoint,
)
from plugport._permissions import RULES
from plugport.errors import InvalidInputError, NetworkFetchError, PermissionDeniedError
from plugport.runtime.audit import AuditEvent
from plugport.runtime.capabilities import _log_hygiene
from plugport.runtime.capabilities._record import Calls, Capability, nothing_stored
from plugport.runtime.capabilities._resolver import Resolver, StaticResolver, SystemResolver
from plugport.runtime.capabilities._secret_source import RefreshingSource
from plugport.runtime.capabilities.secrets import (
    CredentialUse,
    credential_use,
    inject,
    redact,
    secret_value,
    url_credential_target,
)
from plugport.sdk._api import NetProxy

__all__ = [
    "CAPABILITY",
    "DEFAULT_ALLOWED_REQUEST_HEADERS",
    "DEFAULT_BLOCKED_NETWORKS",
    "DEFAULT_METHODS",
    "PIN_EXTENSION",
    "RECORD",
    "DeniedCallback",
    "FetchPolicy",
    "FetchResult",
    "NetCalls",
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
    "parse_endpoint",
]

PIN_EXTENSION = "plugport.connect_to"
"""Request extension naming the checked address :class:`PinnedTransport` must connect to."""
PLAIN_PORT_EXTENSION = "plugport.plain_port"
"""With the pin: send the request over plain HTTP to this port (an operator's local service)."""

_DROPPED_RESPONSE_HEADERS = frozenset({"set-cookie", "set-cookie2"})
_log_hygiene.install()
_REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})

DeniedCallback = Callable[[str, str, str], None]
"""``on_denied(plugin, capability, reason)``: told of every refusal, e.g. by the audit log."""


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
        plain_port = request.extensions.get(PLAIN_PORT_EXTENSION)
        dropped = (PIN_EXTENSION, PLAIN_PORT_EXTENSION)
        extensions = {k: v for k, v in request.extensions.items() if k not in dropped}
        if isinstance(plain_port, int):  # the operator's local server for this name
            request.url = request.url.copy_with(scheme="http", host=str(address), port=plain_port)
            request.extensions = extensions
            return await self._transport_for(f"local {name}").handle_async_request(request)
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
        credential: tuple[CredentialUse, bytes] | None = None,
    ) -> FetchResult:
        """Fetch ``url`` for the plugin, re-checking every redirect hop. With ``credential``
        (how it is used, and its value), every hop must be one of its targets; the value is
        added to each request as it is sent, and taken out of the answer."""
        secret = _Secret(self.plugin, *credential) if credential is not None else None
        try:
            result = await self._fetch(url, method, headers, body, json, secret=secret)
        except PermissionDeniedError as exc:
            reason = exc.reason if secret is None else secret.clean(exc.reason)
            if self._on_denied is not None:
                self._on_denied(exc.plugin, exc.capability, reason)
            if secret is None:
                raise
            raise PermissionDeniedError(exc.plugin, exc.capability, reason) from None
        except InvalidInputError as exc:
            if secret is None:
                raise
            raise InvalidInputError(secret.clean(str(exc))) from None
        except NetworkFetchError as exc:
            if secret is None:
                raise
            raise NetworkFetchError(
                exc.plugin, secret.clean(exc.url), secret.clean(exc.reason)
            ) from None
        if secret is None:
            return result
        return FetchResult(
            result.status,
            {name: secret.clean(value) for name, value in result.headers.items()},
            redact(result.body, secret.forms),
            secret.clean(result.url),
            result.elapsed_ms,
            result.private_targets,
            result.served,
        )

    async def _fetch(
        self,
        url: str,
        method: str,
        headers: Mapping[str, str] | None,
        body: bytes | None,
        json: object,
        *,
        secret: _Secret | None,
    ) -> FetchResult:
        policy, plugin = self.policy, self.plugin
        loop = asyncio.get_running_loop()
        started = loop.time()
        method = check_method(method, policy, plugin=plugin)
        header_list = check_headers(headers, policy, plugin=plugin)
        content, content_type = check_body(body, json, policy, plugin=plugin)
        if content_type and not any(name == "content-type" for name, _ in header_list):
            header_list.append(("content-type", content_type))
        hop = _Hop(
            check_url(url, policy, plugin=plugin), method, tuple(header_list), content, secret
        )
        if secret is not None:
            secret.check(hop.target.url)
            secret.prepare(hop.target.url, list(hop.headers))  # refuses a clash up front
        visited = [hop.target.url]
        private: list[str] = []
        served: list[str] = []
        deadline = started + policy.timeout_ms / 1000
        try:
            async with asyncio.timeout_at(deadline):
                pinned = PinnedTransport(self._transport, ssl_context=self._ssl_context)
                async with pinned:
                    status, response_headers, data = await self._follow(
                        pinned, hop, deadline, visited, private=private, served=served
                    )
                # Keep the certificate store the first fetch loaded; it is costly to build.
                self._ssl_context = pinned.ssl_context
        except (TimeoutError, httpx.TimeoutException):
            timed_out = f"no complete response within timeout_ms = {policy.timeout_ms}"
            raise NetworkFetchError(plugin, visited[-1], timed_out) from None
        except httpx.HTTPError as exc:
            raise NetworkFetchError(plugin, visited[-1], f"{type(exc).__name__}: {exc}") from None
        elapsed_ms = (loop.time() - started) * 1000
        return FetchResult(
            status,
            response_headers,
            data,
            visited[-1],
            elapsed_ms,
            tuple(dict.fromkeys(private)),
            tuple(dict.fromkeys(served)),
        )

    async def _follow(
        self,
        transport: PinnedTransport,
        hop: _Hop,
        deadline: float,
        visited: list[str],
        *,
        private: list[str],
        served: list[str],
    ) -> tuple[int, dict[str, str], bytes]:
        """``visited`` gets each hop's URL, ``private`` each listed local endpoint answered."""
        policy, plugin = self.policy, self.plugin
        redirects = 0
        while True:
            addresses = await self._resolve(hop.target)
            response = await self._send(transport, hop, addresses, deadline)
            if hop.target.local:
                private.append(endpoint_text(_canonical(hop.target.host), hop.target.port))
            elif hop.target.served_by is not None:
                served.append(f"{hop.target.host} at {endpoint_text(*hop.target.served_by)}")
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
            if hop.secret is not None:
                hop.secret.check(hop.target.url, redirected=True)
            visited.append(hop.target.url)

    async def _resolve(self, target: Target) -> list[str]:
        if target.served_by is not None:
            return [target.served_by[0]]  # the operator's local server: nothing to look up
        if target.local and _is_address(target.host):
            return [target.host]  # a listed address literal: nothing to look up
        try:
            addresses = await self._resolver.resolve(target.host, target.port)
        except OSError as exc:
            raise NetworkFetchError(
                self.plugin, target.url, f"could not resolve {target.host}: {exc}"
            ) from None
        if not addresses:
            raise NetworkFetchError(self.plugin, target.url, f"{target.host} has no addresses")
        check_addresses(target, addresses, self.policy, plugin=self.plugin)
        return addresses

    async def _send(
        self, transport: PinnedTransport, hop: _Hop, addresses: list[str], deadline: float
    ) -> httpx.Response:
        failures: list[str] = []
        for address in addresses:
            remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
            url, headers = hop.target.url, list(hop.headers)
            if hop.secret is not None:
                url, headers = hop.secret.prepare(url, headers)
            request = httpx.Request(
                hop.method,
                url,
                headers=[*headers, ("accept-encoding", "identity")],
                content=hop.content,
                extensions={
                    PIN_EXTENSION: address,
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), remaining),
                },
            )
            if hop.target.served_by is not None:
                request.extensions[PLAIN_PORT_EXTENSION] = hop.target.served_by[1]
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
    secret: _Secret | None = None

    def redirected(self, status: int, target: Target) -> _Hop:
        """The request for the next hop, changing method and body as browsers and httpx do."""
        method, headers, content = self.method, self.headers, self.content
        if (status == 303 and method != "HEAD") or (status in (301, 302) and method == "POST"):
            method, content = "GET", None
            headers = tuple((n, v) for n, v in headers if n != "content-type")
        if target.origin != self.target.origin:
            # Credentials were meant for the first origin only.
            headers = tuple((n, v) for n, v in headers if n != "authorization")
        return _Hop(target, method, headers, content, self.secret)


class _Secret:
    """One fetch's credential: refuses a hop it may not go to, adds itself to each request as
    it is sent (so no URL or header the plugin sees holds it), and cleans answers and errors."""

    def __init__(self, plugin: str, use: CredentialUse, value: bytes) -> None:
        self.plugin = plugin
        self.use = use
        self._value = value
        self.forms: list[bytes] = [value]

    def check(self, url: str, *, redirected: bool = False) -> None:
        if self.use.admits(url):
            return
        where = "a redirect to " if redirected else ""
        raise PermissionDeniedError(
            self.plugin,
            "net.fetch",
            f"credential {self.use.name!r} may be sent only to "
            f"{', '.join(self.use.targets) or 'no target'}; {where}{url} is not one of them",
        )

    def prepare(
        self, url: str, headers: list[tuple[str, str]]
    ) -> tuple[str, list[tuple[str, str]]]:
        try:
            url, headers, forms = inject(self.use, self._value, url, headers)
        except UnicodeDecodeError:
            raise PermissionDeniedError(
                self.plugin, "net.fetch", f"secret {self.use.name!r} is not text"
            ) from None
        self.forms = forms
        return url, headers

    def clean(self, text: str) -> str:
        return redact(text.encode("utf-8", "surrogateescape"), self.forms).decode(
            "utf-8", "surrogateescape"
        )


def _canonical(host: str) -> str:
    try:
        return str(parse_address(host))
    except ValueError:
        return host


def _is_address(host: str) -> bool:
    try:
        parse_address(host)
    except ValueError:
        return False
    return True


def _result_headers(headers: httpx.Headers) -> dict[str, str]:
    result: dict[str, str] = {}
    for name, value in headers.multi_items():
        if name in _DROPPED_RESPONSE_HEADERS:
            continue
        result[name] = f"{result[name]}, {value}" if name in result else value
    return result


class NetCalls(Calls):
    """``api.net.*`` for one plugin: one :class:`NetworkBroker`, made on the first fetch, with
    the hosts the plugin was granted and the host's fetch options."""

    _broker: NetworkBroker | None = None

    async def fetch(  # noqa: PLR0917 - the proxy's positional call, as NetProxy.fetch
        self,
        url: str = "",
        method: str = "GET",
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
        json: Any = None,
        credential: str | None = None,
    ) -> dict[str, Any]:
        secret = None
        source = self.services.secrets
        if credential is not None:
            use = credential_use(self.grants, credential)
            if use.kind == "oauth2" and isinstance(source, RefreshingSource):
                secret = (use, await source.current(self.plugin, credential))
            else:
                secret = (use, secret_value(source, self.plugin, credential))
            if use.kind == "url":
                url = url_credential_target(use, secret[1], url)
        result = await self._network().fetch(
            url, method=method, headers=headers, body=body, json=json, credential=secret
        )
        if (
            secret is not None
            and secret[0].kind == "oauth2"
            and result.status == 401
            and isinstance(source, RefreshingSource)
        ):
            # Revoked or expired early: a new token, and the request once more (a 401 means
            # the target did not act on it).
            secret = (secret[0], await source.refreshed(self.plugin, secret[0].name, secret[1]))
            result = await self._network().fetch(
                url, method=method, headers=headers, body=body, json=json, credential=secret
            )
        if credential is not None:
            self.services.audit.record(
                AuditEvent(
                    self.plugin,
                    "credential",
                    f"sent credential {credential!r} to {result.url} (HTTP {result.status})",
                    "net.fetch",
                )
            )
        policy = self.grants.local_policy
        allowed_by = f"the operator's policy ({policy})" if policy else "plugport dev --allow-local"
        for endpoint in result.private_targets:
            self.services.audit.record(
                AuditEvent(
                    self.plugin,
                    "private-target",
                    f"reached private target {endpoint} (fetched {result.url}, HTTP "
                    f"{result.status}), allowed by {allowed_by}",
                    "net.fetch",
                )
            )
        for place in result.served:
            self.services.audit.record(
                AuditEvent(
                    self.plugin,
                    "private-target",
                    f"sent to {place}, a local service (fetched {result.url}, HTTP "
                    f"{result.status}), by the operator's [local-services]",
                    "net.fetch",
                )
            )
        return {
            "status": result.status,
            "headers": result.headers,
            "body": result.body,
            "url": result.url,
            "elapsed_ms": result.elapsed_ms,
        }

    def _network(self) -> NetworkBroker:
        if self._broker is None:
            options = self.services.net
            policy = FetchPolicy(
                allowed=tuple(self.grants.permissions.network),
                timeout_ms=options.timeout_ms,
                max_response_bytes=options.max_response_bytes,
                local_endpoints=self.grants.local_endpoints,
                local_policy=self.grants.local_policy,
                local_services=self.grants.local_services,
            )
            self._broker = NetworkBroker(self.plugin, policy, options.resolver, options.transport)
        return self._broker


RECORD = Capability("net", RULES["net"], NetCalls, NetProxy, nothing_stored)
