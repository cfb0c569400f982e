from __future__ import annotations

import base64
import json
import os
import stat
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from plugport.errors import InvalidInputError, SignatureError
from plugport.signing import (
    ALGORITHM,
    SIGNATURE_FORMAT,
    STATEMENT_TYPE,
    ArchiveFacts,
    VerifiedSignature,
    fingerprint,
    generate_private_key,
    key_id,
    load_private_key,
    load_public_key,
    private_key_from_pem,
    private_key_pem,
    public_key_from_pem,
    public_key_pem,
    sign,
    statement_bytes,
    verify,
    write_keypair,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

FACTS = ArchiveFacts(name="hello", version="1.0.0", sha256="ab" * 32, length=1234)


@pytest.fixture(scope="module")
def key() -> ed25519.Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def other_key() -> ed25519.Ed25519PrivateKey:
    return generate_private_key()


@pytest.fixture(scope="module")
def document(key: ed25519.Ed25519PrivateKey) -> bytes:
    return sign(key, FACTS)


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def edit(document: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    doc = json.loads(document)
    change(doc)
    return json.dumps(doc).encode()


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def pem_pair(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey) -> tuple[bytes, bytes]:
    private = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private, public


# --- statement, key ids, documents -------------------------------------------------------------


def test_statement_bytes_are_canonical() -> None:
    assert statement_bytes(FACTS) == (
        b'{"_type":"plugport/archive/v1","length":1234,"name":"hello",'
        b'"sha256":"' + b"ab" * 32 + b'","version":"1.0.0"}'
    )


def test_statement_bytes_escape_non_ascii() -> None:
    assert b"\\u00e9" in statement_bytes(replace(FACTS, name="caf\u00e9"))


def test_key_id_is_sha256_of_raw_public_key(key: ed25519.Ed25519PrivateKey) -> None:
    keyid = key_id(key.public_key())
    assert len(keyid) == 64
    assert int(keyid, 16) >= 0
    assert key_id(public_key_from_pem(public_key_pem(key.public_key()).encode())) == keyid
    assert fingerprint(keyid) == keyid[:16]


def test_sign_writes_the_documented_shape(key: ed25519.Ed25519PrivateKey, document: bytes) -> None:
    assert document.endswith(b"}\n")
    doc = json.loads(document)
    assert doc == {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "keyid": key_id(key.public_key()),
        "statement": {
            "_type": STATEMENT_TYPE,
            "length": 1234,
            "name": "hello",
            "sha256": "ab" * 32,
            "version": "1.0.0",
        },
        "signature": doc["signature"],
    }
    assert len(base64.b64decode(doc["signature"])) == 64
    assert document == (json.dumps(doc, indent=2, sort_keys=True) + "\n").encode()


def test_round_trip(key: ed25519.Ed25519PrivateKey, document: bytes) -> None:
    assert verify(document, key.public_key(), FACTS) == VerifiedSignature(
        keyid=key_id(key.public_key()), facts=FACTS
    )


# --- key files ---------------------------------------------------------------------------------


@pytest.mark.parametrize("passphrase", [None, b"correct horse"])
@pytest.mark.usefixtures("open_umask")
def test_key_files_round_trip(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey, passphrase: bytes | None
) -> None:
    private, public = write_keypair(tmp_path / "publisher", key, passphrase=passphrase)

    assert (private, public) == (tmp_path / "publisher", tmp_path / "publisher.pub")
    assert mode(private) == 0o600
    assert mode(public) == 0o644
    assert (b"ENCRYPTED" in private.read_bytes()) is (passphrase is not None)
    loaded = load_private_key(private, passphrase)
    assert key_id(loaded.public_key()) == key_id(key.public_key())
    assert key_id(load_public_key(public)) == key_id(key.public_key())
    assert verify(sign(loaded, FACTS), load_public_key(public), FACTS).facts == FACTS


@pytest.mark.usefixtures("open_umask")
def test_overwrite_replaces_and_tightens_mode(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    path = tmp_path / "publisher"
    path.write_text("old")
    path.chmod(0o666)
    (tmp_path / "publisher.pub").write_text("old")

    write_keypair(path, key, overwrite=True)

    assert mode(path) == 0o600
    assert key_id(load_private_key(path).public_key()) == key_id(key.public_key())
    assert key_id(load_public_key(tmp_path / "publisher.pub")) == key_id(key.public_key())


@pytest.mark.parametrize("existing", ["publisher", "publisher.pub"])
def test_refuses_to_overwrite(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey, existing: str
) -> None:
    (tmp_path / existing).write_text("keep me")

    with pytest.raises(InvalidInputError, match="already exists; pass --force") as info:
        write_keypair(tmp_path / "publisher", key)

    assert existing in str(info.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == [existing]
    assert (tmp_path / existing).read_text() == "keep me"


def test_failed_public_key_write_leaves_no_private_key(
    tmp_path: Path, key: ed25519.Ed25519PrivateKey
) -> None:
    (tmp_path / "publisher.pub").mkdir()

    with pytest.raises(IsADirectoryError):
        write_keypair(tmp_path / "publisher", key, overwrite=True)

    assert not (tmp_path / "publisher").exists()


def test_empty_passphrase_is_refused(key: ed25519.Ed25519PrivateKey) -> None:
    with pytest.raises(InvalidInputError, match="passphrase is empty"):
        private_key_pem(key, b"")


@pytest.fixture(scope="module")
def key_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("keys")
    key = generate_private_key()
    (root / "plain").write_bytes(private_key_pem(key))
    (root / "encrypted").write_bytes(private_key_pem(key, b"secret"))
    others: dict[str, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey] = {
        "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "ec": ec.generate_private_key(ec.SECP256R1()),
    }
    for name, other in others.items():
        private, public = pem_pair(other)
        (root / name).write_bytes(private)
        (root / f"{name}.pub").write_bytes(public)
    (root / "garbage").write_bytes(b"not a key at all\n")
    (root / "directory").mkdir()
    return root


@pytest.mark.parametrize(
    ("name", "passphrase", "message"),
    [
        ("missing", None, "key file {path} does not exist"),
        ("directory", None, "cannot read key file {path}: "),
        ("garbage", None, "key file {path} is not a PEM private key"),
        ("garbage", b"secret", "key file {path} is not a PEM private key"),
        ("encrypted", None, "key file {path} is encrypted; give its passphrase"),
        ("encrypted", b"wrong", "wrong passphrase for key file {path}"),
        ("plain", b"secret", "key file {path} is not encrypted; give no passphrase"),
        ("rsa", None, "key file {path} holds an RSA key; Plugport signs with Ed25519"),
        ("ec", None, "key file {path} holds an ECDSA key; Plugport signs with Ed25519"),
    ],
)
def test_load_private_key_errors(
    key_files: Path, name: str, passphrase: bytes | None, message: str
) -> None:
    path = key_files / name
    with pytest.raises(SignatureError) as info:
        load_private_key(path, passphrase)
    assert info.value.part == "key"
    assert str(info.value).startswith(message.format(path=path))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"garbage", "the key is not a PEM public key"),
        (b"", "the key is not a PEM public key"),
    ],
)
def test_public_key_from_pem_errors(data: bytes, message: str) -> None:
    with pytest.raises(SignatureError, match=message) as info:
        public_key_from_pem(data)
    assert info.value.part == "key"


def test_public_key_file_errors(key_files: Path) -> None:
    with pytest.raises(SignatureError, match="does not exist"):
        load_public_key(key_files / "missing")
    with pytest.raises(SignatureError, match=r"is not a PEM public key; give the \.pub file"):
        load_public_key(key_files / "plain")
    with pytest.raises(SignatureError, match="holds an RSA key; Plugport signs with Ed25519"):
        load_public_key(key_files / "rsa.pub")


def test_private_key_from_pem_default_source() -> None:
    with pytest.raises(SignatureError, match=r"^the key is not a PEM private key$"):
        private_key_from_pem(b"nope")


# --- verification: each tampered part is named -------------------------------------------------


@pytest.mark.parametrize(
    ("actual", "message"),
    [
        (
            replace(FACTS, sha256="cd" * 32),
            f"archive does not match what was signed: sha256 is {'cd' * 32}, signed {'ab' * 32}",
        ),
        (
            replace(FACTS, length=1235),
            "archive does not match what was signed: length is 1235, signed 1234",
        ),
        (
            replace(FACTS, sha256="cd" * 32, length=1235),
            f"sha256 is {'cd' * 32}, signed {'ab' * 32}; length is 1235, signed 1234",
        ),
        (replace(FACTS, name="goodbye"), "name is goodbye, signed hello"),
        (replace(FACTS, version="1.0.1"), "version is 1.0.1, signed 1.0.0"),
    ],
)
def test_archive_mismatch(
    key: ed25519.Ed25519PrivateKey, document: bytes, actual: ArchiveFacts, message: str
) -> None:
    with pytest.raises(SignatureError) as info:
        verify(document, key.public_key(), actual)
    assert info.value.part == "archive"
    assert message in str(info.value)


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "evil"), ("version", "6.6.6"), ("sha256", "ee" * 32), ("length", 1)],
)
def test_altered_statement(
    key: ed25519.Ed25519PrivateKey, document: bytes, field: str, value: object
) -> None:
    tampered = edit(document, lambda d: d["statement"].__setitem__(field, value))

    with pytest.raises(SignatureError) as info:
        verify(tampered, key.public_key(), FACTS)

    assert info.value.part == "statement"
    assert str(info.value) == (
        f"the signed statement was altered: its {field} does not match the archive "
        "and the signature does not cover it"
    )


def test_altered_statement_names_every_field(
    key: ed25519.Ed25519PrivateKey, document: bytes
) -> None:
    def change(doc: dict[str, Any]) -> None:
        doc["statement"].update(name="evil", length=1)

    with pytest.raises(SignatureError, match="its name and length do not match") as info:
        verify(edit(document, change), key.public_key(), FACTS)
    assert info.value.part == "statement"


def test_flipped_signature_byte(key: ed25519.Ed25519PrivateKey, document: bytes) -> None:
    def flip(doc: dict[str, Any]) -> None:
        raw = bytearray(base64.b64decode(doc["signature"]))
        raw[10] ^= 0x01
        doc["signature"] = base64.b64encode(raw).decode()

    with pytest.raises(SignatureError) as info:
        verify(edit(document, flip), key.public_key(), FACTS)
    assert info.value.part == "signature"
    assert "altered signature" in str(info.value)


def test_different_key(
    key: ed25519.Ed25519PrivateKey, other_key: ed25519.Ed25519PrivateKey, document: bytes
) -> None:
    with pytest.raises(SignatureError) as info:
        verify(document, other_key.public_key(), FACTS)
    assert info.value.part == "key"
    assert str(info.value) == (
        f"signed by key {fingerprint(key_id(key.public_key()))}\u2026, "
        f"not by the given key {fingerprint(key_id(other_key.public_key()))}\u2026"
    )


def test_keyid_rewritten_to_another_key_still_fails(
    other_key: ed25519.Ed25519PrivateKey, document: bytes
) -> None:
    forged = edit(document, lambda d: d.__setitem__("keyid", key_id(other_key.public_key())))
    with pytest.raises(SignatureError) as info:
        verify(forged, other_key.public_key(), FACTS)
    assert info.value.part == "signature"
    assert "do not verify" in str(info.value)


def _set(*path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for step in path[:-1]:
            doc = doc[step]
        doc[path[-1]] = value

    return change


def _delete(*path: str) -> Callable[[dict[str, Any]], None]:
    def change(doc: dict[str, Any]) -> None:
        for step in path[:-1]:
            doc = doc[step]
        del doc[path[-1]]

    return change


@pytest.mark.parametrize(
    ("change", "what"),
    [
        pytest.param(_set("extra", value=1), "document has unexpected extra", id="extra-field"),
        pytest.param(_delete("signature"), "document lacks signature", id="missing-field"),
        pytest.param(_set("format", value="x/v2"), "format is 'x/v2'", id="format"),
        pytest.param(_set("algorithm", value="rsa"), "algorithm is 'rsa'", id="algorithm"),
        pytest.param(_set("keyid", value="AB" * 32), "keyid is not 64", id="keyid-case"),
        pytest.param(_set("keyid", value=7), "keyid is not 64", id="keyid-type"),
        pytest.param(_set("statement", value=[]), "statement is not a JSON object", id="stmt"),
        pytest.param(_delete("statement", "name"), "statement lacks name", id="stmt-missing"),
        pytest.param(_set("statement", "x", value=1), "statement has unexpected x", id="stmt-x"),
        pytest.param(_set("statement", "_type", value="x"), "statement _type is 'x'", id="type"),
        pytest.param(_set("statement", "name", value=1), "name is not a string", id="name"),
        pytest.param(_set("statement", "length", value="1"), "length is not a", id="len-str"),
        pytest.param(_set("statement", "length", value=True), "length is not a", id="len-bool"),
        pytest.param(_set("statement", "length", value=-1), "length is not a", id="len-neg"),
        pytest.param(_set("signature", value=None), "signature is not a string", id="sig-type"),
        pytest.param(_set("signature", value="!!notb64"), "not valid base64", id="sig-b64"),
        pytest.param(
            _set("signature", value=base64.b64encode(b"\0" * 63).decode()),
            "signature is 63 bytes, not 64",
            id="sig-truncated",
        ),
    ],
)
def test_malformed_document(
    key: ed25519.Ed25519PrivateKey,
    document: bytes,
    change: Callable[[dict[str, Any]], None],
    what: str,
) -> None:
    with pytest.raises(SignatureError, match=r"^malformed signature document: ") as info:
        verify(edit(document, change), key.public_key(), FACTS)
    assert info.value.part == "signature"
    assert what in str(info.value)


@pytest.mark.parametrize(
    ("raw", "what"),
    [
        (b"not json", "not JSON"),
        (b"\xff\xfe", "not JSON"),
        (b"[" * 100_000, "not JSON"),
        (b"[]", "document is not a JSON object"),
        (b'{"format": "a", "format": "b"}', "field 'format' appears twice"),
    ],
)
def test_unparsable_document(key: ed25519.Ed25519PrivateKey, raw: bytes, what: str) -> None:
    with pytest.raises(SignatureError, match=r"^malformed signature document: ") as info:
        verify(raw, key.public_key(), FACTS)
    assert info.value.part == "signature"
    assert what in str(info.value)


def test_truncated_signature_text(key: ed25519.Ed25519PrivateKey, document: bytes) -> None:
    truncated = edit(document, lambda d: d.__setitem__("signature", d["signature"][:-8]))
    with pytest.raises(SignatureError, match="signature is 60 bytes, not 64") as info:
        verify(truncated, key.public_key(), FACTS)
    assert info.value.part == "signature"
