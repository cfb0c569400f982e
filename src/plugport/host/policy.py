"""The operator's policy for one host home, ``HOME/policy.toml``: read here for the CLI and the
host service alike. The rule it protects: what a plugin may reach beyond its manifest's grants
(``[private-targets]``) is written by the operator in this file and by no one else; a plugin's
manifest has no way to say it.

    [private-targets]
    "acme.jira" = ["10.0.0.5:8443", "jira.internal:443"]

    [local-services]            # a local server answers for a service (a fake, a mock)
    "plugport.slack" = { "slack.com" = "127.0.0.1:8123", "hooks.slack.com" = "127.0.0.1:8123" }

    [trust]                     # how registries are verified (docs/trust.md)
    index_fallback = true
    [trust.tuf_roots]
    "https://plugins.example.com" = "plugins.example.com.root.json"
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from plugport._fetch_rules import (
    endpoint_text,
    parse_endpoint,
    parse_local_service,
)
from plugport.errors import InvalidInputError
from plugport.manifest import check_plugin_name

__all__ = [
    "LOCAL_SERVICES",
    "POLICY_FILE",
    "PRIVATE_TARGETS",
    "TRUST",
    "TrustPolicy",
    "local_services",
    "parse_local_services",
    "parse_private_targets",
    "parse_trust",
    "policy_location",
    "private_targets",
    "read_policy",
    "trust_policy",
]

POLICY_FILE = "policy.toml"
PRIVATE_TARGETS = "private-targets"
LOCAL_SERVICES = "local-services"
TRUST = "trust"


def read_policy(home: Path) -> dict[str, Any]:
    """``HOME/policy.toml`` as a table (empty when there is none)."""
    path = home / POLICY_FILE
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text())
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: not a valid policy ({exc})") from None


def parse_private_targets(table: object, *, where: str) -> dict[str, tuple[str, ...]]:
    """Plugin name -> the ``host:port`` endpoints it may reach although they are private, each
    in the one spelling the network broker compares (``10.0.0.5:8443``, ``[::1]:8080``), from
    the ``[private-targets]`` table; :class:`InvalidInputError` naming ``where`` and the key
    for anything else. Decided without I/O."""
    section = f"{where} [{PRIVATE_TARGETS}]"
    if not isinstance(table, Mapping):
        raise InvalidInputError(
            f'{section}: must be a table of plugin names, e.g. "acme.jira" = ["10.0.0.5:8443"]'
        )
    found: dict[str, tuple[str, ...]] = {}
    for plugin, endpoints in table.items():
        try:
            check_plugin_name(str(plugin))
        except ValueError as exc:
            raise InvalidInputError(f"{section} {plugin!r}: not a plugin name ({exc})") from None
        if not isinstance(endpoints, list) or not all(isinstance(e, str) for e in endpoints):
            raise InvalidInputError(
                f'{section} {plugin!r}: must be a list of "HOST:PORT" strings, '
                f'e.g. "{plugin}" = ["10.0.0.5:8443"]'
            )
        parsed: list[str] = []
        for endpoint in endpoints:
            try:
                parsed.append(endpoint_text(*parse_endpoint(endpoint)))
            except ValueError as exc:
                raise InvalidInputError(
                    f"{section} {plugin!r}: {exc} (the port is always written)"
                ) from None
        found[str(plugin)] = tuple(dict.fromkeys(parsed))
    return found


def private_targets(home: Path) -> dict[str, tuple[str, ...]]:
    """``HOME/policy.toml``'s ``[private-targets]`` (empty when there is none)."""
    policy = read_policy(home)
    if PRIVATE_TARGETS not in policy:
        return {}
    return parse_private_targets(policy[PRIVATE_TARGETS], where=str(home / POLICY_FILE))


def policy_location(home: Path) -> str:
    """How refusals and the audit name the place an operator writes a private target."""
    return f"[{PRIVATE_TARGETS}] in {home / POLICY_FILE}"


def parse_local_services(table: object, *, where: str) -> dict[str, dict[str, str]]:
    """Plugin name -> {host name -> loopback ``address:port``} from the ``[local-services]``
    table: the plugin's requests to that host (checked against its grants as written) are
    answered by the local server over plain HTTP. :class:`InvalidInputError` naming ``where``
    and the key for anything else. Decided without I/O."""
    section = f"{where} [{LOCAL_SERVICES}]"
    example = '{ "slack.com" = "127.0.0.1:8123" }'
    if not isinstance(table, Mapping):
        raise InvalidInputError(
            f'{section}: must be a table of plugin names, e.g. "acme.slack" = {example}'
        )
    found: dict[str, dict[str, str]] = {}
    for plugin, services in table.items():
        try:
            check_plugin_name(str(plugin))
        except ValueError as exc:
            raise InvalidInputError(f"{section} {plugin!r}: not a plugin name ({exc})") from None
        if not isinstance(services, Mapping) or not all(
            isinstance(h, str) and isinstance(a, str) for h, a in services.items()
        ):
            raise InvalidInputError(
                f'{section} {plugin!r}: must be a table of host = "ADDRESS:PORT", '
                f'e.g. "{plugin}" = {example}'
            )
        parsed: dict[str, str] = {}
        for host, address in services.items():
            name = host.lower().rstrip(".")
            if not name or ":" in name or "/" in name or "*" in name:
                raise InvalidInputError(
                    f"{section} {plugin!r}: {host!r} is not a host name (no port, path or wildcard)"
                )
            try:
                parsed[name] = endpoint_text(*parse_local_service(address))
            except ValueError as exc:
                raise InvalidInputError(f"{section} {plugin!r} {host!r}: {exc}") from None
        found[str(plugin)] = parsed
    return found


def local_services(home: Path) -> dict[str, dict[str, str]]:
    """``HOME/policy.toml``'s ``[local-services]`` (empty when there is none)."""
    policy = read_policy(home)
    if LOCAL_SERVICES not in policy:
        return {}
    return parse_local_services(policy[LOCAL_SERVICES], where=str(home / POLICY_FILE))


@dataclass(frozen=True)
class TrustPolicy:
    """``[trust]``: the TUF root to verify each registry from (``tuf_roots``: URL -> the
    bytes of the root file the registry's operator published), and whether a registry with
    no TUF root may be verified by its v1 signed index (``index_fallback``)."""

    tuf_roots: Mapping[str, bytes]
    index_fallback: bool


def parse_trust(table: object, *, home: Path, where: str) -> TrustPolicy:
    """``[trust]`` as a :class:`TrustPolicy`, root paths relative to ``home``; a clear
    :class:`InvalidInputError` naming ``where`` and the key for anything else.

        [trust]
        index_fallback = false
        [trust.tuf_roots]
        "https://plugins.example.com" = "plugins.example.com.root.json"
    """
    if table is None:
        return TrustPolicy({}, index_fallback=True)
    if not isinstance(table, Mapping) or set(table) - {"tuf_roots", "index_fallback"}:
        raise InvalidInputError(
            f"{where} [{TRUST}]: a table with tuf_roots (a table of registry URL = root file) "
            "and index_fallback (true or false)"
        )
    fallback = table.get("index_fallback", True)
    if not isinstance(fallback, bool):
        raise InvalidInputError(
            f"{where} [{TRUST}] index_fallback: true or false, not {fallback!r}"
        )
    roots = table.get("tuf_roots", {})
    if not isinstance(roots, Mapping):
        raise InvalidInputError(f"{where} [{TRUST}.tuf_roots]: a table of registry URL = root file")
    found: dict[str, bytes] = {}
    for url, file in roots.items():
        if not str(url).startswith(("https://", "http://")) or not isinstance(file, str):
            raise InvalidInputError(
                f'{where} [{TRUST}.tuf_roots] {url!r}: write "https://registry" = "root.json"'
            )
        path = home / file
        try:
            found[str(url).rstrip("/")] = path.read_bytes()
        except OSError as exc:
            raise InvalidInputError(
                f"{where} [{TRUST}.tuf_roots] {url!r}: cannot read {path} ({exc.strerror})"
            ) from None
    return TrustPolicy(found, index_fallback=fallback)


def trust_policy(home: Path) -> TrustPolicy:
    return parse_trust(read_policy(home).get(TRUST), home=home, where=policy_location(home))
