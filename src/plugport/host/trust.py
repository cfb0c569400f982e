"""What a host believes, decided without I/O: whether a registry's signed index is acceptable
(and what to remember of it), which entry an archive must match, and whether a publisher key
may sign for a namespace. Fail closed: every refusal is a :class:`TrustError` (or
:class:`SignatureError`) that names what did not match, and nothing is pinned on a refusal."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from plugport.errors import SignatureError, TrustError
from plugport.host.state import PinnedRegistry
from plugport.index import IndexEntry, SignedIndex, verify_index
from plugport.signing import fingerprint, key_id, public_key_from_pem

__all__ = ["TrustedIndex", "check_index", "check_publisher_key", "index_entry", "registry_key"]


@dataclass(frozen=True)
class TrustedIndex:
    index: SignedIndex
    pin: PinnedRegistry
    """What to remember after this index: its version and digest, the registry key."""


def registry_key(
    url: str,
    pinned: PinnedRegistry | None,
    served: Mapping[str, Any] | None,
    *,
    configured_pem: str | None = None,
) -> tuple[str, str]:
    """The registry key to check an index with, as ``(key_id, pem)``: the one pinned before;
    else the one the operator configured; else, on first use, the one the registry serves
    (trust on first use, said so in the audit trail). A configured key that differs from the
    pinned one is refused: re-pinning is an operator's decision, made by removing the pin."""
    if pinned is not None:
        if configured_pem is not None and _id_of(configured_pem) != pinned.key_id:
            raise TrustError(
                f"the key configured for {url} ({fingerprint(_id_of(configured_pem))}…) is not "
                f"the one this host pinned ({fingerprint(pinned.key_id)}…)"
            )
        return pinned.key_id, pinned.public_key_pem
    if configured_pem is not None:
        return _id_of(configured_pem), configured_pem
    keys = list((served or {}).get("keys") or [])
    if len(keys) != 1 or not isinstance(keys[0], Mapping):
        raise TrustError(f"{url} did not serve exactly one registry key at /api/v1/keys")
    pem = str(keys[0].get("public_key_pem", ""))
    return _id_of(pem), pem


def _id_of(pem: str) -> str:
    return key_id(public_key_from_pem(pem.encode(), source="the registry key"))


def check_index(
    url: str,
    document: bytes,
    pinned: PinnedRegistry | None,
    key: tuple[str, str],
    *,
    now: datetime,
) -> TrustedIndex:
    """Verify ``document`` with ``key``: signed by it, not expired, and not older than what
    was accepted before from ``url`` (same version only if byte-identical)."""
    keyid, pem = key
    index = verify_index(
        document,
        public_key_from_pem(pem.encode(), source="the registry key"),
        now=now,
        previous_version=pinned.index_version if pinned is not None else None,
        previous_digest=pinned.index_digest if pinned is not None else None,
    )
    return TrustedIndex(index, PinnedRegistry(url, keyid, pem, index.version, index.digest))


def index_entry(index: SignedIndex, name: str, version: str) -> IndexEntry:
    """The signed facts an archive of ``name`` ``version`` must match."""
    for entry in index.entries:
        if (entry.name, entry.version) == (name, version):
            return entry
    raise SignatureError(
        "index", f"{name} {version} is not in the registry's signed index (version {index.version})"
    )


def check_publisher_key(
    namespace: str, keyid: str, pinned: Set[str], *, trust_new_key: bool
) -> bool:
    """Whether ``keyid`` may sign for ``namespace``; True means pin it now (first install from
    the namespace, or a new key the operator accepted). A key this host has not seen for a
    namespace it already trusts is refused unless ``trust_new_key``."""
    if keyid in pinned:
        return False
    if pinned and not trust_new_key:
        known = ", ".join(f"{fingerprint(k)}…" for k in sorted(pinned))
        raise SignatureError(
            "key",
            f"{namespace} plugins are now signed by key {fingerprint(keyid)}…, but this host "
            f"trusts only {known} for {namespace}; if the publisher rotated its key, install "
            "again with --trust-new-key",
        )
    return True
