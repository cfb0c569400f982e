"""The operator's policy for one host home, ``HOME/policy.toml``: read here for the CLI and the
host service alike. The rule it protects: what a plugin may reach beyond its manifest's grants
(``[private-targets]``) is written by the operator in this file and by no one else; a plugin's
manifest has no way to say it.

    [private-targets]
    "acme.jira" = ["10.0.0.5:8443", "jira.internal:443"]
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from plugport.errors import InvalidInputError
from plugport.manifest import check_plugin_name
from plugport.runtime.capabilities._fetch_rules import endpoint_text, parse_endpoint

__all__ = [
    "POLICY_FILE",
    "PRIVATE_TARGETS",
    "parse_private_targets",
    "policy_location",
    "private_targets",
    "read_policy",
]

POLICY_FILE = "policy.toml"
PRIVATE_TARGETS = "private-targets"


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
