"""Orphan blobs (stored by a publish that never committed) are collected at start and
periodically, and never a blob that a version refers to, that an upload in flight has claimed,
or that was written after the oldest upload in flight began or within the minimum age."""

from __future__ import annotations

import contextlib
import io
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from plugport.registry import orphans
from plugport.registry.app import create_app
from plugport.registry.blobs import BlobStamp, LocalBlobStore, MemoryBlobStore
from plugport.registry.db import make_sessions
from plugport.registry.migrate import upgrade
from plugport.registry.routers import plugins as plugins_router
from plugport.registry.settings import RegistrySettings
from tests._uvicorn import serving
from tests.registry.conftest import Registry, running
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump

HOUR = 3600.0


def test_the_decision() -> None:
    stamps = [BlobStamp("a" * 64, 10.0), BlobStamp("b" * 64, 10.0), BlobStamp("c" * 64, 99.0)]
    assert orphans.orphans(stamps, {"b" * 64}, cutoff=50.0) == ["a" * 64]
    assert orphans.orphans(stamps, set(), cutoff=10.0) == []  # written at the cutoff: kept
    assert orphans.orphans(stamps, set(), cutoff=100.0) == ["a" * 64, "b" * 64, "c" * 64]


def test_uploads_in_flight_move_the_cutoff_and_claims_last_until_they_end() -> None:
    clock = [100.0]
    uploads = orphans.Uploads(clock=lambda: clock[0])
    assert uploads.cutoff(500.0) == 500.0
    with uploads.in_flight() as first:
        clock[0] = 200.0
        with uploads.in_flight() as second:
            first.claim("a" * 64)
            second.claim("a" * 64)
            assert (uploads.cutoff(500.0), uploads.cutoff(50.0), len(uploads)) == (100.0, 50.0, 2)
        assert uploads.claims["a" * 64] == 1
        assert uploads.cutoff(500.0) == 100.0
    assert (uploads.cutoff(500.0), len(uploads), dict(uploads.claims)) == (500.0, 0, {})


def _put(store: MemoryBlobStore, clock: list[float], at: float, data: bytes) -> str:
    clock[0] = at
    return store.put(io.BytesIO(data), max_bytes=len(data)).sha256


def test_collect_keeps_young_claimed_and_in_flight_blobs(engine: Engine) -> None:
    upgrade(engine)
    sessions = make_sessions(engine)
    clock = [0.0]
    store = MemoryBlobStore(clock=lambda: clock[0])
    old = _put(store, clock, 0.0, b"old orphan")
    claimed = _put(store, clock, 0.0, b"old, claimed by an upload in flight")
    late = _put(store, clock, 150.0, b"written after that upload began")
    young = _put(store, clock, 9_990.0, b"young orphan")
    uploads = orphans.Uploads(clock=lambda: 100.0)
    with uploads.in_flight() as upload:
        upload.claim(claimed)
        done = orphans.collect(store, sessions, uploads, now=10_000.0, min_age_s=60)
        assert done == orphans.Collected((old,), 0)
        assert sorted(store) == sorted([claimed, late, young])
    done = orphans.collect(store, sessions, uploads, now=10_000.0, min_age_s=60)
    assert sorted(done.blobs) == sorted([claimed, late])
    assert list(store) == [young]


def test_a_claim_waits_for_a_delete_in_progress(engine: Engine) -> None:
    """The collector decides and deletes under the uploads' lock: an upload that claims the
    same digest meanwhile waits, then finds no blob, and stores it afresh."""
    upgrade(engine)
    sessions = make_sessions(engine)
    store = MemoryBlobStore(clock=lambda: 0.0)
    digest = store.put(io.BytesIO(b"orphan"), max_bytes=10).sha256
    uploads = orphans.Uploads()
    deleting, release = threading.Event(), threading.Event()
    real_delete = store.delete

    def slow_delete(sha256: str) -> bool:
        deleting.set()
        release.wait(10)
        return real_delete(sha256)

    store.delete = slow_delete  # type: ignore[method-assign]
    collector = threading.Thread(
        target=orphans.collect,
        args=(store, sessions, uploads),
        kwargs={"now": HOUR, "min_age_s": 60},
    )
    collector.start()
    assert deleting.wait(10)
    claimed = threading.Event()

    def upload() -> None:
        with uploads.in_flight() as flight:
            flight.claim(digest)
            claimed.set()

    uploader = threading.Thread(target=upload)
    uploader.start()
    assert not claimed.wait(0.2)  # blocked behind the delete
    release.set()
    collector.join(10)
    uploader.join(10)
    assert claimed.is_set()
    assert not store.exists(digest)  # the upload would now store it again (exists() is False)


def test_a_publish_that_never_committed_leaves_a_blob_the_next_start_collects(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    (tmp_path / "work").mkdir()
    store = LocalBlobStore(data_dir / "blobs")
    with running(engine, data_dir) as registry:
        publisher = Publisher(registry, tmp_path / "work")
        kept = publisher.upload(publisher.build())
        assert kept.status_code == 201, kept.text

        def crash(*_: object, **__: object) -> None:
            raise RuntimeError("the process died before the commit")

        # The blob is stored, then the request fails before its transaction commits: what a
        # publish killed mid-way (or a database lost at the commit) leaves behind.
        monkeypatch.setattr(plugins_router, "version_public", crash)
        failed = publisher.upload(publisher.build(edit=bump("0.2.0")))
        assert failed.status_code == 500
        monkeypatch.undo()
        assert registry.count("plugin_versions") == 1
        # The README both versions show: stored once, referred to by the committed version.
        with engine.connect() as connection:
            shown = set(connection.execute(text("SELECT sha256 FROM version_content")).scalars())
    assert len(shown) == 1
    blobs = {stamp.sha256 for stamp in store.stamps()}
    kept_blobs = {kept.json()["sha256"], *shown}
    assert kept_blobs <= blobs
    [orphan] = blobs - kept_blobs
    partial = store.tmp_dir / "upload-killed"
    partial.write_bytes(b"half a blob")
    for path in (store.path(orphan), *map(store.path, kept_blobs), partial):
        os.utime(path, (time.time() - 2 * HOUR, time.time() - 2 * HOUR))

    with running(engine, data_dir, blob_gc_min_age_s=HOUR) as registry:
        deadline = time.monotonic() + 10
        while store.exists(orphan) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not store.exists(orphan)
        assert not partial.exists()
        assert registry.count("plugin_versions") == 1
        assert {stamp.sha256 for stamp in store.stamps()} == kept_blobs


def test_collection_can_be_turned_off(engine: Engine, tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    store = LocalBlobStore(data_dir / "blobs")
    orphan = store.put(io.BytesIO(b"orphan"), max_bytes=10).sha256
    os.utime(store.path(orphan), (time.time() - 2 * HOUR, time.time() - 2 * HOUR))
    with running(engine, data_dir, blob_gc_interval_s=0) as registry:
        with registry.client() as client:
            assert client.get("/healthz").status_code == 200
        time.sleep(0.3)
        assert store.exists(orphan)


def test_an_upload_stays_in_flight_until_its_version_is_committed(
    engine: Engine, tmp_path: Path
) -> None:
    """The publish route's upload ends after the request's commit: the collector can never
    see the blob unclaimed and its version row not yet visible."""
    seen_at_end: list[int] = []

    class Watched(orphans.Uploads):
        @contextlib.contextmanager
        def in_flight(self) -> Iterator[orphans.InFlight]:
            with super().in_flight() as upload:
                yield upload
            with engine.connect() as connection:  # another connection: only committed rows
                query = text("SELECT count(*) FROM plugin_versions")
                seen_at_end.append(int(connection.execute(query).scalar_one()))

    app = create_app(RegistrySettings(data_dir=tmp_path / "data"), engine=engine)
    app.state.uploads = Watched()
    (tmp_path / "work").mkdir()
    with serving(app) as url:
        registry = Registry(url, engine, "", tmp_path / "data")
        registry.admin = registry.token("root", "admin")
        publisher = Publisher(registry, tmp_path / "work")
        assert publisher.upload(publisher.build()).status_code == 201
    assert seen_at_end == [1]
