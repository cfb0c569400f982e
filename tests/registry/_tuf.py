"""A registry that publishes TUF metadata, for tests: its root keys, online keys and root
version 1 made as ``plugport registry tuf init`` makes them."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from securesystemslib.signer import CryptoSigner
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from plugport.registry.migrate import upgrade
from plugport.registry.models import utcnow
from plugport.registry.services import tuf_repo
from plugport.registry.tuf.keys import (
    OnlineKeys,
    new_online_keys,
    write_online_keys,
    write_root_keys,
)
from plugport.registry.tuf.rules import new_root


@dataclass
class TufKeys:
    root_signers: list[CryptoSigner]
    online: OnlineKeys
    root: bytes
    """Root version 1 as served: what a host's operator ships."""


def enable_tuf(
    engine: Engine, data_dir: Path, *, root_keys: int = 1, threshold: int = 1
) -> TufKeys:
    upgrade(engine)
    online = new_online_keys()
    signers = write_root_keys(data_dir.parent / "root-keys", root_keys)
    write_online_keys(data_dir / "tuf-online-keys.json", online)
    with Session(engine) as session:
        root = new_root(signers, threshold, online.public(), now=utcnow())
        tuf_repo.initialise(session, root, online, now=utcnow())
        session.commit()
        document = tuf_repo.document(session, "root", 1)
    return TufKeys(signers, online, document)
