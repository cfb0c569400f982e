"""The ``net.fetch`` fake: a network for the test, plugged in where production plugs in its
own (``NetOptions.resolver`` and ``NetOptions.transport``), so the plugin's fetches still go
through the real :class:`~plugport.runtime.capabilities.network.NetworkBroker`: its URL checks,
the manifest's ``permissions.network`` grants and the address checks all run first. A route, a
cassette or a local server can therefore only answer a request production would have let out;
they never make a host reachable that the manifest does not grant.

Each request is answered by the first of: a declared route (first match wins), a cassette being
replayed, a real local server (``allow_local``) or, while a cassette records without a local
server, the real service. Anything else fails the plugin's fetch with :class:`NoRouteError`
naming what was asked and what is declared, and is kept in ``unmatched`` for the test report.
"""

from __future__ import annotations

import fnmatch
import ipaddress
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from plugport.errors import InvalidInputError
from plugport.runtime.capabilities._resolver import SystemResolver
from plugport.runtime.capabilities.fakes._cassette import (
    Cassette,
    Interaction,
    redact_headers,
)

if TYPE_CHECKING:
    from plugport.runtime.broker import Grants, NetOptions
    from plugport.runtime.supervisor import Supervisor

__all__ = ["FAKE_ADDRESS", "FakeNet", "FakeNetwork", "NoRouteError", "RecordedRequest", "Route"]

FAKE_ADDRESS = "93.184.216.34"
"""What every name resolves to when nothing real is reached: a public address, so the broker's
address checks pass as they would in production. Nothing ever connects to it."""

_GLOB = re.compile(r"[*?\[]")
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class NoRouteError(httpx.TransportError):
    """No route, cassette entry or server answers a request; the broker turns it into the
    plugin's :class:`~plugport.errors.NetworkFetchError`, keeping this message."""


@dataclass(frozen=True)
class Route:
    """``method`` (or ``*``) and a URL pattern: an exact URL, a glob (``*``, ``?``, ``[``) or
    a compiled regular expression (matched in full), with the response to give."""

    method: str
    pattern: str | re.Pattern[str]
    status: int = 200
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""

    def matches(self, method: str, url: str) -> bool:
        if self.method not in ("*", method):
            return False
        if isinstance(self.pattern, re.Pattern):
            return self.pattern.fullmatch(url) is not None
        if _GLOB.search(self.pattern):
            return fnmatch.fnmatchcase(url, self.pattern)
        return url == self.pattern

    def __str__(self) -> str:
        shown = self.pattern.pattern if isinstance(self.pattern, re.Pattern) else self.pattern
        return f"{self.method} {shown}"


@dataclass(frozen=True)
class RecordedRequest:
    """One request that reached the fake network (credentials redacted) and how it ended:
    ``answered_by`` is ``route``, ``cassette``, ``local``, ``live`` or ``unmatched``."""

    method: str
    url: str
    headers: dict[str, str]
    body: bytes
    status: int | None
    answered_by: str

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class FakeNetwork(httpx.AsyncBaseTransport):
    """The test's network: a resolver and a transport in one, shared by the plugins of one
    runtime. Build the runtime with ``NetOptions`` from :meth:`options`."""

    routes: list[Route] = field(default_factory=list)
    requests: list[RecordedRequest] = field(default_factory=list)
    local: tuple[str, int] | None = None
    mounts: list[tuple[tuple[str, ...], tuple[str, int]]] = field(default_factory=list)
    tape: Cassette | None = None
    _pools: dict[str, httpx.AsyncHTTPTransport] = field(default_factory=dict)

    def options(self, **settings: Any) -> NetOptions:
        from plugport.runtime.broker import NetOptions

        return NetOptions(resolver=self, transport=self, **settings)

    # --- what the test declares -----------------------------------------------------------

    def route(
        self,
        method: str,
        url_pattern: str | re.Pattern[str],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
        json: Any = None,
        body: bytes | str | None = None,
    ) -> Route:
        if json is not None and body is not None:
            raise InvalidInputError("route(): give json= or body=, not both")
        if not 100 <= status <= 599:
            raise InvalidInputError(f"route(): status must be 100-599, not {status}")
        header_list = [(k.lower(), v) for k, v in (headers or {}).items()]
        if json is not None:
            content = _json_bytes(json)
            if not any(k == "content-type" for k, _ in header_list):
                header_list.append(("content-type", "application/json"))
        else:
            content = body.encode() if isinstance(body, str) else (body or b"")
        route = Route(method.upper(), url_pattern, status, tuple(header_list), content)
        self.routes.append(route)
        return route

    def allow_local(self, address: str, *, hosts: list[str] | tuple[str, ...] = ()) -> None:
        """Answer requests that no route answers from a real server at ``address``
        (``127.0.0.1:PORT``, ``[::1]:PORT`` or ``localhost:PORT``), over plain HTTP, keeping
        the path, query, method, headers and body. Only loopback: the test's own server.

        With ``hosts`` (names or globs: ``slack.com``, ``*.atlassian.net``), only requests to
        those hosts go to this server, so one test can stand a fake behind each service a
        plugin talks to; without, the server answers for every host no other one claims."""
        self.local_server(address, hosts)

    def local_server(self, address: str, hosts: list[str] | tuple[str, ...] = ()) -> None:
        host, _, port = address.rpartition(":")
        host = host.strip("[]")
        try:
            loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
            number = int(port)
        except ValueError:
            loopback, number = False, 0
        if not loopback or not 1 <= number <= 65535:
            raise InvalidInputError(
                f"allow_local({address!r}): give a loopback HOST:PORT such as "
                "'127.0.0.1:8080'; a test's fakes never reach other machines"
            )
        if not hosts:
            self.local = (host, number)
            return
        names = tuple(h.lower() for h in hosts)
        if not all(isinstance(h, str) and h and "/" not in h for h in names):
            raise InvalidInputError(f"allow_local(hosts={hosts!r}): give host names or globs")
        self.mounts.append((names, (host, number)))

    def _server_for(self, url: str) -> tuple[str, int] | None:
        name = (httpx.URL(url).host or "").lower()
        for hosts, server in self.mounts:
            if any(fnmatch.fnmatchcase(name, pattern) for pattern in hosts):
                return server
        return self.local

    def cassette(self, path: Path | str, mode: str = "replay") -> Cassette:
        """Replay recorded interactions from ``path`` (``replay``), record them into it
        (``record``, starting empty), or replay when it exists and record when not (``once``).
        Recording needs a way to the service: ``allow_local`` or, without it, the internet."""
        self.tape = Cassette.open(path, mode)
        return self.tape

    @property
    def unmatched(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.answered_by == "unmatched"]

    def declared(self) -> str:
        """What could have answered, for a no-route message."""
        parts = [str(route) for route in self.routes]
        if self.tape is not None:
            parts.append(f"cassette {self.tape.path} ({len(self.tape.interactions)} recorded)")
        for hosts, (host, port) in self.mounts:
            parts.append(f"local server {host}:{port} for {', '.join(hosts)}")
        if self.local is not None:
            parts.append(f"local server {self.local[0]}:{self.local[1]}")
        return "; ".join(parts) or "nothing (declare plugin.net.route(...))"

    # --- the resolver ---------------------------------------------------------------------

    async def resolve(self, host: str, port: int) -> list[str]:
        if self._live:
            return await SystemResolver().resolve(host, port)
        return [FAKE_ADDRESS]

    @property
    def _live(self) -> bool:
        return (
            self.tape is not None and self.tape.recording and self.local is None and not self.mounts
        )

    # --- the transport --------------------------------------------------------------------

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = _original_url(request)
        method = request.method
        body = await request.aread()
        headers = redact_headers(request.headers.multi_items())
        headers.pop("host", None)

        def keep(status: int | None, answered_by: str) -> None:
            self.requests.append(RecordedRequest(method, url, headers, body, status, answered_by))

        for route in self.routes:
            if route.matches(method, url):
                keep(route.status, "route")
                return httpx.Response(route.status, headers=list(route.headers), content=route.body)
        tape = self.tape
        if tape is not None and not tape.recording:
            played = tape.find(method, url, body)
            if played is None:
                keep(None, "unmatched")
                raise NoRouteError(
                    f"no recorded interaction for {method} {url} in cassette {tape.path}; "
                    f"closest recorded: {tape.closest(method, url)}; re-record it with "
                    "mode='record' if the plugin's requests changed"
                )
            keep(played.status, "cassette")
            return httpx.Response(
                played.status,
                headers=list(played.response_headers.items()),
                content=played.response_body,
            )
        server = self._server_for(url)
        if server is None and not self._live:
            keep(None, "unmatched")
            raise NoRouteError(f"no route for {method} {url}; declared: {self.declared()}")
        status, response_headers, content = await self._upstream(request, body, server)
        keep(status, "live" if server is None else "local")
        if tape is not None:
            tape.add(
                Interaction(
                    method,
                    url,
                    headers,
                    body,
                    status,
                    redact_headers(response_headers),
                    content,
                )
            )
        return httpx.Response(status, headers=response_headers, content=content)

    async def _upstream(
        self, request: httpx.Request, body: bytes, server: tuple[str, int] | None
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """Send the request on to the local server, or (recording without one) to the address
        the broker checked and pinned, with the TLS name it set."""
        if server is not None:
            host, port = server
            target = request.url.copy_with(scheme="http", host=host, port=port)
            pool_key = f"local {host}:{port}"
        else:
            target = request.url
            pool_key = request.headers.get("host", "")
        forwarded = httpx.Request(
            request.method,
            target,
            headers=request.headers.multi_items(),
            content=body,
            extensions=request.extensions,
        )
        pool = self._pools.get(pool_key)
        if pool is None:
            pool = self._pools[pool_key] = httpx.AsyncHTTPTransport(trust_env=False, retries=0)
        response = await pool.handle_async_request(forwarded)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        kept = [(k, v) for k, v in response.headers.multi_items() if k != "transfer-encoding"]
        return response.status_code, kept, content

    async def aclose(self) -> None:
        pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            await pool.aclose()


def _original_url(request: httpx.Request) -> str:
    """The URL the plugin asked for: the pinned request carries the checked address in its
    URL and the name in its Host header."""
    netloc = request.headers.get("host") or request.url.netloc.decode("ascii")
    return f"{request.url.scheme}://{netloc}{request.url.raw_path.decode('ascii')}"


def _json_bytes(value: Any) -> bytes:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"route(): json= is not JSON ({exc})") from None


class FakeNet:
    """One plugin's view of the test's :class:`FakeNetwork`: declare routes, a local server or
    a cassette, and read the requests made. The network is the runtime's (``NetOptions`` from
    :meth:`FakeNetwork.options`), so plugins of one runtime share it."""

    def __init__(self, runtime: Supervisor, grants: Grants) -> None:
        self.plugin = grants.plugin
        network = runtime.services.net.transport
        if not isinstance(network, FakeNetwork):
            raise InvalidInputError(
                "this runtime fetches for real; build it with "
                "SupervisorConfig(net=FakeNetwork().options()) to fake net.fetch"
            )
        self.network = network
        self.route = network.route
        self.allow_local = network.allow_local
        self.cassette = network.cassette

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request that reached the network, oldest first. (The broker does not tell the
        network which plugin asked, so with several plugins in one runtime these are all of
        theirs.)"""
        return list(self.network.requests)

    @property
    def unmatched(self) -> list[RecordedRequest]:
        return self.network.unmatched

    def close(self) -> None:
        """Nothing per plugin; the runtime's owner closes the network (``aclose``)."""
