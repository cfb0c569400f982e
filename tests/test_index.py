from __future__ import annotations

import base64
import hashlib
import json
import os
import stat
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519

from plugport.errors import InvalidInputError, SignatureError
from plugport.index import (
    INDEX_TYPE,
    IndexEntry,
    SignedIndex,
    build_index,
    load_or_create_registry_key,
    public_key_document,
    sign_index,
    verify_index,
)
from plugport.signing import (
    generate_private_key,
    key_id,
    load_public_key,
    public_key_from_pem,
)

NOW = datetime(2025, 3, 1, 12, 0, 0, tzinfo=UTC)
TTL = timedelta(hours=24)
PUBLISHER = "cd" * 32

ENTRIES = (
    IndexEntry("acme.hello", "1.0.0", "ab" * 32, 1234, PUBLISHER, yanked=False),
    IndexEntry("acme.hello", "1.1.0", "ef" * 32, 2048, PUBLISHER, yanked=True),
    IndexEntry("zeta.tool", "0.1.0", "01" * 32, 99, "23" * 32, yanked=False),
)


@pytest.fixture(scope="module")
def key() -> ed25519.Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> ed25519.Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def document(key: ed25519.Ed25519PrivateKey) -> bytes:
    return sign_index(key, ENTRIES, version=7, now=NOW, ttl=TTL)


def edit(document: bytes, change: Callable[[dict[str, Any]], object]) -> bytes:
    parsed = json.loads(document)
    change(parsed)
    return json.dumps(parsed).encode()


def refused(document: bytes, key: ed25519.Ed25519PrivateKey, **kwargs: Any) -> SignatureError:
    kwargs.setdefault("now", NOW)
    with pytest.raises(SignatureError) as caught:
        verify_index(document, key.public_key(), **kwargs)
    return caught.value


# --- round trip ------------------------------------------------------------------------------


def test_round_trip(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    index = verify_index(document, key.public_key(), now=NOW)
    assert isinstance(index, SignedIndex)
    assert index.version == 7
    assert index.issued_at == NOW
    assert index.expires_at == NOW + TTL
    assert index.entries == ENTRIES
    assert index.key_id == key_id(key.public_key())
    assert len(index.signature) == 64
    statement = build_index(ENTRIES, version=7, now=NOW, ttl=TTL)
    assert index.digest == hashlib.sha256(statement).hexdigest()


def test_document_shape(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    parsed = json.loads(document)
    assert sorted(parsed) == ["signatures", "signed"]
    assert parsed["signed"]["_type"] == INDEX_TYPE
    assert parsed["signed"]["issued_at"] == "2025-03-01T12:00:00Z"
    assert parsed["signed"]["expires_at"] == "2025-03-02T12:00:00Z"
    [signature] = parsed["signatures"]
    assert signature["keyid"] == key_id(key.public_key())
    key.public_key().verify(
        base64.b64decode(signature["sig"]), build_index(ENTRIES, version=7, now=NOW, ttl=TTL)
    )


def test_empty_index(key: ed25519.Ed25519PrivateKey) -> None:
    index = verify_index(sign_index(key, [], version=0, now=NOW), key.public_key(), now=NOW)
    assert index.entries == ()
    assert index.expires_at == NOW + timedelta(hours=24)


# --- canonical bytes -------------------------------------------------------------------------


def test_canonical_bytes_are_stable() -> None:
    forward = build_index(ENTRIES, version=1, now=NOW, ttl=TTL)
    backward = build_index(reversed(ENTRIES), version=1, now=NOW, ttl=TTL)
    assert forward == backward
    assert b" " not in forward
    assert b"\n" not in forward
    parsed = json.loads(forward)
    assert forward == json.dumps(parsed, sort_keys=True, separators=(",", ":")).encode()
    names = [(e["name"], e["version"]) for e in parsed["entries"]]
    assert names == sorted(names)


def test_a_v1_entry_has_the_closed_field_set_hosts_before_quarantine_read() -> None:
    """Quarantine added no field to v1 (hosts before it refuse an unknown one): the entries
    are exactly what they were, and a quarantined entry is never listed."""
    parsed = json.loads(build_index(ENTRIES, version=1, now=NOW, ttl=TTL))
    assert {tuple(sorted(e)) for e in parsed["entries"]} == {
        ("key_id", "length", "name", "sha256", "version", "yanked")
    }
    quarantined = replace(ENTRIES[0], quarantined=True)
    with pytest.raises(InvalidInputError, match="quarantined version is left out of a v1 index"):
        build_index([quarantined, *ENTRIES[1:]], version=1, now=NOW, ttl=TTL)


def test_a_quarantined_flag_in_a_v1_entry_is_refused(
    document: bytes, key: ed25519.Ed25519PrivateKey
) -> None:
    error = refused(edit(document, _set_entry_field("quarantined", True)), key)
    assert error.part == "statement"
    assert "unexpected quarantined" in str(error)


def test_microseconds_and_zones_are_normalised() -> None:
    elsewhere = NOW.astimezone(timezone(timedelta(hours=9)))
    assert build_index(ENTRIES, version=1, now=elsewhere + timedelta(microseconds=999)) == (
        build_index(ENTRIES, version=1, now=NOW)
    )


def test_reordered_document_keys_still_verify(
    document: bytes, key: ed25519.Ed25519PrivateKey
) -> None:
    def reverse(obj: Any) -> Any:
        if isinstance(obj, dict):
            return {k: reverse(obj[k]) for k in reversed(list(obj))}
        if isinstance(obj, list):
            return [reverse(item) for item in reversed(obj)]
        return obj

    shuffled = json.dumps(reverse(json.loads(document)), indent=3).encode()
    assert shuffled != document
    index = verify_index(shuffled, key.public_key(), now=NOW)
    assert index.entries == ENTRIES


@pytest.mark.parametrize(
    ("entries", "kwargs", "match"),
    [
        ((ENTRIES[0], ENTRIES[0]), {}, "twice"),
        ((replace(ENTRIES[0], sha256="AB" * 32),), {}, "sha256"),
        ((replace(ENTRIES[0], key_id="short"),), {}, "key_id"),
        ((replace(ENTRIES[0], length=-1),), {}, "length"),
        ((replace(ENTRIES[0], name=""),), {}, "name"),
        ((replace(ENTRIES[0], yanked=1),), {}, "yanked"),
        (ENTRIES, {"version": -1}, "version"),
        (ENTRIES, {"version": True}, "version"),
        (ENTRIES, {"ttl": timedelta(0)}, "ttl"),
        (ENTRIES, {"now": datetime(2025, 3, 1)}, "timezone"),
    ],
)
def test_build_refuses_bad_input(
    key: ed25519.Ed25519PrivateKey,
    entries: tuple[IndexEntry, ...],
    kwargs: dict[str, Any],
    match: str,
) -> None:
    arguments: dict[str, Any] = {"version": 1, "now": NOW, "ttl": TTL} | kwargs
    with pytest.raises(InvalidInputError, match=match):
        build_index(entries, **arguments)
    with pytest.raises(InvalidInputError, match=match):
        sign_index(key, entries, **arguments)


# --- tampering -------------------------------------------------------------------------------


def _set_entry_field(field: str, value: object) -> Callable[[dict[str, Any]], object]:
    return lambda doc: doc["signed"]["entries"][0].__setitem__(field, value)


@pytest.mark.parametrize(
    "change",
    [
        _set_entry_field("sha256", "00" * 32),
        _set_entry_field("length", 1),
        _set_entry_field("yanked", True),
        _set_entry_field("version", "9.9.9"),
        _set_entry_field("key_id", "99" * 32),
        lambda doc: doc["signed"].__setitem__("version", 8),
        lambda doc: doc["signed"].__setitem__("expires_at", "2030-01-01T00:00:00Z"),
        lambda doc: doc["signed"]["entries"].pop(),
        lambda doc: doc["signed"]["entries"].append(doc["signed"]["entries"][0] | {"name": "x"}),
    ],
    ids=[
        "entry-sha256",
        "entry-length",
        "entry-yanked",
        "entry-version",
        "entry-key_id",
        "version",
        "expiry",
        "entry-removed",
        "entry-added",
    ],
)
def test_tampered_statement_fails_the_signature(
    document: bytes, key: ed25519.Ed25519PrivateKey, change: Callable[[dict[str, Any]], object]
) -> None:
    error = refused(edit(document, change), key)
    assert error.part == "signature"
    assert "does not verify" in str(error)


def test_tampered_expiry_into_the_past_is_a_signature_error(
    document: bytes, key: ed25519.Ed25519PrivateKey
) -> None:
    """An unverified expiry is not believed, not even to refuse with "expired"."""
    change = edit(
        document, lambda doc: doc["signed"].__setitem__("expires_at", "2025-03-01T12:00:01Z")
    )
    assert refused(change, key, now=NOW + timedelta(hours=1)).part == "signature"


def test_tampered_signature_bytes(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    def flip(doc: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(doc["signatures"][0]["sig"]))
        raw[0] ^= 1
        doc["signatures"][0]["sig"] = base64.b64encode(bytes(raw)).decode()

    assert refused(edit(document, flip), key).part == "signature"


@pytest.mark.parametrize(
    ("sig", "match"),
    [("not base64!", "base64"), (base64.b64encode(b"short").decode(), "5 bytes")],
)
def test_malformed_signature_value(
    document: bytes, key: ed25519.Ed25519PrivateKey, sig: str, match: str
) -> None:
    changed = edit(document, lambda doc: doc["signatures"][0].__setitem__("sig", sig))
    error = refused(changed, key)
    assert error.part == "signature"
    assert match in str(error)


def test_tampered_keyid(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    changed = edit(document, lambda doc: doc["signatures"][0].__setitem__("keyid", "ee" * 32))
    error = refused(changed, key)
    assert error.part == "signature"
    assert "not signed by the registry key" in str(error)
    assert "eeeeeeee" in str(error)


def test_wrong_key(
    document: bytes, key: ed25519.Ed25519PrivateKey, other_key: ed25519.Ed25519PrivateKey
) -> None:
    error = refused(document, other_key)
    assert error.part == "signature"
    assert key_id(key.public_key())[:16] in str(error)


def test_other_signatures_are_ignored(
    document: bytes, key: ed25519.Ed25519PrivateKey, other_key: ed25519.Ed25519PrivateKey
) -> None:
    """During a key rotation an index may carry signatures by the old and the new key."""
    theirs = json.loads(sign_index(other_key, ENTRIES, version=7, now=NOW, ttl=TTL))
    both = edit(document, lambda doc: doc["signatures"].insert(0, theirs["signatures"][0]))
    assert verify_index(both, key.public_key(), now=NOW).key_id == key_id(key.public_key())
    assert verify_index(both, other_key.public_key(), now=NOW).version == 7


def test_no_signatures(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    error = refused(edit(document, lambda doc: doc["signatures"].clear()), key)
    assert error.part == "signature"
    assert "no key" in str(error)


# --- malformed statements --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda doc: doc.__setitem__("extra", 1), "unexpected extra"),
        (lambda doc: doc.pop("signatures"), "lacks signatures"),
        (lambda doc: doc["signed"].__setitem__("mirror", "x"), "unexpected mirror"),
        (lambda doc: doc["signed"].__setitem__("_type", "plugport/archive/v1"), "_type"),
        (lambda doc: doc["signed"].__setitem__("version", "7"), "version"),
        (lambda doc: doc["signed"].__setitem__("version", 7.0), "version"),
        (lambda doc: doc["signed"].__setitem__("issued_at", "2025-3-1T12:00:00Z"), "issued_at"),
        (
            lambda doc: doc["signed"].__setitem__("expires_at", "2025-03-02T12:00:00+00:00"),
            "expires_at",
        ),
        (
            lambda doc: doc["signed"].__setitem__("expires_at", doc["signed"]["issued_at"]),
            "not after",
        ),
        (lambda doc: doc["signed"].__setitem__("entries", {}), "entries is not a list"),
        (lambda doc: doc["signed"]["entries"][0].__setitem__("extra", 1), "unexpected extra"),
        (lambda doc: doc["signed"]["entries"][0].pop("yanked"), "lacks yanked"),
        (_set_entry_field("length", True), "length"),
        (_set_entry_field("yanked", "no"), "yanked"),
        (_set_entry_field("sha256", "zz" * 32), "sha256"),
        (
            lambda doc: doc["signed"]["entries"].append(doc["signed"]["entries"][0]),
            "twice",
        ),
        (lambda doc: doc["signatures"][0].__setitem__("extra", 1), "unexpected extra"),
        (lambda doc: doc["signatures"][0].__setitem__("keyid", "KEY"), "keyid"),
        (lambda doc: doc["signatures"][0].__setitem__("sig", 7), "sig is not a string"),
        (lambda doc: doc["signatures"].append(doc["signatures"][0]), "signed twice"),
        (lambda doc: doc.__setitem__("signatures", {}), "signatures is not a list"),
    ],
)
def test_malformed_statement(
    document: bytes,
    key: ed25519.Ed25519PrivateKey,
    change: Callable[[dict[str, Any]], object],
    match: str,
) -> None:
    error = refused(edit(document, change), key)
    assert error.part == "statement"
    assert match in str(error)


@pytest.mark.parametrize("raw", [b"", b"not json", b"[]", b"\xff\xfe", b"[" * 100_000])
def test_not_a_document(key: ed25519.Ed25519PrivateKey, raw: bytes) -> None:
    assert refused(raw, key).part == "statement"


@pytest.mark.parametrize("where", ["document", "signed", "entry", "signature"])
def test_duplicate_json_keys_are_refused(
    document: bytes, key: ed25519.Ed25519PrivateKey, where: str
) -> None:
    text = json.dumps(json.loads(document))
    duplicated = {
        "document": text.replace('"signed": {', '"signatures": [], "signed": {', 1),
        "signed": text.replace('"version": 7', '"version": 7, "version": 9', 1),
        "entry": text.replace('"length": 1234', '"length": 1234, "length": 1', 1),
        "signature": text.replace('"keyid": ', '"sig": "", "keyid": ', 1),
    }[where]
    assert duplicated != text
    error = refused(duplicated.encode(), key)
    assert error.part == "statement"
    assert "appears twice" in str(error)


# --- expiry ----------------------------------------------------------------------------------


def test_expiry_boundary(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    expires = NOW + TTL
    last_moment = expires - timedelta(microseconds=1)
    assert verify_index(document, key.public_key(), now=last_moment).version == 7
    error = refused(document, key, now=expires)
    assert error.part == "expired"
    assert "2025-03-02T12:00:00Z" in str(error)
    assert refused(document, key, now=expires + timedelta(days=300)).part == "expired"


def test_issued_in_the_future_is_accepted(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    """A host's clock running behind the registry's must not lock it out."""
    assert verify_index(document, key.public_key(), now=NOW - timedelta(hours=1)).version == 7


def test_naive_now_is_refused(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(InvalidInputError, match="timezone"):
        verify_index(document, key.public_key(), now=datetime(2025, 3, 1))


# --- rollback and the freeze rule ------------------------------------------------------------


def test_rollback(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    error = refused(document, key, previous_version=8)
    assert error.part == "rollback"
    assert "7" in str(error)
    assert "8" in str(error)
    assert verify_index(document, key.public_key(), now=NOW, previous_version=6).version == 7


def test_rollback_is_checked_before_expiry(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    error = refused(document, key, now=NOW + TTL, previous_version=8)
    assert error.part == "rollback"


def test_same_version_same_content_is_accepted(
    document: bytes, key: ed25519.Ed25519PrivateKey
) -> None:
    seen = verify_index(document, key.public_key(), now=NOW)
    again = verify_index(
        document,
        key.public_key(),
        now=NOW + timedelta(hours=1),
        previous_version=seen.version,
        previous_digest=seen.digest,
    )
    assert again == seen


def test_same_version_different_content_is_refused(
    document: bytes, key: ed25519.Ed25519PrivateKey
) -> None:
    seen = verify_index(document, key.public_key(), now=NOW)
    changed = sign_index(key, ENTRIES[:1], version=7, now=NOW, ttl=TTL)
    resigned = sign_index(key, ENTRIES, version=7, now=NOW + timedelta(minutes=5), ttl=TTL)
    for other in (changed, resigned):
        error = refused(other, key, previous_version=7, previous_digest=seen.digest)
        assert error.part == "rollback"
        assert "never changes" in str(error)
    # Without the digest the rule cannot be checked, and the version alone is not a rollback.
    assert verify_index(changed, key.public_key(), now=NOW, previous_version=7).version == 7


def test_digest_ignores_formatting(document: bytes, key: ed25519.Ed25519PrivateKey) -> None:
    seen = verify_index(document, key.public_key(), now=NOW)
    pretty = json.dumps(json.loads(document), indent=2).encode()
    again = verify_index(
        pretty, key.public_key(), now=NOW, previous_version=7, previous_digest=seen.digest
    )
    assert again.digest == seen.digest


# --- the registry key ------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    yield
    os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_registry_key_is_created_once_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "index.pem"
    first = load_or_create_registry_key(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    public_path = path.with_name("index.pem.pub")
    assert stat.S_IMODE(public_path.stat().st_mode) == 0o644
    assert key_id(load_public_key(public_path)) == key_id(first.public_key())
    pem = path.read_bytes()
    second = load_or_create_registry_key(path)
    assert key_id(second.public_key()) == key_id(first.public_key())
    assert path.read_bytes() == pem
    assert sorted(p.name for p in path.parent.iterdir()) == ["index.pem", "index.pem.pub"]


def test_registry_key_loses_a_race_gracefully(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two server processes starting at once end up with the same key."""
    path = tmp_path / "index.pem"
    winner = load_or_create_registry_key(path)
    real_exists = Path.exists
    # The loser looked before the winner wrote, then found the name taken.
    monkeypatch.setattr(Path, "exists", lambda self: False if self == path else real_exists(self))
    loser = load_or_create_registry_key(path)
    assert key_id(loser.public_key()) == key_id(winner.public_key())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["index.pem", "index.pem.pub"]


def test_registry_key_that_is_not_a_key(tmp_path: Path) -> None:
    path = tmp_path / "index.pem"
    path.write_text("garbage")
    with pytest.raises(SignatureError) as caught:
        load_or_create_registry_key(path)
    assert caught.value.part == "key"
    assert path.read_text() == "garbage"


def test_public_key_document(key: ed25519.Ed25519PrivateKey) -> None:
    document = public_key_document(key)
    assert document == public_key_document(key.public_key())
    [entry] = document["keys"]
    assert entry["keyid"] == key_id(key.public_key())
    assert entry["algorithm"] == "ed25519"
    pinned = public_key_from_pem(entry["public_key_pem"].encode())
    signed = sign_index(key, ENTRIES, version=1, now=NOW)
    assert verify_index(signed, pinned, now=NOW).key_id == entry["keyid"]
    json.dumps(document)  # serves as JSON as it is
