"""Trust decisions without I/O: which registry key to check an index with, whether an index is
acceptable (signed, fresh, not rolled back), which entry an archive must match, and whether a
publisher key may sign for a namespace."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from plugport.errors import SignatureError, TrustError
from plugport.host.state import PinnedRegistry
from plugport.host.trust import (
    TrustedIndex,
    check_index,
    check_publisher_key,
    choose_trust,
    index_entry,
    registry_key,
)
from plugport.index import IndexEntry, SignedIndex, build_index, public_key_document, sign_index
from plugport.signing import fingerprint, generate_private_key, key_id, public_key_pem

URL = "https://registry.example.com"
NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
PUBLISHER = "ab" * 32


def entry(version: str = "1.0.0", name: str = "acme.hello", length: int = 100) -> IndexEntry:
    return IndexEntry(name, version, "cd" * 32, length, PUBLISHER, False)


ENTRIES = (entry("1.0.0"), entry("1.1.0"), entry("2.0.0", "acme.other"))


def ident(key: Ed25519PrivateKey) -> tuple[str, str]:
    return key_id(key.public_key()), public_key_pem(key.public_key())


def pin(key: Ed25519PrivateKey, version: int, digest: str = "00" * 32) -> PinnedRegistry:
    keyid, pem = ident(key)
    return PinnedRegistry(URL, keyid, pem, version, digest)


def digest_of(version: int, entries: tuple[IndexEntry, ...] = ENTRIES) -> str:
    return hashlib.sha256(build_index(entries, version=version, now=NOW)).hexdigest()


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return generate_private_key()


# --- registry_key -----------------------------------------------------------------------------


def test_the_pinned_key_wins_over_what_the_registry_serves(key: Ed25519PrivateKey) -> None:
    served = public_key_document(generate_private_key())
    assert registry_key(URL, pin(key, 3), served) == ident(key)
    assert registry_key(URL, pin(key, 3), None) == ident(key)


def test_a_configured_key_equal_to_the_pinned_one_is_accepted(key: Ed25519PrivateKey) -> None:
    configured = public_key_pem(key.public_key())
    assert registry_key(URL, pin(key, 3), None, configured_pem=configured) == ident(key)


def test_a_configured_key_that_differs_from_the_pinned_one_is_refused(
    key: Ed25519PrivateKey,
) -> None:
    other = generate_private_key()
    with pytest.raises(TrustError) as caught:
        registry_key(URL, pin(key, 3), None, configured_pem=public_key_pem(other.public_key()))
    assert type(caught.value) is TrustError
    assert str(caught.value) == (
        f"the key configured for {URL} ({fingerprint(key_id(other.public_key()))}…) is not "
        f"the one this host pinned ({fingerprint(key_id(key.public_key()))}…)"
    )


def test_a_configured_key_is_used_before_anything_is_pinned(key: Ed25519PrivateKey) -> None:
    served = public_key_document(generate_private_key())
    configured = public_key_pem(key.public_key())
    assert registry_key(URL, None, served, configured_pem=configured) == ident(key)


def test_first_use_takes_the_key_the_registry_serves(key: Ed25519PrivateKey) -> None:
    assert registry_key(URL, None, public_key_document(key)) == ident(key)


def _two_keys() -> dict[str, Any]:
    one = public_key_document(generate_private_key())["keys"]
    two = public_key_document(generate_private_key())["keys"]
    return {"keys": one + two}


@pytest.mark.parametrize(
    "served",
    [
        lambda: None,
        dict,
        lambda: {"keys": []},
        lambda: {"keys": None},
        lambda: {"keys": ["-----BEGIN PUBLIC KEY-----"]},
        _two_keys,
    ],
    ids=["nothing", "empty", "no keys", "null keys", "not an object", "two keys"],
)
def test_first_use_needs_exactly_one_served_key(served: Callable[[], Any]) -> None:
    with pytest.raises(TrustError) as caught:
        registry_key(URL, None, served())
    assert type(caught.value) is TrustError
    assert str(caught.value) == f"{URL} did not serve exactly one registry key at /api/v1/keys"


def test_a_served_key_that_is_not_a_public_key_is_refused() -> None:
    with pytest.raises(SignatureError) as caught:
        registry_key(URL, None, {"keys": [{"public_key_pem": "nonsense"}]})
    assert caught.value.part == "key"
    assert str(caught.value) == "the registry key is not a PEM public key"


# --- check_index ------------------------------------------------------------------------------


def test_a_properly_signed_index_is_accepted_and_pinned(key: Ed25519PrivateKey) -> None:
    document = sign_index(key, ENTRIES, version=7, now=NOW)
    trusted = check_index(URL, document, None, ident(key), now=NOW + timedelta(hours=1))
    assert isinstance(trusted, TrustedIndex)
    assert trusted.index.version == 7
    assert trusted.index.entries == tuple(sorted(ENTRIES, key=lambda e: (e.name, e.version)))
    assert trusted.index.key_id == key_id(key.public_key())
    assert trusted.index.digest == digest_of(7)
    keyid, pem = ident(key)
    assert trusted.pin == PinnedRegistry(URL, keyid, pem, 7, digest_of(7))


def test_a_newer_index_is_accepted_and_moves_the_pin_forward(key: Ed25519PrivateKey) -> None:
    document = sign_index(key, ENTRIES, version=8, now=NOW)
    trusted = check_index(URL, document, pin(key, 7, digest_of(7)), ident(key), now=NOW)
    assert (trusted.pin.index_version, trusted.pin.index_digest) == (8, digest_of(8))


def test_the_same_index_fetched_again_is_accepted(key: Ed25519PrivateKey) -> None:
    document = sign_index(key, ENTRIES, version=7, now=NOW)
    trusted = check_index(URL, document, pin(key, 7, digest_of(7)), ident(key), now=NOW)
    assert trusted.pin == pin(key, 7, digest_of(7))


def refusal(
    key: Ed25519PrivateKey,
    document: bytes,
    pinned: PinnedRegistry | None = None,
    *,
    now: datetime = NOW,
    with_key: Ed25519PrivateKey | None = None,
) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        check_index(URL, document, pinned, ident(with_key or key), now=now)
    return caught.value


def test_an_expired_index_is_refused(key: Ed25519PrivateKey) -> None:
    document = sign_index(key, ENTRIES, version=7, now=NOW, ttl=timedelta(hours=1))
    error = refusal(key, document, now=NOW + timedelta(hours=1))
    assert error.part == "expired"
    assert str(error) == (
        "the index expired at 2025-03-01T13:00:00Z (now 2025-03-01T13:00:00Z); "
        "the registry has not re-signed it"
    )
    still_fresh = NOW + timedelta(minutes=59, seconds=59)
    assert check_index(URL, document, None, ident(key), now=still_fresh).index.version == 7


def test_an_index_older_than_the_pinned_one_is_a_rollback(key: Ed25519PrivateKey) -> None:
    document = sign_index(key, ENTRIES, version=6, now=NOW)
    error = refusal(key, document, pin(key, 7, digest_of(7)))
    assert error.part == "rollback"
    assert str(error) == "index version 6 is older than version 7 already seen (rollback)"


def test_the_same_version_with_other_content_is_a_rollback(key: Ed25519PrivateKey) -> None:
    changed = sign_index(key, (*ENTRIES, entry("3.0.0")), version=7, now=NOW)
    error = refusal(key, changed, pin(key, 7, digest_of(7)))
    assert error.part == "rollback"
    assert str(error) == (
        "index version 7 differs from the version 7 already seen; "
        "a published index version never changes"
    )


def test_an_index_signed_by_another_key_is_refused(key: Ed25519PrivateKey) -> None:
    other = generate_private_key()
    document = sign_index(other, ENTRIES, version=7, now=NOW)
    error = refusal(key, document)
    assert error.part == "signature"
    assert str(error) == (
        f"the index is not signed by the registry key {fingerprint(key_id(key.public_key()))}… "
        f"(signed by {fingerprint(key_id(other.public_key()))}…)"
    )


def test_an_index_altered_after_signing_is_refused(key: Ed25519PrivateKey) -> None:
    document = json.loads(sign_index(key, ENTRIES, version=7, now=NOW))
    document["signed"]["entries"][0]["length"] = 101
    error = refusal(key, json.dumps(document).encode())
    assert error.part == "signature"
    assert str(error) == (
        "the index signature does not verify: its content or its signature was altered"
    )


def test_a_malformed_index_is_refused(key: Ed25519PrivateKey) -> None:
    error = refusal(key, b"<html>not json</html>")
    assert error.part == "statement"
    assert str(error) == "malformed index document: not JSON"


def test_the_same_version_is_compared_with_the_pinned_digest(key: Ed25519PrivateKey) -> None:
    # a pin taken from another document of version 7 makes an honest re-fetch look changed
    document = sign_index(key, ENTRIES, version=7, now=NOW)
    assert refusal(key, document, pin(key, 7, "ff" * 32)).part == "rollback"


# --- index_entry ------------------------------------------------------------------------------


def signed_index(key: Ed25519PrivateKey) -> SignedIndex:
    document = sign_index(key, ENTRIES, version=7, now=NOW)
    return check_index(URL, document, None, ident(key), now=NOW).index


def test_index_entry_finds_the_exact_name_and_version(key: Ed25519PrivateKey) -> None:
    index = signed_index(key)
    assert index_entry(index, "acme.hello", "1.1.0") == entry("1.1.0")
    assert index_entry(index, "acme.other", "2.0.0") == entry("2.0.0", "acme.other")


@pytest.mark.parametrize(("name", "version"), [("acme.hello", "9.9.9"), ("acme.nope", "1.0.0")])
def test_index_entry_refuses_what_the_index_does_not_list(
    key: Ed25519PrivateKey, name: str, version: str
) -> None:
    index = signed_index(key)
    with pytest.raises(SignatureError) as caught:
        index_entry(index, name, version)
    assert caught.value.part == "index"
    assert str(caught.value) == (
        f"{name} {version} is not in the registry's signed index (version 7)"
    )


# --- check_publisher_key ----------------------------------------------------------------------

KEY_A, KEY_B, KEY_C = "aa" * 32, "bb" * 32, "cc" * 32


def test_the_first_key_for_a_namespace_is_pinned() -> None:
    assert check_publisher_key("acme", KEY_A, set(), trust_new_key=False) is True


def test_a_known_key_needs_no_new_pin() -> None:
    assert check_publisher_key("acme", KEY_A, {KEY_A, KEY_B}, trust_new_key=False) is False
    assert check_publisher_key("acme", KEY_A, {KEY_A}, trust_new_key=True) is False


def test_a_new_key_for_a_pinned_namespace_is_refused() -> None:
    with pytest.raises(SignatureError) as caught:
        check_publisher_key("acme", KEY_C, {KEY_B, KEY_A}, trust_new_key=False)
    assert caught.value.part == "key"
    assert str(caught.value) == (
        f"acme plugins are now signed by key {KEY_C[:16]}…, but this host trusts only "
        f"{KEY_A[:16]}…, {KEY_B[:16]}… for acme; if the publisher rotated its key, install "
        "again with --trust-new-key"
    )


def test_a_new_key_the_operator_accepts_is_pinned() -> None:
    assert check_publisher_key("acme", KEY_C, {KEY_A}, trust_new_key=True) is True


# --- choose_trust -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("configured", "trusted", "pinned", "serves", "fallback", "mode"),
    [
        (True, False, False, None, True, "tuf"),  # the operator's root
        (True, False, True, None, False, "tuf"),  # ... even over a pinned v1 key
        (False, True, True, None, True, "tuf"),  # once on TUF, never back
        (False, True, False, False, True, "tuf"),  # ... even if the registry stops serving it
        (False, False, False, True, True, "tuf"),  # first contact: root 1 on first use
        (False, False, True, True, True, "index"),  # a pinned v1 host is not moved by the net
        (False, False, False, False, True, "index"),  # no TUF served: v1
    ],
)
def test_choose_trust(  # noqa: PLR0917 one parameter per column of the table above
    configured: bool, trusted: bool, pinned: bool, serves: bool | None, fallback: bool, mode: str
) -> None:
    assert (
        choose_trust(
            URL,
            configured_root=configured,
            trusted_root=trusted,
            pinned_index=pinned,
            serves_tuf=serves,
            index_fallback=fallback,
        )
        == mode
    )


@pytest.mark.parametrize(("pinned", "serves"), [(False, False), (True, True), (True, False)])
def test_choose_trust_without_fallback_refuses_what_tuf_cannot_cover(
    pinned: bool, serves: bool
) -> None:
    with pytest.raises(TrustError) as caught:
        choose_trust(
            URL,
            configured_root=False,
            trusted_root=False,
            pinned_index=pinned,
            serves_tuf=serves,
            index_fallback=False,
        )
    assert "index_fallback = false" in str(caught.value)
    assert URL in str(caught.value)
