"""The TUF repository in the registry's database, on SQLite and PostgreSQL: what is published
when the catalogue changes, two nodes racing to publish, a namespace's key replaced, and a
root rotation that does not follow the newest root refused with nothing stored."""

from __future__ import annotations

import threading
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from tuf.api.metadata import Metadata, Targets, Timestamp

from plugport.errors import InvalidInputError, NotFoundError
from plugport.registry.models import TufMetadata, utcnow
from plugport.registry.services import tuf_repo
from plugport.registry.tuf.keys import load_root_signers
from plugport.registry.tuf.rules import rotated_root
from plugport.signing import key_id
from tests.host._plugins import publish, write
from tests.registry._tuf import enable_tuf
from tests.registry.conftest import running
from tests.registry.test_publish import Publisher


def _count(engine: Engine) -> int:
    with Session(engine) as session:
        return int(session.scalar(select(func.count()).select_from(TufMetadata)) or 0)


def test_a_publish_signs_the_namespace_role_snapshot_and_timestamp(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    with running(engine, data) as registry:
        publisher = Publisher(registry, tmp_path / "scratch")
        publish(registry, publisher, write(tmp_path / "src", "acme.hello", "1.0.0"), tmp_path / "d")
        with Session(engine) as session:
            first = tuf_repo.publish(session, tuf.online, now=utcnow())
            session.commit()
        stored = _count(engine)
        with Session(engine) as session:  # nothing changed: the same bytes, nothing stored
            assert tuf_repo.publish(session, tuf.online, now=utcnow()) == first
            session.commit()
        assert _count(engine) == stored
        with Session(engine) as session:
            role = Metadata[Targets].from_bytes(tuf_repo.document(session, "ns.acme"))
        assert list(role.signed.targets) == ["acme.hello/acme.hello-1.0.0.plugport"]
        facts = role.signed.targets["acme.hello/acme.hello-1.0.0.plugport"].custom
        assert facts["plugport"]["key_id"] == key_id(publisher.key.public_key())
        assert facts["plugport"]["yanked"] is False


def test_two_nodes_racing_publish_one_timestamp_per_version(engine: Engine, tmp_path: Path) -> None:
    if engine.dialect.name == "sqlite":
        pytest.skip("SQLite serialises writers: the race needs PostgreSQL's row locks")
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    later = utcnow() + timedelta(days=3)  # the timestamp is past half its life: re-sign it
    with Session(engine) as session:
        before = tuf_repo.status(session).versions["timestamp"]
    documents: list[bytes] = []
    barrier = threading.Barrier(2)

    def node() -> None:
        with Session(engine) as session:
            barrier.wait()
            documents.append(tuf_repo.publish(session, tuf.online, now=later))
            session.commit()

    threads = [threading.Thread(target=node) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(documents) == 2
    assert documents[0] == documents[1]  # the loser serves the winner's
    with Session(engine) as session:
        newest = Metadata[Timestamp].from_bytes(tuf_repo.document(session, "timestamp"))
    assert newest.signed.version == before + 1
    assert Metadata[Timestamp].from_bytes(documents[0]).signed.version == before + 1


def test_a_root_that_skips_a_version_is_refused_and_nothing_stored(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    signers = load_root_signers(data.parent / "root-keys")
    with Session(engine) as session:
        current = tuf_repo.latest_root(session)
        assert current is not None
        two = rotated_root(current, signers, now=utcnow())
        three = rotated_root(two, signers, now=utcnow())
        before = _count(engine)
        with pytest.raises(InvalidInputError, match="does not follow version 1"):
            tuf_repo.store_root(session, three, tuf.online, now=utcnow())
        session.rollback()
    assert _count(engine) == before


def test_too_few_root_keys_cannot_sign_the_next_root(engine: Engine, tmp_path: Path) -> None:
    data = tmp_path / "data"
    enable_tuf(engine, data, root_keys=3, threshold=2)
    signers = load_root_signers(data.parent / "root-keys")
    with Session(engine) as session:
        current = tuf_repo.latest_root(session)
        assert current is not None
        with pytest.raises(InvalidInputError, match=r"needs 2 of its own 3 keys .* 1 of the keys"):
            rotated_root(current, signers[:1], now=utcnow())


def test_superseded_versions_go_after_an_hour_and_roots_stay(
    engine: Engine, tmp_path: Path
) -> None:
    data = tmp_path / "data"
    tuf = enable_tuf(engine, data)
    start = utcnow()

    def stored(role: str) -> list[int]:
        with Session(engine) as session:
            return sorted(
                session.scalars(select(TufMetadata.version).where(TufMetadata.role == role))
            )

    for hours in (13, 26):  # past half the timestamp's life each time: a new version
        with Session(engine) as session:
            tuf_repo.publish(session, tuf.online, now=start + timedelta(hours=hours))
            session.commit()
    # v1 was superseded 13 h before the last publish: gone; v2 only just now: kept for hosts
    # that read the timestamp a moment ago
    assert stored("timestamp") == [2, 3]
    assert stored("snapshot") == [1]
    assert stored("root") == [1]
    with Session(engine) as session:
        with pytest.raises(NotFoundError):
            tuf_repo.document(session, "timestamp", 1)
        assert tuf_repo.document(session, "timestamp", 2)
