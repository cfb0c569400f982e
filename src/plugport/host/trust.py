"""What a host believes, decided without I/O: whether a registry's signed index is acceptable
(and what to remember of it), which entry an archive must match, and whether a publisher key
may sign for a namespace. Fail closed: every refusal is a :class:`TrustError` (or
:class:`SignatureError`) that names what did not match, and nothing is pinned on a refusal."""

from __future__ import annotations

from collections.abc import Mapping, Set
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from plugport.errors import SignatureError, TrustError
from plugport.host.state import PinnedRegistry
from plugport.index import IndexEntry, verify_index
from plugport.signing import fingerprint, key_id, public_key_from_pem

__all__ = [
    "Listing",
    "TrustedIndex",
    "check_index",
    "check_publisher_key",
    "choose_trust",
    "index_entry",
    "registry_key",
]


class Listing(Protocol):
    """What a registry vouches for, however it was verified: its v1 signed index
    (:class:`~plugport.index.SignedIndex`) or its TUF targets
    (:class:`~plugport.host.tuf_client.TufListing`)."""

    @property
    def version(self) -> int: ...

    @property
    def source(self) -> str: ...

    def find(self, name: str, version: str) -> IndexEntry | None: ...


@dataclass(frozen=True)
class TrustedIndex:
    index: Listing
    pin: PinnedRegistry | None
    """What to remember after a v1 index: its version and digest, the registry key (None for
    TUF, whose client keeps what it trusts itself)."""
    how: str = ""
    """How the registry came to be trusted when this is the first time: "configured" or
    "first use" (empty when it was trusted before)."""


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


def index_entry(index: Listing, name: str, version: str) -> IndexEntry:
    """The signed facts an archive of ``name`` ``version`` must match."""
    entry = index.find(name, version)
    if entry is None:
        raise SignatureError(
            "index",
            f"{name} {version} is not in the registry's {index.source} (version {index.version})",
        )
    return entry


def choose_trust(
    url: str,
    *,
    configured_root: bool,
    trusted_root: bool,
    pinned_index: bool,
    serves_tuf: bool | None,
    index_fallback: bool,
) -> str:
    """How to verify what ``url`` offers: "tuf" or "index" (the v1 signed index).

    TUF whenever the host has a root for the registry (the operator's, or one trusted
    before): once on TUF, never back. On first contact with a registry that serves TUF
    (``serves_tuf``), its root version 1 is trusted on first use, as the v1 key would be;
    but not for a registry whose v1 key is pinned already: whoever controls the network
    could serve a root of their own, so moving such a host to TUF is its operator's act
    (the root in its configuration). Else the v1 index, unless ``index_fallback`` is off."""
    if configured_root or trusted_root:
        return "tuf"
    if serves_tuf and not pinned_index:
        return "tuf"
    if index_fallback:
        return "index"
    raise TrustError(
        f"{url} serves no TUF metadata this host can start from (no root configured for it"
        + (", and its v1 key is pinned" if pinned_index and serves_tuf else "")
        + "), and this host's policy turns the v1 signed index off (index_fallback = false)"
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
