"""Which IP addresses a plugin's fetch may never reach: every range that is not the public
internet, including the IPv6 forms that carry an IPv4 address inside them.

Pure functions over :mod:`ipaddress`; :mod:`plugport.runtime.capabilities.network` turns a
reason returned here into a refusal.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from ipaddress import IPv4Address, IPv4Network, IPv6Address, IPv6Network, ip_address, ip_network

IPAddress = IPv4Address | IPv6Address
IPNetwork = IPv4Network | IPv6Network

# Checked in order, so a more specific range comes before the one that contains it and names
# the refusal ("cloud metadata" rather than just "link-local"). Anything not listed here that
# ipaddress does not consider globally reachable is refused too, with a generic reason.
DEFAULT_BLOCKED_NETWORKS: tuple[tuple[str, str], ...] = (
    ("0.0.0.0/8", "unspecified ('this network', 0.0.0.0/8)"),
    ("10.0.0.0/8", "private (10.0.0.0/8)"),
    ("100.64.0.0/10", "carrier-grade NAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
    ("169.254.169.254/32", "link-local (cloud metadata, 169.254.169.254)"),
    ("169.254.0.0/16", "link-local (169.254.0.0/16)"),
    ("172.16.0.0/12", "private (172.16.0.0/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation (192.0.2.0/24)"),
    ("192.88.99.0/24", "6to4 relay anycast (192.88.99.0/24)"),
    ("192.168.0.0/16", "private (192.168.0.0/16)"),
    ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
    ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
    ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
    ("255.255.255.255/32", "broadcast (255.255.255.255)"),
    ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("::/96", "IPv4-compatible, deprecated (::/96)"),
    ("64:ff9b:1::/48", "NAT64 local use (64:ff9b:1::/48)"),
    ("100::/64", "discard-only (100::/64)"),
    ("2001::/32", "Teredo tunnel (2001::/32)"),
    ("2001:db8::/32", "documentation (2001:db8::/32)"),
    ("fc00::/7", "unique local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("fec0::/10", "site-local, deprecated (fec0::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
)

_NAT64 = IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = IPv6Network("::/96")


def parse_address(text: str) -> IPAddress:
    """An address as a resolver returns it; raises ValueError for anything else."""
    return ip_address(text)


def parse_labelled_networks(
    table: Sequence[tuple[str, str]],
) -> tuple[tuple[IPNetwork, str], ...]:
    return _parsed(tuple(table))


@functools.lru_cache(maxsize=64)
def _parsed(table: tuple[tuple[str, str], ...]) -> tuple[tuple[IPNetwork, str], ...]:
    # A policy is built per fetch and per delivery; its (usually default) table is parsed once.
    return tuple((ip_network(cidr), label) for cidr, label in table)


def _embedded_ipv4(address: IPv6Address) -> list[tuple[str, IPv4Address]]:
    """IPv4 addresses an IPv6 address routes to or through, with the mechanism's name."""
    found: list[tuple[str, IPv4Address]] = []
    if address in _NAT64:
        found.append(("a NAT64 address", IPv4Address(int(address) & 0xFFFFFFFF)))
    if address.sixtofour is not None:
        found.append(("a 6to4 address", address.sixtofour))
    if address.teredo is not None:
        server, client = address.teredo
        found += [("a Teredo address (server)", server), ("a Teredo address (client)", client)]
    if address in _IPV4_COMPATIBLE and int(address) > 1:
        found.append(("an IPv4-compatible address", IPv4Address(int(address) & 0xFFFFFFFF)))
    return found


def blocked_reason(
    address: IPAddress,
    blocked: Sequence[tuple[IPNetwork, str]],
) -> str | None:
    """Why ``address`` must not be reached, naming its range; None if it is public."""
    if isinstance(address, IPv6Address):
        mapped = address.ipv4_mapped
        if mapped is not None:
            # A socket connects to ::ffff:a.b.c.d as to a.b.c.d itself.
            inner = blocked_reason(mapped, blocked)
            return None if inner is None else f"IPv4-mapped {mapped}: {inner}"
        for mechanism, embedded in _embedded_ipv4(address):
            inner = blocked_reason(embedded, blocked)
            if inner is not None:
                return f"{mechanism} embedding {embedded}: {inner}"
    for net, label in blocked:
        if address.version == net.version and address in net:
            return label
    if not address.is_global:
        return "non-public (not globally routable)"
    return None
