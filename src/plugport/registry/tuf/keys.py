"""The keys of the registry's TUF repository, kept where each belongs.

Root keys are offline: ``plugport registry tuf init`` writes them to a directory the operator
takes off the server (one PEM file per key), and only ``init`` and ``rotate`` read them. The
online keys (timestamp, snapshot, targets, and the seed the namespaces' keys are derived from)
live in one file every registry node shares, like the index key. A namespace's key is derived
from the seed, the namespace and its key generation, so one namespace's key can be replaced
(a new generation) without storing a private key per namespace in the database."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from securesystemslib.signer import CryptoSigner, Key, SSlibKey

from plugport.errors import InvalidInputError
from plugport.index import _write_atomic
from plugport.registry.tuf.rules import ONLINE_ROLES, Signers
from plugport.signing import private_key_from_pem, private_key_pem

__all__ = [
    "OnlineKeys",
    "load_online_keys",
    "load_root_signers",
    "new_online_keys",
    "signer_for",
    "write_online_keys",
    "write_root_keys",
]

_SEED_BYTES = 32
_ROOT_KEY_GLOB = "root-*.key"


def signer_for(private: ed25519.Ed25519PrivateKey) -> CryptoSigner:
    return CryptoSigner(private, SSlibKey.from_crypto(private.public_key(), scheme="ed25519"))


@dataclass(frozen=True)
class OnlineKeys:
    """The online roles' private keys and the namespaces' seed."""

    roles: Mapping[str, ed25519.Ed25519PrivateKey]
    namespace_seed: bytes

    def public(self) -> dict[str, Key]:
        return {role: signer_for(key).public_key for role, key in self.roles.items()}

    def namespace_key(self, namespace: str, generation: int) -> ed25519.Ed25519PrivateKey:
        material = HKDF(
            algorithm=hashes.SHA256(),
            length=32,
            salt=None,
            info=f"plugport tuf namespace {namespace} generation {generation}".encode(),
        ).derive(self.namespace_seed)
        return ed25519.Ed25519PrivateKey.from_private_bytes(material)

    def signers(self, generation: Callable[[str], int]) -> Signers:
        return Signers(
            timestamp=signer_for(self.roles["timestamp"]),
            snapshot=signer_for(self.roles["snapshot"]),
            targets=signer_for(self.roles["targets"]),
            namespace=lambda ns: signer_for(self.namespace_key(ns, generation(ns))),
        )

    def replaced(self, role: str) -> OnlineKeys:
        """These keys with a new key for ``role`` (an online role, or ``namespaces`` for a
        new seed: every namespace's key changes)."""
        if role == "namespaces":
            return OnlineKeys(self.roles, secrets.token_bytes(_SEED_BYTES))
        if role not in ONLINE_ROLES:
            raise InvalidInputError(f"--role: {role!r} is not root, {', '.join(ONLINE_ROLES)}")
        return OnlineKeys(
            {**self.roles, role: ed25519.Ed25519PrivateKey.generate()}, self.namespace_seed
        )


def new_online_keys() -> OnlineKeys:
    return OnlineKeys(
        {role: ed25519.Ed25519PrivateKey.generate() for role in ONLINE_ROLES},
        secrets.token_bytes(_SEED_BYTES),
    )


def write_online_keys(path: Path, keys: OnlineKeys) -> None:
    """The online keys file (mode 0600), replaced in one step."""
    document = {
        "roles": {role: private_key_pem(key).decode() for role, key in keys.roles.items()},
        "namespace_seed": keys.namespace_seed.hex(),
    }
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    _write_atomic(path, json.dumps(document, indent=1).encode(), 0o600, exclusive=False)


def load_online_keys(path: Path) -> OnlineKeys:
    """The online keys file, or :class:`InvalidInputError` naming the file and what is wrong."""
    try:
        document = json.loads(path.read_bytes())
        roles = {
            role: private_key_from_pem(document["roles"][role].encode(), source=f"{path} {role}")
            for role in ONLINE_ROLES
        }
        seed = bytes.fromhex(document["namespace_seed"])
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInputError(f"{path}: not a TUF online keys file ({exc})") from None
    if len(seed) != _SEED_BYTES:
        raise InvalidInputError(f"{path}: namespace_seed is not {_SEED_BYTES} bytes")
    return OnlineKeys(roles, seed)


def write_root_keys(directory: Path, count: int) -> list[CryptoSigner]:
    """``count`` new root keys in ``directory`` (created, mode 0700; each ``root-N.key`` mode
    0600). Refuses a directory that already holds root keys: they are never overwritten."""
    if count < 1:
        raise InvalidInputError(f"--root-keys: at least 1, not {count}")
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    if any(directory.glob(_ROOT_KEY_GLOB)):
        raise InvalidInputError(
            f"{directory}: already holds root keys; give an empty directory for new ones"
        )
    signers = []
    for number in range(1, count + 1):
        key = ed25519.Ed25519PrivateKey.generate()
        path = directory / f"root-{number}.key"
        if not _write_atomic(path, private_key_pem(key), 0o600, exclusive=True):
            raise InvalidInputError(f"{path}: appeared while the keys were written")
        signers.append(signer_for(key))
    os.chmod(directory, 0o700)
    return signers


def load_root_signers(directory: Path) -> list[CryptoSigner]:
    """Every ``root-*.key`` in ``directory``; :class:`InvalidInputError` when there is none."""
    paths = sorted(directory.glob(_ROOT_KEY_GLOB))
    if not paths:
        raise InvalidInputError(f"{directory}: holds no root keys (root-*.key)")
    return [signer_for(private_key_from_pem(path.read_bytes(), source=str(path))) for path in paths]
