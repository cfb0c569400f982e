"""The pure half of an SSRF-safe fetch: what a fetch may ask for, decided without I/O.

:func:`check_url` accepts only a granted host *name* (never an address literal, in any of the
spellings resolvers accept); :func:`check_address` accepts only public addresses. Two I/O layers
run both on every hop: the broker of a plugin's ``net.fetch``
(:mod:`plugport.runtime.capabilities.network`) and the registry's domain check
(:mod:`plugport.registry.verification`), which is why these rules live in the shared core.

One exception, per plugin and exact: its ``local_endpoints`` (``127.0.0.1:8080``,
``localhost:8080``, ``[::1]:8080``), set by ``plugport dev --allow-local`` or the operator. A
URL whose host and port are exactly one of them is fetched although it is an address literal,
not granted, and local; nothing else moves (another port, another spelling of the address, a
redirect elsewhere, a name that resolves there but is not itself listed). When the operator's
policy lists them (``local_policy``), a refusal of an address literal or of a name that resolves
to a private address quotes the policy line that would allow it: the operator decides, never
the plugin's manifest.
"""

from __future__ import annotations

import json as jsonlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

import httpx

from plugport._addresses import (
    DEFAULT_BLOCKED_NETWORKS,
    IPNetwork,
    blocked_reason,
    parse_address,
    parse_labelled_networks,
)
from plugport.errors import PermissionDeniedError
from plugport.manifest import match_host

__all__ = [
    "CAPABILITY",
    "DEFAULT_ALLOWED_REQUEST_HEADERS",
    "DEFAULT_METHODS",
    "FetchPolicy",
    "FetchResult",
    "Target",
    "check_address",
    "check_addresses",
    "check_body",
    "check_headers",
    "check_method",
    "check_url",
    "endpoint_text",
    "parse_endpoint",
    "private_target_hint",
]

CAPABILITY = "net.fetch"

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

_DEFAULT_PORTS = {"http": 80, "https": 443}
_MAX_URL_CHARS = 8192
_TOKEN_RE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE_RE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?"
_HOSTNAME_RE = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
# What inet_aton and the WHATWG URL parser read as (part of) an IPv4 address: 127.1, 2130706433,
# 0x7f000001, 0177.0.0.1. A host whose last label looks like this is never a name.
_NUMERIC_LABEL_RE = re.compile(r"0x[0-9a-f]*|[0-9]+")


@dataclass(frozen=True)
class FetchPolicy:
    """What one plugin's fetches may do; built by the host from the plugin's grants."""

    allowed: tuple[str, ...]
    """Granted host patterns (``permissions.network``): ``api.example.com``, ``*.example.com``,
    ``hooks.example.com:8443``; without a port they cover 80 and 443."""
    methods: frozenset[str] = DEFAULT_METHODS
    schemes: frozenset[str] = frozenset(_DEFAULT_PORTS)
    """The URL schemes a hop may use: http and https for plugins; https alone for the
    registry's domain check."""
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
    local_endpoints: tuple[str, ...] = ()
    """``host:port`` endpoints this plugin may reach although they are not granted and are
    local (a fake service in ``plugport dev``, a sidecar the operator names); exact matches
    only. See the module docstring."""
    local_policy: str = ""
    """Where the operator lists this plugin's ``local_endpoints`` (e.g. ``[private-targets] in
    /srv/home/policy.toml``): refusals of private targets then quote the line to write there.
    Empty (``plugport dev``, tests): no such hint."""
    local_services: Mapping[str, str] = field(default_factory=dict)
    """Granted host name -> the loopback ``address:port`` of a local server that answers for it
    over plain HTTP (a fake or a mock of the service; the operator's ``[local-services]``). The
    URL is checked as it is written — grants, credential targets — and only then sent there."""

    _blocked: tuple[tuple[IPNetwork, str], ...] = field(init=False, repr=False, compare=False)
    _local: frozenset[tuple[str, int]] = field(init=False, repr=False, compare=False)
    _served: Mapping[str, tuple[str, int]] = field(init=False, repr=False, compare=False)

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
        object.__setattr__(self, "local_endpoints", tuple(self.local_endpoints))
        object.__setattr__(
            self, "_local", frozenset(parse_endpoint(e) for e in self.local_endpoints)
        )
        object.__setattr__(
            self,
            "_served",
            {name.lower(): parse_local_service(e) for name, e in self.local_services.items()},
        )


def parse_local_service(text: str) -> tuple[str, int]:
    """``(address, port)`` of a local service's ``ADDRESS:PORT``: a loopback address literal
    only (``127.0.0.1:8123``, ``[::1]:8123``), so no name is looked up and nothing leaves the
    machine; ValueError saying so otherwise."""
    host, port = parse_endpoint(text)
    try:
        loopback = parse_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"{text!r}: a local service is a loopback address and port, e.g. 127.0.0.1:8123"
        )
    return host, port


def parse_endpoint(text: str) -> tuple[str, int]:
    """``(host, port)`` of a ``HOST:PORT`` local endpoint, the host in the one form a URL's
    host is compared in (lower case; an address in its canonical spelling); ValueError saying
    how to write it otherwise. An IPv6 address goes in brackets: ``[::1]:8080``."""
    how = f"{text!r}: write HOST:PORT, e.g. 127.0.0.1:8080, localhost:8080 or [::1]:8080"
    if text.startswith("["):
        host, sep, rest = text[1:].partition("]")
        if not sep or not rest.startswith(":"):
            raise ValueError(how)
        port_text = rest[1:]
        try:
            address = parse_address(host)
        except ValueError:
            raise ValueError(f"{text!r}: {host!r} in brackets is not an IPv6 address") from None
        if address.version != 6:
            raise ValueError(f"{text!r}: only an IPv6 address goes in brackets")
        host = str(address)
    else:
        host, sep, port_text = text.rpartition(":")
        if not sep or not host:
            raise ValueError(how)
        if ":" in host:
            raise ValueError(f"{text!r}: an IPv6 address goes in brackets, e.g. [::1]:8080")
        host = host.lower().rstrip(".")
        try:
            host = str(parse_address(host))
        except ValueError:
            if _looks_like_ip(host) or not _HOSTNAME_RE.fullmatch(host) or len(host) > 253:
                raise ValueError(
                    f"{text!r}: {host!r} is neither an IP address in its usual form nor a host name"
                ) from None
    if not port_text.isascii() or not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"{text!r}: the port must be a number from 1 to 65535")
    return host, int(port_text)


def endpoint_text(host: str, port: int) -> str:
    """``host:port`` as :func:`parse_endpoint` reads it (an IPv6 address in brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def private_target_hint(policy: FetchPolicy, plugin: str, host: str, port: int) -> str:
    """The sentence telling the operator which policy line lets ``plugin`` reach
    ``host:port`` (the endpoints listed now, plus this one); ``""`` without ``local_policy``."""
    if not policy.local_policy:
        return ""
    endpoint = endpoint_text(_canonical_host(host), port)
    try:
        parse_endpoint(endpoint)
    except ValueError:  # 127.1, 0x7f000001: not a spelling a policy may list
        return ""
    endpoints = [*policy.local_endpoints, endpoint]
    line = f"{jsonlib.dumps(plugin)} = [{', '.join(jsonlib.dumps(e) for e in endpoints)}]"
    return (
        f" (only the operator can allow a private target: write `{line}` under "
        f"{policy.local_policy}; a plugin's manifest cannot grant it)"
    )


def _canonical_host(host: str) -> str:
    """A URL's host as :func:`parse_endpoint` writes hosts, for the exact comparison."""
    try:
        return str(parse_address(host))
    except ValueError:
        return host


@dataclass(frozen=True)
class Target:
    """A URL that passed :func:`check_url`, in the only form the broker will request."""

    scheme: str
    host: str
    port: int
    path_query: str
    local: bool = False
    """The host and port are one of the policy's ``local_endpoints``: its addresses are not
    checked against the blocked ranges (the operator named this very endpoint)."""
    served_by: tuple[str, int] | None = None
    """The loopback server the operator's ``local_services`` send this host to (plain HTTP)."""

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        netloc = host if _DEFAULT_PORTS[self.scheme] == self.port else f"{host}:{self.port}"
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
    private_targets: tuple[str, ...] = ()
    """The listed ``local_endpoints`` (``host:port``) this fetch reached, redirects included:
    what the host audits as allowed by the operator's policy."""
    served: tuple[str, ...] = ()
    """``host at address:port`` for each hop the operator's ``local_services`` answered."""


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
    if scheme not in _DEFAULT_PORTS or scheme not in policy.schemes:
        shown = repr(scheme) if scheme else "a relative URL"
        allowed = " and ".join(sorted(policy.schemes & _DEFAULT_PORTS.keys()))
        raise _denied(plugin, f"only {allowed} URLs may be fetched, not {shown}")
    if parsed.userinfo:
        raise _denied(plugin, "URLs with user info ('user@host') are refused: they hide the host")
    host = parsed.raw_host.decode("ascii").lower().rstrip(".")
    if not host:
        raise _denied(plugin, "the URL has no host")
    if policy._local:
        port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
        if (_canonical_host(host), port) in policy._local:
            return Target(scheme, host, port, parsed.raw_path.decode("ascii"), local=True)
    port = parsed.port if parsed.port is not None else _DEFAULT_PORTS[scheme]
    if _looks_like_ip(host):
        hint = private_target_hint(policy, plugin, host, port) if 1 <= port <= 65535 else ""
        raise _denied(
            plugin, f"{host!r} is an IP address; only granted host names may be fetched{hint}"
        )
    if not _HOSTNAME_RE.fullmatch(host) or len(host) > 253:
        raise _denied(plugin, f"{host!r} is not a valid host name")
    if not 1 <= port <= 65535:
        raise _denied(plugin, f"port {port} is out of range 1-65535")
    if not any(match_host(pattern, host, port) for pattern in policy.allowed):
        granted = ", ".join(policy.allowed) or "none"
        shown = host if port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
        raise PermissionDeniedError(
            plugin,
            CAPABILITY,
            f"{host}:{port} is not in the plugin's network grants ({granted})",
            f'to allow it, add "{shown}" to `network = [...]` under [permissions] in '
            "plugport.toml, then reinstall the plugin (plugport dev picks the change up on save)",
        )
    served = policy._served.get(host)
    return Target(scheme, host, port, parsed.raw_path.decode("ascii"), served_by=served)


def check_address(
    address: str,
    policy: FetchPolicy,
    *,
    plugin: str = "",
    host: str | None = None,
    port: int | None = None,
) -> None:
    """Refuse ``address`` unless it is on the public internet; the reason names the range,
    e.g. "loopback (127.0.0.0/8)", and with ``host`` and ``port`` the policy line that would
    allow that endpoint (:func:`private_target_hint`)."""
    subject = f"{host} resolves to {address}" if host else f"address {address}"
    try:
        parsed = parse_address(address)
    except ValueError:
        raise _denied(plugin, f"{subject}, which is not an IP address") from None
    reason = blocked_reason(parsed, policy._blocked)
    if reason is not None:
        hint = private_target_hint(policy, plugin, host, port) if host and port else ""
        raise _denied(plugin, f"{subject}, which is {reason}{hint}")


def check_addresses(
    target: Target, addresses: list[str], policy: FetchPolicy, *, plugin: str = ""
) -> None:
    """Every address DNS gave for ``target`` must pass :func:`check_address`, not just the one
    connected to: a name with a public and a private address is an attack on whichever is
    tried first. A listed local endpoint's addresses are exempt; they are why it is listed."""
    if target.local or target.served_by is not None:
        return
    for address in addresses:
        check_address(address, policy, plugin=plugin, host=target.host, port=target.port)


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
