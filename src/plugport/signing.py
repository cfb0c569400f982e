"""Publisher keys and archive signatures: an Ed25519 signature over a canonical statement that
binds a plugin's name, version, sha256 and length, so a host can tell exactly what was tampered.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import warnings
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa, x448, x25519

from plugport._documents import DocumentReader
from plugport.errors import InvalidInputError, SignatureError

if TYPE_CHECKING:
    from pathlib import Path

__all__ = [
    "ALGORITHM",
    "PUBLIC_KEY_SUFFIX",
    "SIGNATURE_FORMAT",
    "SIGNATURE_SUFFIX",
    "STATEMENT_TYPE",
    "ArchiveFacts",
    "VerifiedSignature",
    "fingerprint",
    "generate_private_key",
    "key_id",
    "load_private_key",
    "load_public_key",
    "private_key_from_pem",
    "private_key_pem",
    "public_key_from_pem",
    "public_key_pem",
    "sign",
    "signed_facts",
    "signer_key_id",
    "statement_bytes",
    "verify",
    "write_keypair",
]

ALGORITHM = "ed25519"
SIGNATURE_FORMAT = "plugport-signature/v1"
STATEMENT_TYPE = "plugport/archive/v1"
SIGNATURE_SUFFIX = ".sig"
PUBLIC_KEY_SUFFIX = ".pub"

_DOCUMENT_FIELDS = frozenset({"format", "algorithm", "keyid", "statement", "signature"})
_SIGNATURE_BYTES = 64
_KEYID_HEX = 64
_HEX_DIGITS = frozenset("0123456789abcdef")


def _dsa_key_types() -> tuple[type, ...]:
    """DSA's key classes, only to name a DSA key someone hands us: cryptography 51 deprecates
    DSA and warns on any use of its module, which a name lookup must not turn into an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from cryptography.hazmat.primitives.asymmetric import dsa

        return (dsa.DSAPrivateKey, dsa.DSAPublicKey)


# Keys someone may hand us by mistake, named the way they would recognise them.
_KEY_KINDS: tuple[tuple[type, str], ...] = (
    (rsa.RSAPrivateKey, "an RSA"),
    (rsa.RSAPublicKey, "an RSA"),
    (ec.EllipticCurvePrivateKey, "an ECDSA"),
    (ec.EllipticCurvePublicKey, "an ECDSA"),
    (ed448.Ed448PrivateKey, "an Ed448"),
    (ed448.Ed448PublicKey, "an Ed448"),
    (x25519.X25519PrivateKey, "an X25519"),
    (x25519.X25519PublicKey, "an X25519"),
    (x448.X448PrivateKey, "an X448"),
    (x448.X448PublicKey, "an X448"),
    *((kind, "a DSA") for kind in _dsa_key_types()),
)


@dataclass(frozen=True)
class ArchiveFacts:
    """What a signature binds; anything else about an archive is covered through its sha256."""

    name: str
    version: str
    sha256: str
    length: int


@dataclass(frozen=True)
class VerifiedSignature:
    """Proof that ``keyid`` vouched for exactly these facts."""

    keyid: str
    facts: ArchiveFacts


def _statement(facts: ArchiveFacts) -> dict[str, Any]:
    return {
        "_type": STATEMENT_TYPE,
        "length": facts.length,
        "name": facts.name,
        "sha256": facts.sha256,
        "version": facts.version,
    }


def statement_bytes(facts: ArchiveFacts) -> bytes:
    """The one byte string that gets signed; canonical so signer and verifier agree exactly."""
    return json.dumps(
        _statement(facts), sort_keys=True, separators=(",", ":"), ensure_ascii=True
    ).encode("ascii")


def key_id(public_key: ed25519.Ed25519PublicKey) -> str:
    """A stable name for a key that does not depend on how its PEM was formatted."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()


def fingerprint(keyid: str) -> str:
    """Short enough for a message, long enough to tell keys apart by eye."""
    return keyid[:16]


def generate_private_key() -> ed25519.Ed25519PrivateKey:
    return ed25519.Ed25519PrivateKey.generate()


# --- key encoding (pure) ---------------------------------------------------------------------


def private_key_pem(key: ed25519.Ed25519PrivateKey, passphrase: bytes | None = None) -> bytes:
    """PKCS8 so OpenSSL and other tools can read it; encrypted whenever a passphrase is given."""
    if passphrase is not None and not passphrase:
        raise InvalidInputError("the passphrase is empty; give a real one or none")
    encryption: serialization.KeySerializationEncryption = (
        serialization.NoEncryption()
        if passphrase is None
        else serialization.BestAvailableEncryption(passphrase)
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_key_pem(key: ed25519.Ed25519PublicKey) -> str:
    return key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode("ascii")


def _kind(key: object) -> str:
    return next((kind for cls, kind in _KEY_KINDS if isinstance(key, cls)), "an unsupported")


def private_key_from_pem(
    data: bytes, passphrase: bytes | None = None, *, source: str = "the key"
) -> ed25519.Ed25519PrivateKey:
    """Decode a private key, telling a missing passphrase, a wrong one and a wrong kind apart."""
    try:
        key = serialization.load_pem_private_key(data, passphrase)
    except TypeError as exc:  # cryptography's way to say the passphrase does not fit the key
        if passphrase is None:
            raise SignatureError("key", f"{source} is encrypted; give its passphrase") from exc
        raise SignatureError("key", f"{source} is not encrypted; give no passphrase") from exc
    except ValueError as exc:
        if passphrase is not None and b"ENCRYPTED" in data:
            raise SignatureError("key", f"wrong passphrase for {source}") from exc
        raise SignatureError("key", f"{source} is not a PEM private key") from exc
    except UnsupportedAlgorithm as exc:
        raise SignatureError("key", f"{source} uses an unsupported key type: {exc}") from exc
    if not isinstance(key, ed25519.Ed25519PrivateKey):
        raise SignatureError("key", f"{source} holds {_kind(key)} key; Plugport signs with Ed25519")
    return key


def public_key_from_pem(data: bytes, *, source: str = "the key") -> ed25519.Ed25519PublicKey:
    """Decode a publisher key as stored by the registry or shipped as a ``.pub`` file."""
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "; give the .pub file" if b"PRIVATE KEY" in data else ""
        raise SignatureError("key", f"{source} is not a PEM public key{hint}") from exc
    if not isinstance(key, ed25519.Ed25519PublicKey):
        raise SignatureError("key", f"{source} holds {_kind(key)} key; Plugport signs with Ed25519")
    return key


# --- key files -------------------------------------------------------------------------------


def _read_key_file(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise SignatureError("key", f"key file {path} does not exist") from exc
    except OSError as exc:
        raise SignatureError("key", f"cannot read key file {path}: {exc.strerror}") from exc


def load_private_key(path: Path, passphrase: bytes | None = None) -> ed25519.Ed25519PrivateKey:
    return private_key_from_pem(_read_key_file(path), passphrase, source=f"key file {path}")


def load_public_key(path: Path) -> ed25519.Ed25519PublicKey:
    return public_key_from_pem(_read_key_file(path), source=f"key file {path}")


def _write_new(path: Path, data: bytes, mode: int, *, overwrite: bool) -> None:
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if overwrite else os.O_EXCL)
    try:
        fd = os.open(path, flags, mode)
    except FileExistsError as exc:
        raise InvalidInputError(f"{path} already exists; pass --force to replace it") from exc
    with os.fdopen(fd, "wb") as file:
        # open()'s mode is filtered by the umask and ignored for an existing file.
        os.fchmod(fd, mode)
        file.write(data)


def write_keypair(
    path: Path,
    key: ed25519.Ed25519PrivateKey,
    *,
    passphrase: bytes | None = None,
    overwrite: bool = False,
) -> tuple[Path, Path]:
    """Write the private key readable only by its owner, and its public half beside it."""
    public_path = path.with_name(path.name + PUBLIC_KEY_SUFFIX)
    private_data = private_key_pem(key, passphrase)
    public_data = public_key_pem(key.public_key()).encode("ascii")
    if not overwrite:
        for existing in (path, public_path):
            if os.path.lexists(existing):
                raise InvalidInputError(f"{existing} already exists; pass --force to replace it")
    _write_new(path, private_data, 0o600, overwrite=overwrite)
    try:
        _write_new(public_path, public_data, 0o644, overwrite=overwrite)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, public_path


# --- signatures (pure) -----------------------------------------------------------------------


def sign(private_key: ed25519.Ed25519PrivateKey, facts: ArchiveFacts) -> bytes:
    """The ``.sig`` document: the statement travels with the signature so a verifier can say
    which fact differs, not just that something does."""
    signature = private_key.sign(statement_bytes(facts))
    document = {
        "format": SIGNATURE_FORMAT,
        "algorithm": ALGORITHM,
        "keyid": key_id(private_key.public_key()),
        "statement": _statement(facts),
        "signature": base64.b64encode(signature).decode("ascii"),
    }
    return (json.dumps(document, indent=2, sort_keys=True) + "\n").encode("ascii")


_READER = DocumentReader("signature", "signature document")
_malformed = _READER.malformed
_no_duplicates = _READER.no_duplicates
_check_fields = _READER.check_fields


def _parse_statement(obj: object) -> ArchiveFacts:
    names = [f.name for f in fields(ArchiveFacts)]
    statement = _check_fields(obj, frozenset([*names, "_type"]), "statement")
    if statement["_type"] != STATEMENT_TYPE:
        raise _malformed(f"statement _type is {statement['_type']!r}, not {STATEMENT_TYPE!r}")
    for name in ("name", "version", "sha256"):
        if not isinstance(statement[name], str):
            raise _malformed(f"statement {name} is not a string")
    length = statement["length"]
    if not isinstance(length, int) or isinstance(length, bool) or length < 0:
        raise _malformed("statement length is not a non-negative integer")
    return ArchiveFacts(**{name: statement[name] for name in names})


def _parse_document(document: bytes) -> tuple[str, ArchiveFacts, bytes]:
    try:
        parsed = json.loads(document, object_pairs_hook=_no_duplicates)
    except (ValueError, RecursionError) as exc:
        raise _malformed("not JSON") from exc
    doc = _check_fields(parsed, _DOCUMENT_FIELDS, "document")
    if doc["format"] != SIGNATURE_FORMAT:
        raise _malformed(f"format is {doc['format']!r}, not {SIGNATURE_FORMAT!r}")
    if doc["algorithm"] != ALGORITHM:
        raise _malformed(f"algorithm is {doc['algorithm']!r}, not {ALGORITHM!r}")
    keyid = doc["keyid"]
    if not (isinstance(keyid, str) and len(keyid) == _KEYID_HEX and set(keyid) <= _HEX_DIGITS):
        raise _malformed("keyid is not 64 lowercase hex digits")
    facts = _parse_statement(doc["statement"])
    if not isinstance(doc["signature"], str):
        raise _malformed("signature is not a string")
    try:
        signature = base64.b64decode(doc["signature"], validate=True)
    except ValueError as exc:  # binascii.Error is a ValueError
        raise _malformed("signature is not valid base64") from exc
    if len(signature) != _SIGNATURE_BYTES:
        raise _malformed(f"signature is {len(signature)} bytes, not {_SIGNATURE_BYTES}")
    return keyid, facts, signature


def signer_key_id(signature_document: bytes) -> str:
    """Which key a well-formed document says signed it, to find that key before verifying."""
    return _parse_document(signature_document)[0]


def signed_facts(signature_document: bytes) -> ArchiveFacts:
    """What a well-formed signature document claims, before any check that the claim is true."""
    return _parse_document(signature_document)[1]


def _differences(signed: ArchiveFacts, actual: ArchiveFacts) -> list[str]:
    return [
        f.name for f in fields(ArchiveFacts) if getattr(signed, f.name) != getattr(actual, f.name)
    ]


def verify(
    signature_document: bytes, public_key: ed25519.Ed25519PublicKey, actual: ArchiveFacts
) -> VerifiedSignature:
    """Accept only a well-formed document, by this key, over exactly these facts; on refusal,
    ``SignatureError.part`` names the archive, statement, signature or key that is wrong."""
    keyid, signed, signature = _parse_document(signature_document)
    expected_keyid = key_id(public_key)
    if keyid != expected_keyid:
        raise SignatureError(
            "key",
            f"signed by key {fingerprint(keyid)}…, "
            f"not by the given key {fingerprint(expected_keyid)}…",
        )
    differences = _differences(signed, actual)
    try:
        public_key.verify(signature, statement_bytes(signed))
    except InvalidSignature as exc:
        if differences:
            verb = "does" if len(differences) == 1 else "do"
            raise SignatureError(
                "statement",
                f"the signed statement was altered: its {' and '.join(differences)} {verb} not "
                "match the archive and the signature does not cover it",
            ) from exc
        raise SignatureError(
            "signature", "signature bytes do not verify for this statement (altered signature)"
        ) from exc
    if differences:
        detail = "; ".join(
            f"{name} is {getattr(actual, name)}, signed {getattr(signed, name)}"
            for name in differences
        )
        raise SignatureError("archive", f"archive does not match what was signed: {detail}")
    return VerifiedSignature(keyid=keyid, facts=signed)
