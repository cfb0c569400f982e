"""Which key a registry node signs the index with, held to the one every node shares.

All nodes behind one load balancer sign one index, stored once in the shared database; a
node with a key of its own would sign a document that hosts pinned to the shared key refuse.
So a node checks at start which key signed the stored document: a different key, or none
where the database already has a document, stops the node with the setting to fix (nothing
created). An operator rotating the key on purpose starts the nodes with ``rotate_index_key``
once: the next document is then signed with the new key (hosts must pin it)."""

from __future__ import annotations

import json
import re
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric import ed25519
from sqlalchemy import Engine, select

from plugport.errors import IndexKeyMismatchError
from plugport.index import load_or_create_registry_key
from plugport.registry.models import IndexState
from plugport.signing import key_id, load_private_key

__all__ = ["SETTING_HINT", "node_index_key", "signer_of"]

SETTING_HINT = (
    "give every node the same key (--index-key-file, PLUGPORT_INDEX_KEY_FILE), or start the "
    "nodes once with --rotate-index-key to sign the index with this key from now on (hosts "
    "that pinned the old key must pin the new one)"
)


_SIGNER = re.compile(rb'\{"signatures":\[\{"keyid":"([0-9a-f]{64})"')
"""The head of a document :func:`plugport.index.sign_index` wrote: canonical JSON (sorted keys,
no whitespace), so the signer comes first and the entries, megabytes of them, are not parsed."""


def signer_of(document: bytes | None) -> str | None:
    """The key id the stored document's signature names, or None when there is none. Read on
    every request for the index: from the document's head when it is canonical."""
    if not document:
        return None
    head = _SIGNER.match(document)
    if head is not None:
        return head.group(1).decode("ascii")
    try:
        signatures = json.loads(document)["signatures"]
        return str(signatures[0]["keyid"])
    except (ValueError, KeyError, IndexError, TypeError):
        return None  # not a document this registry signed: nothing to hold a key to


def node_index_key(engine: Engine, path: Path, *, rotate: bool) -> ed25519.Ed25519PrivateKey:
    """This node's index key: read from ``path``, or created there when the database has no
    document yet (the first node of a new registry); refused when it is not the stored
    document's signer, unless ``rotate``."""
    with engine.connect() as connection:
        stored = signer_of(connection.execute(select(IndexState.document)).scalar())
    if not path.exists() and stored is not None and not rotate:
        raise IndexKeyMismatchError(stored, f"file {path} does not exist", SETTING_HINT)
    key = load_private_key(path) if path.exists() else load_or_create_registry_key(path)
    ours = key_id(key.public_key())
    if stored is not None and stored != ours and not rotate:
        raise IndexKeyMismatchError(stored, f"is {ours[:16]}…", SETTING_HINT)
    return key
