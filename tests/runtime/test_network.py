"""``net.fetch``: the pure SSRF checks, table by table, then real fetches against HTTP(S) servers on
127.0.0.1 started here. Connections only ever go to 127.0.0.1 or ::1: every other address in
this file is either only checked or must be refused before anything connects, and the
:class:`LoopbackOnly` transport fails the test if a request is ever sent anywhere else."""

from __future__ import annotations

import asyncio
import datetime
import socket
import ssl
import threading
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from plugport.errors import NetworkFetchError, PermissionDeniedError, PlugportError
from plugport.runtime.capabilities.network import (
    CAPABILITY,
    PIN_EXTENSION,
    FetchPolicy,
    FetchResult,
    NetworkBroker,
    PinnedTransport,
    StaticResolver,
    SystemResolver,
    Target,
    check_address,
    check_addresses,
    check_body,
    check_headers,
    check_method,
    check_url,
    parse_endpoint,
)
from tests._certs import self_signed

PLUGIN = "acme.fetcher"
T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


# --- pure: check_url -----------------------------------------------------------------------------

GRANTS = FetchPolicy(allowed=("allowed.example", "*.wild.example", "api.example:8443"))


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1/", "is an IP address"),
        ("http://localhost/", "not in the plugin's network grants"),
        ("http://[::1]/", "is an IP address"),
        ("http://[::ffff:127.0.0.1]/", "is an IP address"),
        ("http://2130706433/", "is an IP address"),
        ("http://0x7f000001/", "is an IP address"),
        ("http://0177.0.0.1/", "Invalid IPv4 address"),
        ("http://127.1/", "is an IP address"),
        ("http://169.254.169.254/latest/meta-data/", "is an IP address"),
        ("http://10.0.0.1/", "is an IP address"),
        ("http://127%2e0.0.1/", "is an IP address"),
        ("http://allowed.example.0x7f/", "is an IP address"),
        ("https://allowed.example@127.0.0.1/", "user info"),
        ("https://user:pw@allowed.example/", "user info"),
        ("http://allowed.example:8080/", "allowed.example:8080 is not in the plugin's network"),
        ("ftp://allowed.example/", "only http and https URLs may be fetched, not 'ftp'"),
        ("file:///etc/passwd", "not 'file'"),
        ("gopher://allowed.example:70/_", "not 'gopher'"),
        ("//allowed.example/", "not a relative URL"),
        ("http:///path", "has no host"),
        ("http://nope.example/", "nope.example:80 is not in the plugin's network grants"),
        ("http://wild.example/", "wild.example:80 is not in"),
        ("http://evilwild.example/", "evilwild.example:80 is not in"),
        ("https://api.example/", "api.example:443 is not in"),
        ("http://allowed.example:0/", "port 0 is out of range"),
        ("http://allowed.example:99999/", "port 99999 is out of range"),
        ("http://allowed example/", "is not a valid host name"),
        ("http://-allowed.example/", "is not a valid host name"),
        ("http://[::1/", "not a valid URL"),
        ("http://allowed.example/" + "a" * 9000, "longer than 8192"),
    ],
)
def test_check_url_refuses(url: str, reason: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        check_url(url, GRANTS, plugin=PLUGIN)
    assert caught.value.capability == CAPABILITY == "net.fetch"
    assert caught.value.plugin == PLUGIN
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("url", "target"),
    [
        ("http://allowed.example", Target("http", "allowed.example", 80, "/")),
        ("https://allowed.example/a?b=1#frag", Target("https", "allowed.example", 443, "/a?b=1")),
        ("HTTPS://ALLOWED.Example./x", Target("https", "allowed.example", 443, "/x")),
        ("http://a.wild.example/", Target("http", "a.wild.example", 80, "/")),
        ("https://deep.a.wild.example/", Target("https", "deep.a.wild.example", 443, "/")),
        ("https://api.example:8443/v1", Target("https", "api.example", 8443, "/v1")),
        (
            "https://xn--bcher-kva.wild.example/",
            Target("https", "xn--bcher-kva.wild.example", 443, "/"),
        ),
        ("https://bücher.wild.example/", Target("https", "xn--bcher-kva.wild.example", 443, "/")),
        ("https://1.2.3.4.wild.example/", Target("https", "1.2.3.4.wild.example", 443, "/")),
    ],
)
def test_check_url_accepts_granted_names(url: str, target: Target) -> None:
    assert check_url(url, GRANTS) == target


def test_target_url_is_what_gets_requested() -> None:
    assert Target("https", "api.example", 8443, "/v1?x=1").url == "https://api.example:8443/v1?x=1"
    assert Target("http", "allowed.example", 80, "/").url == "http://allowed.example/"


def test_a_granted_localhost_is_still_refused_by_its_address() -> None:
    policy = FetchPolicy(allowed=("localhost",))
    assert check_url("http://localhost/", policy).host == "localhost"
    out = fetch(policy, "http://localhost/", resolver={"localhost": ["127.0.0.1"]})
    assert_denied(out, "localhost resolves to 127.0.0.1, which is loopback (127.0.0.0/8)")
    assert out.sent == []


# --- pure: check_address -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "reason"),
    [
        ("127.0.0.1", "loopback (127.0.0.0/8)"),
        ("127.255.0.9", "loopback"),
        ("::1", "loopback (::1)"),
        ("::ffff:127.0.0.1", "IPv4-mapped 127.0.0.1: loopback"),
        ("::ffff:10.1.1.1", "IPv4-mapped 10.1.1.1: private"),
        ("169.254.169.254", "link-local (cloud metadata"),
        ("169.254.10.1", "link-local (169.254.0.0/16)"),
        ("10.0.0.1", "private (10.0.0.0/8)"),
        ("172.16.0.1", "private (172.16.0.0/12)"),
        ("172.31.255.255", "private (172.16.0.0/12)"),
        ("192.168.1.1", "private (192.168.0.0/16)"),
        ("100.64.0.1", "carrier-grade NAT (100.64.0.0/10)"),
        ("0.0.0.0", "unspecified"),  # noqa: S104 (only checked, never bound)
        ("0.1.2.3", "unspecified"),
        ("224.0.0.1", "multicast (224.0.0.0/4)"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved (240.0.0.0/4)"),
        ("255.255.255.255", "broadcast"),
        ("192.0.2.1", "documentation"),
        ("198.18.0.1", "benchmarking"),
        ("::", "unspecified (::)"),
        ("fc00::1", "unique local (fc00::/7)"),
        ("fd00:ec2::254", "unique local"),
        ("fe80::1", "link-local (fe80::/10)"),
        ("fe80::1%eth0", "link-local (fe80::/10)"),
        ("fec0::1", "site-local"),
        ("ff02::1", "multicast (ff00::/8)"),
        ("ff0e::1", "multicast (ff00::/8)"),
        ("2001:db8::1", "documentation"),
        ("64:ff9b::7f00:1", "NAT64 address embedding 127.0.0.1: loopback"),
        ("64:ff9b::a9fe:a9fe", "NAT64 address embedding 169.254.169.254: link-local (cloud"),
        ("64:ff9b:1::1", "NAT64 local use"),
        ("2002:7f00:1::", "6to4 address embedding 127.0.0.1: loopback"),
        ("2002:a00:1::1", "6to4 address embedding 10.0.0.1: private"),
        ("2001:0:4136:e378:8000:63bf:3fff:fdd2", "Teredo address (client) embedding 192.0.2.45"),
        ("2001:0:808:808::f7f7:f7f7", "Teredo tunnel (2001::/32)"),
        ("::127.0.0.1", "IPv4-compatible address embedding 127.0.0.1: loopback"),
        ("::8.8.8.8", "IPv4-compatible, deprecated"),
        ("100::1", "discard-only"),
        ("not-an-ip", "not an IP address"),
        ("", "not an IP address"),
    ],
)
def test_check_address_refuses_non_public_ranges(address: str, reason: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        check_address(address, GRANTS, plugin=PLUGIN, host="x.example")
    assert caught.value.reason.startswith(f"x.example resolves to {address}, which is ")
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "93.184.216.34", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"],
)
def test_check_address_accepts_public_addresses(address: str) -> None:
    check_address(address, GRANTS)


# --- local endpoints (plugport dev --allow-local): exact host:port, nothing more ------------


LOCAL = FetchPolicy(allowed=(), local_endpoints=("127.0.0.1:8080", "localhost:9000", "[::1]:7000"))


@pytest.mark.parametrize(
    ("url", "host", "port"),
    [
        ("http://127.0.0.1:8080/x?y=1", "127.0.0.1", 8080),
        ("https://127.0.0.1:8080/", "127.0.0.1", 8080),
        ("http://localhost:9000/", "localhost", 9000),
        ("http://LOCALHOST.:9000/", "localhost", 9000),
        ("http://[::1]:7000/", "::1", 7000),
        ("http://[0:0::1]:7000/", "0:0::1", 7000),  # the same address, spelled out
    ],
)
def test_a_listed_local_endpoint_is_allowed_exactly(url: str, host: str, port: int) -> None:
    target = check_url(url, LOCAL, plugin=PLUGIN)
    assert (target.host, target.port, target.local) == (host, port, True)
    check_addresses(target, ["127.0.0.1", "::1"], LOCAL, plugin=PLUGIN)  # local is why it is listed


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:8081/", "'127.0.0.1' is an IP address"),  # another port
        ("http://127.0.0.1/", "'127.0.0.1' is an IP address"),  # the default port
        ("http://localhost:8080/", "localhost:8080 is not in the plugin's network grants"),
        ("http://127.0.0.1:9000/", "'127.0.0.1' is an IP address"),  # localhost's port, by address
        ("http://127.1:8080/", "'127.1' is an IP address"),
        ("http://2130706433:8080/", "'2130706433' is an IP address"),
        ("http://0x7f000001:8080/", "'0x7f000001' is an IP address"),
        ("http://[::ffff:127.0.0.1]:8080/", "is an IP address"),  # IPv6 form of a listed v4
        ("http://[::1]:8080/", "'::1' is an IP address"),
        ("http://127.0.0.1:7000/", "'127.0.0.1' is an IP address"),  # [::1]'s port, over v4
        ("http://localhost:7000/", "localhost:7000 is not in the plugin's network grants"),
        ("http://user@127.0.0.1:8080/", "user info"),
        ("file://127.0.0.1:8080/etc/passwd", "only http and https"),
    ],
)
def test_anything_but_the_listed_endpoint_is_still_refused(url: str, reason: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        check_url(url, LOCAL, plugin=PLUGIN)
    assert reason in caught.value.reason


def test_a_granted_name_resolving_to_a_listed_address_is_still_refused() -> None:
    policy = FetchPolicy(allowed=("api.example:8080",), local_endpoints=("127.0.0.1:8080",))
    target = check_url("http://api.example:8080/", policy, plugin=PLUGIN)
    assert target.local is False  # listed by address, not by this name
    with pytest.raises(PermissionDeniedError, match=r"resolves to 127\.0\.0\.1, which is loopback"):
        check_addresses(target, ["127.0.0.1"], policy, plugin=PLUGIN)


@pytest.mark.parametrize(
    ("endpoint", "parsed"),
    [
        ("127.0.0.1:8080", ("127.0.0.1", 8080)),
        ("LocalHost:80", ("localhost", 80)),
        ("[::1]:443", ("::1", 443)),
        ("[0:0:0:0:0:0:0:1]:443", ("::1", 443)),
        ("fake-api.test:65535", ("fake-api.test", 65535)),
    ],
)
def test_endpoints_are_parsed_into_one_spelling(endpoint: str, parsed: tuple[str, int]) -> None:
    assert parse_endpoint(endpoint) == parsed


@pytest.mark.parametrize(
    ("endpoint", "message"),
    [
        ("127.0.0.1", "write HOST:PORT"),
        (":8080", "write HOST:PORT"),
        ("127.0.0.1:0", "port must be a number from 1 to 65535"),
        ("127.0.0.1:65536", "port must be a number from 1 to 65535"),
        ("127.0.0.1:80a", "port must be a number"),
        ("::1:8080", "goes in brackets"),
        ("[127.0.0.1]:80", "only an IPv6 address goes in brackets"),
        ("[::1]8080", "write HOST:PORT"),
        ("127.1:8080", "neither an IP address in its usual form nor a host name"),
        ("bad_host!:80", "neither an IP address"),
    ],
)
def test_bad_endpoints_are_refused_when_the_policy_is_built(endpoint: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_endpoint(endpoint)
    with pytest.raises(ValueError, match=message):
        FetchPolicy(allowed=(), local_endpoints=(endpoint,))


def test_operators_can_block_more_ranges_with_their_own_label() -> None:
    policy = FetchPolicy(
        allowed=(),
        blocked_networks=(("93.184.216.0/24", "our own datacenter"),),
    )
    with pytest.raises(PermissionDeniedError, match="our own datacenter"):
        check_address("93.184.216.34", policy)
    # The non-global fallback still refuses what the shorter table no longer names.
    with pytest.raises(PermissionDeniedError, match="non-public"):
        check_address("127.0.0.1", policy)
    check_address("8.8.8.8", policy)


def test_policy_rejects_broken_settings() -> None:
    with pytest.raises(ValueError, match="port must be a number"):
        FetchPolicy(allowed=(), local_endpoints=("127.0.0.1:99999",))
    with pytest.raises(ValueError, match="max_response_bytes"):
        FetchPolicy(allowed=(), max_response_bytes=-1)
    with pytest.raises(ValueError, match="timeout_ms"):
        FetchPolicy(allowed=(), timeout_ms=0)
    policy = FetchPolicy(
        allowed=["a.example"],  # type: ignore[arg-type]
        methods=frozenset({"get"}),
        allowed_request_headers=frozenset({"Accept"}),
    )
    assert policy.allowed == ("a.example",)
    assert policy.methods == {"GET"}
    assert policy.allowed_request_headers == {"accept"}


# --- pure: method, headers, body -----------------------------------------------------------------


@pytest.mark.parametrize("method", ["CONNECT", "TRACE", "OPTIONS", "PROPFIND", "G ET", ""])
def test_check_method_refuses(method: str) -> None:
    with pytest.raises(PermissionDeniedError, match="is not allowed"):
        check_method(method, GRANTS)


def test_check_method_normalises_case() -> None:
    assert check_method("post", GRANTS) == "POST"


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"Host": "127.0.0.1"}, "'host' is set by the host"),
        ({"Proxy-Authorization": "Basic x"}, "'proxy-authorization' is set by the host"),
        ({"Cookie": "a=b"}, "'cookie' is set by the host"),
        ({"Transfer-Encoding": "chunked"}, "'transfer-encoding'"),
        ({"Content-Length": "5"}, "'content-length'"),
        ({"Connection": "upgrade"}, "'connection'"),
        ({"X-Forwarded-For": "127.0.0.1"}, "'x-forwarded-for'"),
        ({"X-HTTP-Method-Override": "DELETE"}, "'x-http-method-override'"),
        ({"Accept-Encoding": "gzip"}, "'accept-encoding'"),
        ({"Referer": "https://x.example/"}, "'referer' is not allowed (allowed: accept"),
        ({"Bad Name": "x"}, "is not a valid HTTP token"),
        ({"Accept": "a\r\nHost: evil"}, "control character"),
        ({"X-Big": "a" * 20_000}, "max_request_header_bytes = 16384"),
    ],
)
def test_check_headers_refuses(headers: dict[str, str], reason: str) -> None:
    with pytest.raises(PermissionDeniedError) as caught:
        check_headers(headers, GRANTS)
    assert reason in caught.value.reason


def test_check_headers_passes_allowlisted_and_custom_headers() -> None:
    headers = {"Accept": "application/json", "Authorization": "Bearer t", "X-Api-Key": "k\tv"}
    assert check_headers(headers, GRANTS) == [
        ("accept", "application/json"),
        ("authorization", "Bearer t"),
        ("x-api-key", "k\tv"),
    ]
    assert check_headers(None, GRANTS) == []
    strict = FetchPolicy(allowed=(), allow_custom_x_headers=False)
    with pytest.raises(PermissionDeniedError, match="'x-api-key' is not allowed"):
        check_headers({"X-Api-Key": "k"}, strict)


def test_check_body() -> None:
    small = FetchPolicy(allowed=(), max_request_bytes=10)
    assert check_body(b"0123456789", None, small) == (b"0123456789", None)
    assert check_body(None, {"a": 1}, small) == (b'{"a":1}', "application/json")
    assert check_body(None, None, small) == (None, None)
    with pytest.raises(PermissionDeniedError, match="11 bytes; max_request_bytes = 10"):
        check_body(b"0" * 11, None, small)
    with pytest.raises(PermissionDeniedError, match="max_request_bytes = 10"):
        check_body(None, ["x" * 20], small)
    with pytest.raises(TypeError, match="not both"):
        check_body(b"", {"a": 1}, small)


# --- a real HTTP server on 127.0.0.1 -------------------------------------------------------------


@dataclass(frozen=True)
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


Route = Callable[["Handler"], None]


class Handler(BaseHTTPRequestHandler):
    server: TestServer

    def serve(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.server.seen.append(Seen(self.command, self.path, headers, body))
        route = self.server.routes.get(self.path.split("?")[0])
        if route is None:
            self.reply(404, b"no such route")
        else:
            route(self)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = serve

    def reply(
        self,
        status: int,
        body: bytes = b"",
        headers: tuple[tuple[str, str], ...] = (),
        *,
        length: bool = True,
    ) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        if length:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class TestServer(ThreadingHTTPServer):
    __test__ = False
    daemon_threads = True

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.routes: dict[str, Route] = {}
        self.seen: list[Seen] = []
        self.release = threading.Event()
        if ssl_context is not None:
            self.socket = ssl_context.wrap_socket(self.socket, server_side=True)
        self.port = self.server_address[1]
        self._thread = threading.Thread(target=self.serve_forever, args=(0.02,), daemon=True)

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose (caps, timeouts); that is not a test failure

    def __enter__(self) -> TestServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.shutdown()
        self.server_close()
        self._thread.join()


def ok(body: bytes, *headers: tuple[str, str]) -> Route:
    return lambda h: h.reply(200, body, headers)


def redirect(location: str, status: int = 302) -> Route:
    return lambda h: h.reply(status, b"", (("Location", location),))


def echo(h: Handler) -> None:
    seen = h.server.seen[-1]
    h.reply(200, f"{seen.method} {seen.headers.get('content-type')} ".encode() + seen.body)


@pytest.fixture
def server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


@pytest.fixture
def other_server() -> Iterator[TestServer]:
    with TestServer() as srv:
        yield srv


class LoopbackOnly(httpx.AsyncBaseTransport):
    """A real transport that refuses, before connecting, any address but this machine's."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport(retries=0)
        self.sent: list[tuple[str, str | None, str | None]] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.sent.append(
            (host, request.headers.get("host"), request.extensions.get("sni_hostname"))
        )
        assert host in ("127.0.0.1", "::1"), f"test tried to reach {request.url}"
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@dataclass
class Outcome:
    result: FetchResult | None
    error: PlugportError | None
    denials: list[tuple[str, str, str]] = field(default_factory=list)
    sent: list[tuple[str, str | None, str | None]] = field(default_factory=list)
    resolver: StaticResolver | None = None


def fetch(
    policy: FetchPolicy,
    url: str,
    *,
    resolver: dict[str, list[str]] | StaticResolver | None = None,
    **kwargs: Any,
) -> Outcome:
    """One fetch through a broker whose connections can only reach this machine."""
    if resolver is None:
        resolver = {"allowed.example": ["127.0.0.1"]}
    if not isinstance(resolver, StaticResolver):
        resolver = StaticResolver(resolver)

    async def go() -> Outcome:
        denials: list[tuple[str, str, str]] = []
        async with LoopbackOnly() as guard:
            broker = NetworkBroker(
                PLUGIN,
                policy,
                resolver,
                guard,
                on_denied=lambda *args: denials.append(args),
            )
            try:
                result: FetchResult | None = await broker.fetch(url, **kwargs)
                error: PlugportError | None = None
            except PlugportError as exc:
                result, error = None, exc
        return Outcome(result, error, denials, guard.sent, resolver)

    return run(go())


def assert_denied(out: Outcome, reason: str) -> PermissionDeniedError:
    assert isinstance(out.error, PermissionDeniedError), out
    assert (out.error.plugin, out.error.capability) == (PLUGIN, "net.fetch")
    assert reason in out.error.reason
    assert out.denials == [(PLUGIN, "net.fetch", out.error.reason)]
    return out.error


def assert_failed(out: Outcome, reason: str) -> NetworkFetchError:
    assert isinstance(out.error, NetworkFetchError), out
    assert out.error.plugin == PLUGIN
    assert reason in out.error.reason
    assert out.denials == []
    return out.error


def grants(port: int, *more: str, **settings: Any) -> FetchPolicy:
    """Granted ``allowed.example:port`` and ``more``; the first is also a local endpoint (the
    test server is on 127.0.0.1), the others are not."""
    settings.setdefault("local_endpoints", (f"allowed.example:{port}",))
    return FetchPolicy(allowed=(f"allowed.example:{port}", *more), **settings)


# --- end to end ----------------------------------------------------------------------------------


def test_get_goes_to_the_checked_address_with_the_host_name_in_the_host_header(
    server: TestServer,
) -> None:
    server.routes["/hello"] = ok(
        b"hi there",
        ("Content-Type", "text/plain"),
        ("Set-Cookie", "session=secret"),
        ("X-Multi", "a"),
        ("X-Multi", "b"),
    )
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/hello?x=1")
    assert out.error is None
    assert out.result is not None
    assert out.result.status == 200
    assert out.result.body == b"hi there"
    assert out.result.headers["content-type"] == "text/plain"
    assert out.result.headers["x-multi"] == "a, b"
    assert "set-cookie" not in out.result.headers
    assert out.result.url == f"http://allowed.example:{server.port}/hello?x=1"
    assert out.result.elapsed_ms > 0
    # Connected to the resolver's answer, resolved exactly once, name kept for HTTP.
    assert out.resolver is not None
    assert out.resolver.calls == [("allowed.example", server.port)]
    assert out.sent == [("127.0.0.1", f"allowed.example:{server.port}", None)]
    [seen] = server.seen
    assert (seen.method, seen.path) == ("GET", "/hello?x=1")
    assert seen.headers["host"] == f"allowed.example:{server.port}"
    assert seen.headers["accept-encoding"] == "identity"
    assert out.denials == []


class RebindingResolver(StaticResolver):
    """Answers loopback (a listed endpoint in tests) first, then a private address: DNS
    rebinding."""

    def __init__(self) -> None:
        super().__init__({})
        self.answers = [["127.0.0.1"], ["10.0.0.1"]]

    async def resolve(self, host: str, port: int) -> list[str]:
        self.calls.append((host, port))
        return self.answers.pop(0) if self.answers else ["10.0.0.1"]


def test_a_second_dns_answer_cannot_move_the_connection(server: TestServer) -> None:
    server.routes["/"] = ok(b"pinned")
    resolver = RebindingResolver()
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/", resolver=resolver)
    assert out.result is not None
    assert out.result.body == b"pinned"
    assert len(resolver.calls) == 1  # nothing resolved the name again to connect
    assert [host for host, _, _ in out.sent] == ["127.0.0.1"]


def test_every_redirect_hop_is_resolved_and_checked_again(server: TestServer) -> None:
    # The first hop is the listed local endpoint; the second a granted name that is not
    # listed, whose (second) DNS answer is private.
    server.routes["/"] = redirect(f"http://rebound.example:{server.port}/next")
    server.routes["/next"] = ok(b"unreachable")
    resolver = RebindingResolver()
    policy = grants(server.port, f"rebound.example:{server.port}")
    out = fetch(policy, f"http://allowed.example:{server.port}/", resolver=resolver)
    assert_denied(out, "rebound.example resolves to 10.0.0.1, which is private (10.0.0.0/8)")
    assert [host for host, _ in resolver.calls] == ["allowed.example", "rebound.example"]
    assert [s.path for s in server.seen] == ["/"]
    assert [host for host, _, _ in out.sent] == ["127.0.0.1"]


def test_default_transport_pins_plain_http(server: TestServer) -> None:
    server.routes["/"] = redirect("/final")
    server.routes["/final"] = ok(b"default transport")
    resolver = StaticResolver({"allowed.example": ["127.0.0.1"]})
    broker = NetworkBroker(PLUGIN, grants(server.port), resolver)  # no on_denied hook

    async def go() -> FetchResult:
        result = await broker.fetch(f"http://allowed.example:{server.port}/")
        with pytest.raises(PermissionDeniedError):
            await broker.fetch("http://127.0.0.1/")
        return result

    # allowed.example does not exist in any DNS here; only the pinned address can work.
    assert run(go()).body == b"default transport"
    assert [s.path for s in server.seen] == ["/", "/final"]
    assert {s.headers["host"] for s in server.seen} == {f"allowed.example:{server.port}"}


def _certificate(tmp_path: Path, name: str) -> tuple[Path, Path, str]:
    cert_file, key_file = self_signed(tmp_path, name, [name])
    return cert_file, key_file, cert_file.read_text()


def _tls_fetch(tmp_path: Path, cert_name: str) -> tuple[FetchResult | PlugportError, list[str]]:
    cert_file, key_file, pem = _certificate(tmp_path, cert_name)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert_file, key_file)
    sni: list[str] = []

    def record_sni(_sock: ssl.SSLObject, name: str | None, _ctx: ssl.SSLContext) -> None:
        sni.append(name or "")

    server_context.sni_callback = record_sni  # type: ignore[assignment]
    client_context = ssl.create_default_context(cadata=pem)

    async def go(port: int) -> FetchResult:
        resolver = StaticResolver({"allowed.example": ["127.0.0.1"]})
        broker = NetworkBroker(PLUGIN, grants(port), resolver, ssl_context=client_context)
        return await broker.fetch(f"https://allowed.example:{port}/secure")

    with TestServer(server_context) as srv:
        srv.routes["/secure"] = ok(b"over tls")
        try:
            return run(go(srv.port)), sni
        except PlugportError as exc:
            return exc, sni


def test_tls_connects_to_the_address_but_verifies_the_host_name(tmp_path: Path) -> None:
    # The certificate names only allowed.example, not 127.0.0.1: it verifies only if SNI and
    # hostname checking use the name while the socket goes to the pinned address.
    result, sni = _tls_fetch(tmp_path, "allowed.example")
    assert isinstance(result, FetchResult)
    assert result.body == b"over tls"
    assert sni == ["allowed.example"]


def test_tls_with_a_certificate_for_another_name_fails(tmp_path: Path) -> None:
    result, sni = _tls_fetch(tmp_path, "other.example")
    assert isinstance(result, NetworkFetchError)
    assert "certificate verify failed" in result.reason
    assert sni == ["allowed.example"]


def test_pinned_transport_rewrites_the_socket_address_only() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(204)

    async def go() -> None:
        async with PinnedTransport(httpx.MockTransport(handler)) as pinned:
            request = httpx.Request(
                "GET", "https://api.example:8443/v1", extensions={PIN_EXTENSION: "::1"}
            )
            response = await pinned.handle_async_request(request)
            assert response.status_code == 204
            with pytest.raises(ValueError, match=r"no plugport\.connect_to address"):
                await pinned.handle_async_request(httpx.Request("GET", "https://api.example/"))

    run(go())
    [request] = seen
    assert str(request.url) == "https://[::1]:8443/v1"
    assert request.headers["host"] == "api.example:8443"
    assert request.extensions["sni_hostname"] == "api.example"
    assert PIN_EXTENSION not in request.extensions


def test_redirect_to_a_name_not_granted_is_refused_and_never_reached(
    server: TestServer, other_server: TestServer
) -> None:
    server.routes["/"] = redirect(f"http://forbidden.example:{other_server.port}/")
    other_server.routes["/"] = ok(b"secret")
    resolver = {"allowed.example": ["127.0.0.1"], "forbidden.example": ["127.0.0.1"]}
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/", resolver=resolver)
    assert_denied(out, f"forbidden.example:{other_server.port} is not in the plugin's network")
    assert len(server.seen) == 1
    assert other_server.seen == []


def test_redirect_to_an_ip_literal_is_refused(server: TestServer) -> None:
    server.routes["/"] = redirect(f"http://127.0.0.1:{server.port}/admin")
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/")
    assert_denied(out, "'127.0.0.1' is an IP address")
    assert [s.path for s in server.seen] == ["/"]


def test_redirect_to_a_granted_name_on_a_private_address_is_refused_before_connecting(
    server: TestServer,
) -> None:
    server.routes["/"] = redirect(f"http://evil.example:{server.port}/")
    resolver = {"allowed.example": ["127.0.0.1"], "evil.example": ["10.0.0.1"]}
    policy = grants(server.port, f"evil.example:{server.port}")
    out = fetch(policy, f"http://allowed.example:{server.port}/", resolver=resolver)
    assert_denied(out, "evil.example resolves to 10.0.0.1, which is private (10.0.0.0/8)")
    assert [host for host, _, _ in out.sent] == ["127.0.0.1"]  # only the first hop
    assert len(server.seen) == 1


def test_a_listed_address_is_fetched_without_dns_and_only_on_its_port(
    server: TestServer, other_server: TestServer
) -> None:
    server.routes["/"] = ok(b"the fake service")
    server.routes["/away"] = redirect(f"http://127.0.0.1:{other_server.port}/")
    server.routes["/home"] = redirect("/")
    other_server.routes["/"] = ok(b"secret")
    policy = FetchPolicy(allowed=(), local_endpoints=(f"127.0.0.1:{server.port}",))
    out = fetch(policy, f"http://127.0.0.1:{server.port}/")
    assert out.result is not None
    assert out.result.body == b"the fake service"
    assert out.resolver is not None
    assert out.resolver.calls == []  # an address: nothing to resolve
    assert out.sent == [("127.0.0.1", f"127.0.0.1:{server.port}", None)]
    # A redirect back onto the endpoint is followed; off it (another port) is refused.
    out = fetch(policy, f"http://127.0.0.1:{server.port}/home")
    assert out.result is not None
    assert out.result.body == b"the fake service"
    out = fetch(policy, f"http://127.0.0.1:{server.port}/away")
    assert_denied(out, "'127.0.0.1' is an IP address")
    assert other_server.seen == []
    # Another port of the same address, asked for directly: refused, nothing sent.
    out = fetch(policy, f"http://127.0.0.1:{other_server.port}/")
    assert_denied(out, "'127.0.0.1' is an IP address")
    assert out.sent == []
    assert other_server.seen == []


def test_a_listed_address_opens_no_name_that_resolves_to_it(server: TestServer) -> None:
    server.routes["/"] = ok(b"should not be served")
    policy = FetchPolicy(
        allowed=(f"allowed.example:{server.port}",),
        local_endpoints=(f"127.0.0.1:{server.port}",),
    )
    out = fetch(policy, f"http://allowed.example:{server.port}/")
    assert_denied(out, "allowed.example resolves to 127.0.0.1, which is loopback")
    assert server.seen == []


def test_redirect_loop_stops_at_max_redirects(server: TestServer) -> None:
    server.routes["/loop"] = redirect("/loop")
    out = fetch(grants(server.port, max_redirects=3), f"http://allowed.example:{server.port}/loop")
    assert_failed(out, "more than max_redirects = 3")
    assert len(server.seen) == 4


def test_redirects_change_method_and_drop_credentials_across_origins(
    server: TestServer,
) -> None:
    port = server.port
    server.routes["/post-303"] = redirect("/echo", 303)
    server.routes["/post-307"] = redirect("/echo", 307)
    server.routes["/post-302"] = redirect(f"http://allowed.example:{port}/echo", 302)
    server.routes["/cross"] = redirect(f"http://other.example:{port}/echo", 301)
    server.routes["/echo"] = echo
    endpoints = (f"allowed.example:{port}", f"other.example:{port}")
    policy = grants(port, f"other.example:{port}", local_endpoints=endpoints)
    resolver = {"allowed.example": ["127.0.0.1"], "other.example": ["127.0.0.1"]}
    base = f"http://allowed.example:{port}"
    auth = {"Authorization": "Bearer t"}

    out = fetch(policy, f"{base}/post-303", method="POST", body=b"data", headers=auth)
    assert out.result is not None
    assert out.result.body == b"GET None "
    assert out.result.url == f"{base}/echo"
    assert server.seen[-1].headers["authorization"] == "Bearer t"  # same origin keeps it

    out = fetch(policy, f"{base}/post-307", method="POST", json={"k": "v"}, headers=auth)
    assert out.result is not None
    assert out.result.body == b'POST application/json {"k":"v"}'

    out = fetch(policy, f"{base}/post-302", method="POST", body=b"x")
    assert out.result is not None
    assert out.result.body == b"GET None "

    out = fetch(policy, f"{base}/cross", headers=auth, resolver=resolver)
    assert out.result is not None
    assert out.result.url == f"http://other.example:{port}/echo"
    assert server.seen[-1].headers["host"] == f"other.example:{port}"
    assert "authorization" not in server.seen[-1].headers


def test_redirect_without_location_or_with_a_bad_one(server: TestServer) -> None:
    server.routes["/bare"] = lambda h: h.reply(302, b"moved, somewhere")
    server.routes["/bad"] = redirect("http://[::1")
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/bare")
    assert out.result is not None
    assert (out.result.status, out.result.body) == (302, b"moved, somewhere")
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/bad")
    assert_failed(out, "redirect to an invalid Location")


def test_response_over_max_response_bytes_fails_naming_the_limit(server: TestServer) -> None:
    server.routes["/declared"] = ok(b"x" * 2000)
    server.routes["/streamed"] = lambda h: h.reply(200, b"y" * 2000, length=False)
    server.routes["/fits"] = lambda h: h.reply(200, b"z" * 1000, length=False)
    policy = grants(server.port, max_response_bytes=1000)
    base = f"http://allowed.example:{server.port}"
    for path in ("/declared", "/streamed"):
        assert_failed(fetch(policy, base + path), "larger than max_response_bytes = 1000")
    out = fetch(policy, base + "/fits")
    assert out.result is not None
    assert out.result.body == b"z" * 1000
    out = fetch(policy, base + "/declared", method="HEAD")
    assert out.result is not None
    assert (out.result.status, out.result.body) == (200, b"")


def test_slow_server_fails_at_the_deadline(server: TestServer) -> None:
    def slow(h: Handler) -> None:
        h.server.release.wait(10)
        h.reply(200, b"late")

    server.routes["/slow"] = slow
    loop_start = datetime.datetime.now(datetime.UTC)
    out = fetch(grants(server.port, timeout_ms=200), f"http://allowed.example:{server.port}/slow")
    assert_failed(out, "no complete response within timeout_ms = 200")
    assert datetime.datetime.now(datetime.UTC) - loop_start < datetime.timedelta(seconds=3)


def test_a_slow_resolver_counts_against_the_deadline() -> None:
    class SlowResolver(StaticResolver):
        async def resolve(self, host: str, port: int) -> list[str]:
            await asyncio.sleep(5)
            raise AssertionError("unreachable")

    out = fetch(
        FetchPolicy(allowed=("allowed.example",), timeout_ms=50),
        "http://allowed.example/",
        resolver=SlowResolver({}),
    )
    assert_failed(out, "timeout_ms = 50")
    assert out.error is not None
    assert out.error.url == "http://allowed.example/"


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        ({"method": "CONNECT"}, "method 'CONNECT' is not allowed"),
        ({"method": "TRACE"}, "method 'TRACE' is not allowed"),
        ({"headers": {"Host": "127.0.0.1"}}, "'host' is set by the host"),
        ({"headers": {"Proxy-Authorization": "x"}}, "'proxy-authorization' is set by the host"),
        ({"method": "POST", "body": b"x" * 101}, "max_request_bytes = 100"),
        ({"method": "PUT", "json": "y" * 200}, "max_request_bytes = 100"),
    ],
)
def test_forbidden_requests_are_refused_before_anything_is_sent(
    server: TestServer, kwargs: dict[str, Any], reason: str
) -> None:
    policy = grants(server.port, max_request_bytes=100)
    out = fetch(policy, f"http://allowed.example:{server.port}/", **kwargs)
    assert_denied(out, reason)
    assert out.resolver is not None
    assert out.resolver.calls == []
    assert out.sent == []
    assert server.seen == []


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:{port}/",
        "http://localhost:{port}/",
        "file:///etc/passwd",
        "https://allowed.example:{port}@127.0.0.1:{port}/",
    ],
)
def test_refused_urls_send_nothing(server: TestServer, url: str) -> None:
    out = fetch(grants(server.port), url.format(port=server.port))
    assert isinstance(out.error, PermissionDeniedError)
    assert out.denials == [(PLUGIN, "net.fetch", out.error.reason)]
    assert out.sent == []
    assert server.seen == []


def test_without_the_escape_hatch_the_loopback_server_is_refused(server: TestServer) -> None:
    server.routes["/"] = ok(b"should not be served")
    policy = grants(server.port, local_endpoints=())
    out = fetch(policy, f"http://allowed.example:{server.port}/")
    assert_denied(out, "allowed.example resolves to 127.0.0.1, which is loopback (127.0.0.0/8)")
    assert out.sent == []
    assert server.seen == []


def test_a_name_with_a_public_and_a_loopback_address_is_refused(server: TestServer) -> None:
    policy = grants(server.port, local_endpoints=())
    resolver = {"allowed.example": ["93.184.216.34", "127.0.0.1"]}
    out = fetch(policy, f"http://allowed.example:{server.port}/", resolver=resolver)
    assert_denied(out, "resolves to 127.0.0.1, which is loopback")
    assert out.sent == []
    assert server.seen == []


def test_next_checked_address_is_tried_when_one_refuses_connections(server: TestServer) -> None:
    server.routes["/"] = ok(b"second address")
    policy = grants(server.port)  # a listed endpoint: any address its name has
    out = fetch(
        policy,
        f"http://allowed.example:{server.port}/",
        resolver={"allowed.example": ["::1", "127.0.0.1"]},  # the server listens on v4 only
    )
    assert out.result is not None
    assert out.result.body == b"second address"
    assert [host for host, _, _ in out.sent] == ["::1", "127.0.0.1"]


def test_unreachable_unresolvable_and_empty_answers_fail() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    policy = grants(closed_port)
    url = f"http://allowed.example:{closed_port}/"
    assert_failed(fetch(policy, url), "could not connect to allowed.example (127.0.0.1:")
    assert_failed(fetch(policy, url, resolver={}), "could not resolve allowed.example")
    assert_failed(fetch(policy, url, resolver={"allowed.example": []}), "has no addresses")


def test_a_server_that_breaks_http_fails_cleanly(server: TestServer) -> None:
    def garbage(h: Handler) -> None:
        h.wfile.write(b"this is not HTTP\r\n\r\n")

    server.routes["/"] = garbage
    out = fetch(grants(server.port), f"http://allowed.example:{server.port}/")
    assert_failed(out, "RemoteProtocolError")


def test_head_json_and_custom_headers(server: TestServer) -> None:
    server.routes["/echo"] = echo
    url = f"http://allowed.example:{server.port}/echo"
    out = fetch(grants(server.port), url, method="head")
    assert out.result is not None
    assert (out.result.status, out.result.body) == (200, b"")
    out = fetch(
        grants(server.port),
        url,
        method="PATCH",
        json={"n": 1},
        headers={"X-Api-Key": "k", "Content-Type": "application/merge-patch+json"},
    )
    assert out.result is not None
    assert out.result.body == b'PATCH application/merge-patch+json {"n":1}'
    assert server.seen[-1].headers["x-api-key"] == "k"


def test_system_resolver_uses_getaddrinfo() -> None:
    # A numeric host: getaddrinfo answers without asking any DNS server.
    assert run(SystemResolver().resolve("127.0.0.1", 80)) == ["127.0.0.1"]
