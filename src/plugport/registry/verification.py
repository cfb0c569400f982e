"""Checking that a namespace's owner controls a domain: a DNS TXT record or an HTTPS file that
holds the token the registry issued (:mod:`plugport.registry._verification_rules` decides what
counts), and the loop that checks verified domains again.

The HTTPS check is a fetch of a URL the registry builds from a name an outsider chose, so it
runs the same SSRF rules as a plugin's ``net.fetch`` (:mod:`plugport._fetch_rules`) on every
hop: https only, the domain or its subdomains only, never an address literal, every address DNS
gives checked against the private, loopback and link-local ranges, redirects checked again,
the connection made to a checked address (so a second DNS answer cannot move it), with the
certificate verified against the name, and caps on size, redirects and time. The one way to
reach a loopback server (tests) is :attr:`CheckOptions.loopback`, which names it exactly, as
the host's ``[local-services]`` do; the certificate is still verified, against
:attr:`CheckOptions.ca_file` when given.

DNS sits behind :class:`DomainResolver` (TXT records and addresses): :class:`SystemResolver`
asks the machine's resolver (``/etc/resolv.conf``) with a small standard-library client
(:mod:`plugport.registry._dns_wire`), :class:`MemoryResolver` answers from tables (tests).
"""

from __future__ import annotations

import contextlib
import secrets
import socket
import ssl
import struct
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import httpx
from sqlalchemy.orm import Session, sessionmaker

from plugport._fetch_rules import FetchPolicy, Target, check_addresses, check_url
from plugport.errors import PermissionDeniedError
from plugport.registry import _dns_wire
from plugport.registry._periodic import periodically
from plugport.registry._verification_rules import (
    file_proves,
    https_url,
    txt_name,
    txt_proves,
    txt_value,
)

__all__ = [
    "CheckOptions",
    "CheckResult",
    "DomainChecker",
    "DomainResolver",
    "MemoryResolver",
    "SystemResolver",
    "rechecking",
]

_WHO = "registry"  # the "plugin" the shared fetch rules name in a refusal; never shown
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_USER_AGENT = "plugport-registry-domain-check"


class DomainResolver(Protocol):
    """DNS for the check: a name's TXT records (each one's strings joined; ``[]`` when the
    name or its TXT records do not exist; OSError when DNS could not answer), and every
    address a host name has (OSError when it has none)."""

    def txt(self, name: str, *, timeout_s: float) -> list[str]: ...

    def addresses(self, host: str, port: int) -> list[str]: ...


class MemoryResolver:
    """Answers from tables (name -> TXT records, host -> addresses); ``calls`` records every
    lookup. A host missing from the table fails as DNS does; ``failing`` names fail with a
    server error, as a DNS outage does."""

    def __init__(
        self,
        txt: Mapping[str, Sequence[str]] | None = None,
        addresses: Mapping[str, Sequence[str]] | None = None,
        *,
        failing: Sequence[str] = (),
    ) -> None:
        self.txt_records = {k.lower(): list(v) for k, v in (txt or {}).items()}
        self.address_table = {k.lower(): list(v) for k, v in (addresses or {}).items()}
        self.failing = {name.lower() for name in failing}
        self.calls: list[str] = []

    def txt(self, name: str, *, timeout_s: float) -> list[str]:
        self.calls.append(f"TXT {name}")
        if name.lower() in self.failing:
            raise OSError(f"DNS server failure for {name}")
        return list(self.txt_records.get(name.lower(), []))

    def addresses(self, host: str, port: int) -> list[str]:
        self.calls.append(f"A {host}")
        try:
            return list(self.address_table[host.lower()])
        except KeyError:
            raise socket.gaierror(socket.EAI_NONAME, f"{host} is not in the table") from None


class SystemResolver:
    """The machine's resolver: addresses through ``getaddrinfo``; TXT records by asking the
    first name servers of ``resolv_conf`` over UDP (TCP when the answer is truncated)."""

    def __init__(self, resolv_conf: Path = Path("/etc/resolv.conf")) -> None:
        self.resolv_conf = resolv_conf

    def nameservers(self) -> list[str]:
        try:
            lines = self.resolv_conf.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as exc:
            raise OSError(f"cannot read {self.resolv_conf} for name servers: {exc}") from None
        found = [
            parts[1]
            for line in lines
            if len(parts := line.split()) >= 2 and parts[0] == "nameserver"
        ]
        if not found:
            raise OSError(f"no nameserver line in {self.resolv_conf}: the DNS check is unavailable")
        return found[:3]

    def addresses(self, host: str, port: int) -> list[str]:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
        return list(dict.fromkeys(str(info[4][0]) for info in infos))

    def txt(self, name: str, *, timeout_s: float) -> list[str]:
        deadline = time.monotonic() + timeout_s
        failures: list[str] = []
        for server in self.nameservers():
            try:
                return self._ask(server, name, deadline)
            except _dns_wire.NameNotFoundError:
                return []
            except (OSError, ValueError) as exc:
                failures.append(f"{server}: {exc}")
        raise OSError(f"no name server answered for {name} ({'; '.join(failures)})")

    def _ask(self, server: str, name: str, deadline: float) -> list[str]:
        query_id = secrets.randbits(16)
        query = _dns_wire.build_query(query_id, name)
        family = socket.AF_INET6 if ":" in server else socket.AF_INET
        with socket.socket(family, socket.SOCK_DGRAM) as udp:
            udp.connect((server, 53))  # a connected socket only receives from that server
            udp.send(query)
            while True:
                udp.settimeout(_remaining(deadline))
                data = udp.recv(65535)
                try:
                    records, truncated = _dns_wire.parse_txt_response(data, query_id, name)
                except _dns_wire.NameNotFoundError:
                    raise
                except ValueError:
                    continue  # not our answer (a late one, a spoof): keep waiting
                break
        if not truncated:
            return records
        with socket.create_connection((server, 53), timeout=_remaining(deadline)) as tcp:
            tcp.sendall(struct.pack("!H", len(query)) + query)
            (length,) = struct.unpack("!H", _recv_exactly(tcp, 2, deadline))
            data = _recv_exactly(tcp, length, deadline)
        return _dns_wire.parse_txt_response(data, query_id, name)[0]


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TimeoutError("the DNS query timed out")
    return left


def _recv_exactly(sock: socket.socket, size: int, deadline: float) -> bytes:
    chunks = bytearray()
    while len(chunks) < size:
        sock.settimeout(_remaining(deadline))
        chunk = sock.recv(size - len(chunks))
        if not chunk:
            raise OSError("the name server closed the connection mid-answer")
        chunks += chunk
    return bytes(chunks)


@dataclass(frozen=True)
class CheckOptions:
    """How one domain check runs (the registry's ``domain_check_*`` settings)."""

    timeout_s: float = 10.0
    """Each method (DNS, HTTPS) as a whole, redirects included."""
    max_body_bytes: int = 1024
    """The ``.well-known`` file holds a token: anything larger is not a proof."""
    max_redirects: int = 3
    ca_file: Path | None = None
    """Certificates of further CAs to trust besides the usual ones (an internal CA; a test's
    own). Verification is never turned off."""
    loopback: Mapping[str, str] = field(default_factory=dict)
    """Host name -> the loopback ``address:port`` of an HTTPS server that answers for it:
    for tests only, named exactly (:func:`plugport._fetch_rules.parse_local_service`
    refuses anything but a loopback address). Empty in production."""


@dataclass(frozen=True)
class CheckResult:
    """What one check found: which method proved the domain (None: neither), and what each
    method saw, in words for the owner."""

    proved_by: str | None
    dns: str
    https: str

    @property
    def proved(self) -> bool:
        return self.proved_by is not None

    @property
    def why_not(self) -> str:
        return f"DNS: {self.dns}; HTTPS: {self.https}"


class _NotProvedError(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class DomainChecker:
    """Runs both methods for a domain and token: DNS first, HTTPS when DNS does not prove it."""

    def __init__(self, resolver: DomainResolver, options: CheckOptions | None = None) -> None:
        self.resolver = resolver
        self.options = options or CheckOptions()
        self._policy_base = FetchPolicy(
            allowed=(),
            methods=frozenset({"GET"}),
            schemes=frozenset({"https"}),
            max_response_bytes=self.options.max_body_bytes,
            timeout_ms=max(int(self.options.timeout_s * 1000), 1),
            max_redirects=self.options.max_redirects,
            local_services=dict(self.options.loopback),
        )
        self._ssl: ssl.SSLContext | None = None

    def check(self, domain: str, token: str) -> CheckResult:
        dns = self._dns(domain, token)
        if dns == "proved":
            return CheckResult("dns", dns, "not needed")
        try:
            body = self._fetch(domain)
        except _NotProvedError as exc:
            return CheckResult(None, dns, exc.reason)
        if file_proves(body, token):
            return CheckResult("https", dns, "proved")
        return CheckResult(None, dns, f"{https_url(domain)} does not hold the token")

    def _dns(self, domain: str, token: str) -> str:
        name = txt_name(domain)
        try:
            records = self.resolver.txt(name, timeout_s=self.options.timeout_s)
        except (OSError, ValueError) as exc:
            return f"could not read TXT {name} ({exc})"
        if txt_proves(records, token):
            return "proved"
        if not records:
            return f"no TXT record at {name}"
        return f"no TXT record at {name} is {txt_value(token)!r}"

    def _ssl_context(self) -> ssl.SSLContext:
        if self._ssl is None:
            context = httpx.create_ssl_context()
            if self.options.ca_file is not None:
                context.load_verify_locations(cafile=str(self.options.ca_file))
            self._ssl = context
        return self._ssl

    def _fetch(self, domain: str) -> bytes:
        """The ``.well-known`` file's body (200 only), each hop checked by the shared rules."""
        policy = _policy_for(self._policy_base, domain)
        deadline = time.monotonic() + self.options.timeout_s
        try:
            target = check_url(https_url(domain), policy, plugin=_WHO)
            for _ in range(policy.max_redirects + 1):
                addresses = self._addresses(target)
                check_addresses(target, addresses, policy, plugin=_WHO)
                status, location, body = self._get(target, addresses, deadline)
                if status not in _REDIRECTS or location is None:
                    if status != 200:
                        raise _NotProvedError(f"{target.url} answered HTTP {status}")
                    return body
                try:
                    next_url = str(httpx.URL(target.url).join(location))
                except httpx.InvalidURL:
                    raise _NotProvedError(f"{target.url} redirects to an invalid URL") from None
                target = check_url(next_url, policy, plugin=_WHO)
        except PermissionDeniedError as exc:
            raise _NotProvedError(f"refused: {exc.reason}") from None
        raise _NotProvedError(f"more than {policy.max_redirects} redirects")

    def _addresses(self, target: Target) -> list[str]:
        if target.served_by is not None:
            return [target.served_by[0]]
        try:
            found = self.resolver.addresses(target.host, target.port)
        except OSError as exc:
            raise _NotProvedError(f"could not resolve {target.host} ({exc})") from None
        if not found:
            raise _NotProvedError(f"{target.host} has no addresses")
        return found

    def _get(
        self, target: Target, addresses: list[str], deadline: float
    ) -> tuple[int, str | None, bytes]:
        """One GET, to the first checked address that takes the connection, over TLS with the
        certificate verified for the host name (SNI and ``Host`` stay the name)."""
        port = target.served_by[1] if target.served_by is not None else target.port
        failures: list[str] = []
        for address in addresses:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            request = httpx.Request(
                "GET",
                target.url,
                headers={
                    "accept": "text/plain",
                    "accept-encoding": "identity",
                    "user-agent": _USER_AGENT,
                },
                extensions={
                    "sni_hostname": target.host,
                    "timeout": dict.fromkeys(("connect", "read", "write", "pool"), left),
                },
            )
            request.url = request.url.copy_with(host=address, port=port)
            # A transport per hop: a connection verified for one name is never reused for
            # another name on the same address.
            with httpx.HTTPTransport(
                verify=self._ssl_context(), trust_env=False, retries=0
            ) as transport:
                try:
                    response = transport.handle_request(request)
                except httpx.ConnectError as exc:
                    failures.append(f"{address}: {exc}")
                    continue
                except httpx.TimeoutException:
                    raise _NotProvedError(_too_slow(self.options.timeout_s, target)) from None
                except httpx.HTTPError as exc:
                    raise _NotProvedError(f"{target.url}: {type(exc).__name__}: {exc}") from None
                try:
                    return self._read(response, target, deadline)
                finally:
                    response.close()
        if not failures:
            raise _NotProvedError(_too_slow(self.options.timeout_s, target))
        raise _NotProvedError(f"could not connect to {target.host} ({'; '.join(failures)})")

    def _read(
        self, response: httpx.Response, target: Target, deadline: float
    ) -> tuple[int, str | None, bytes]:
        limit = self.options.max_body_bytes
        too_big = f"{target.url}: the answer is larger than {limit} bytes, not a token"
        location = response.headers.get("location")
        if response.status_code in _REDIRECTS:
            return response.status_code, location, b""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > limit:
            raise _NotProvedError(too_big)
        body = bytearray()
        try:
            for chunk in response.iter_raw():
                body += chunk
                if len(body) > limit:
                    raise _NotProvedError(too_big)
                if time.monotonic() > deadline:
                    raise _NotProvedError(_too_slow(self.options.timeout_s, target))
        except httpx.TimeoutException:
            raise _NotProvedError(_too_slow(self.options.timeout_s, target)) from None
        except httpx.HTTPError as exc:
            raise _NotProvedError(f"{target.url}: {type(exc).__name__}: {exc}") from None
        return response.status_code, location, bytes(body)


def _too_slow(timeout_s: float, target: Target) -> str:
    return f"{target.url}: no complete answer within {timeout_s:g} s"


def _policy_for(base: FetchPolicy, domain: str) -> FetchPolicy:
    """The base policy granting the domain and its subdomains, on port 443 only."""
    return FetchPolicy(
        allowed=(f"{domain}:443", f"*.{domain}:443"),
        methods=base.methods,
        schemes=base.schemes,
        max_response_bytes=base.max_response_bytes,
        timeout_ms=base.timeout_ms,
        max_redirects=base.max_redirects,
        local_services=base.local_services,
    )


Recheck = Callable[[sessionmaker[Session], DomainChecker], object]


def rechecking(
    sessions: sessionmaker[Session],
    checker: DomainChecker,
    recheck: Recheck,
    *,
    interval_s: float,
) -> contextlib.AbstractAsyncContextManager[None]:
    """Run ``recheck`` (one pass over the verified domains that are due) every
    ``interval_s``, in a worker thread, for as long as the block runs (the app's lifespan);
    ``interval_s`` 0 turns it off. A failed pass is logged and tried again next time."""
    return periodically(
        lambda: recheck(sessions, checker),
        interval_s=interval_s,
        what="checking verified domains",
        at_start=False,
    )
