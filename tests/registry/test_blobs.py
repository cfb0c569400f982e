"""One contract, three stores: on disk, in memory, and S3 (against moto's server on 127.0.0.1)."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import ArchiveLimitError, InvalidInputError
from plugport.registry.blobs import (
    S3_ENDPOINT_ENV,
    BlobNotFoundError,
    BlobRef,
    BlobStore,
    LocalBlobStore,
    MemoryBlobStore,
    S3BlobStore,
    check_sha256,
    open_blob_store,
)

DATA = b"plugin archive bytes\n" * 100
DATA_SHA = hashlib.sha256(DATA).hexdigest()
MISSING_SHA = "0" * 64
BAD_HASHES = [
    "../../etc/passwd",
    "../" * 21 + "x",  # 64 characters, none of them hex
    DATA_SHA.upper(),
    DATA_SHA[:63],
    DATA_SHA + "0",
    DATA_SHA + "\n",
    "",
    "/" + DATA_SHA[1:],
    "g" * 64,
]


@dataclass
class Subject:
    """A store and a way to list everything it holds, to prove a refusal left nothing."""

    store: BlobStore
    inventory: Callable[[], list[str]]


# --- S3 through moto's server ----------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install 'plugport[s3]')")
    server_module = pytest.importorskip(
        "moto.server", reason="moto's server is not installed (pip install 'moto[server]')"
    )
    server = server_module.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        # Fake credentials for the emulator; never real ones from the environment.
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }.items():
            patch.setenv(name, value)
        for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
            patch.delenv(name, raising=False)
        patch.setenv(S3_ENDPOINT_ENV, f"http://{host}:{port}")
        yield f"http://{host}:{port}"
    server.stop()


def _s3_subject(endpoint: str) -> Subject:
    import boto3

    bucket = f"blobs-{uuid.uuid4().hex[:12]}"
    client: Any = boto3.client("s3", endpoint_url=endpoint)
    client.create_bucket(Bucket=bucket)
    store = open_blob_store(f"s3://{bucket}/archives", Path("/nonexistent"))
    assert isinstance(store, S3BlobStore)

    def inventory() -> list[str]:
        listing = client.list_objects_v2(Bucket=bucket)
        return sorted(item["Key"] for item in listing.get("Contents", []))

    return Subject(store, inventory)


@pytest.fixture(params=["local", "memory", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> Subject:
    if request.param == "local":
        root = tmp_path / "blobs"
        local = LocalBlobStore(root)
        return Subject(
            local,
            lambda: sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()),
        )
    if request.param == "memory":
        memory = MemoryBlobStore()
        return Subject(memory, lambda: sorted(memory))
    return _s3_subject(request.getfixturevalue("s3_endpoint"))


def read(store: BlobStore, sha256: str) -> bytes:
    with store.open(sha256) as stream:
        return stream.read()


# --- the contract ----------------------------------------------------------------------------


def test_round_trip(subject: Subject) -> None:
    store = subject.store
    ref = store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    assert ref == BlobRef(sha256=DATA_SHA, size=len(DATA))
    assert store.exists(DATA_SHA)
    assert read(store, DATA_SHA) == DATA


def test_large_upload_streams_in_chunks(subject: Subject) -> None:
    data = os.urandom(2 * 1024 * 1024 + 17)  # more than two copy chunks
    ref = subject.store.put(io.BytesIO(data), max_bytes=len(data))
    assert ref == BlobRef(hashlib.sha256(data).hexdigest(), len(data))
    assert read(subject.store, ref.sha256) == data


def test_empty_blob(subject: Subject) -> None:
    ref = subject.store.put(io.BytesIO(b""), max_bytes=0)
    assert ref == BlobRef(hashlib.sha256(b"").hexdigest(), 0)
    assert read(subject.store, ref.sha256) == b""


def test_put_twice_stores_once(subject: Subject) -> None:
    first = subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    before = subject.inventory()
    second = subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    assert first == second
    assert subject.inventory() == before
    assert len(before) == 1
    assert read(subject.store, DATA_SHA) == DATA


def test_over_the_limit_is_refused_and_leaves_nothing(subject: Subject) -> None:
    with pytest.raises(ArchiveLimitError) as caught:
        subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA) - 1)
    assert caught.value.limit == "max_archive_bytes"
    assert caught.value.maximum == len(DATA) - 1
    assert caught.value.value > len(DATA) - 1
    assert subject.inventory() == []
    assert not subject.store.exists(DATA_SHA)


def test_a_failing_source_leaves_nothing(subject: Subject) -> None:
    class Broken(io.BytesIO):
        """Gives one chunk, then the connection drops."""

        def read(self, size: int | None = -1, /) -> bytes:
            if self.tell():
                raise OSError("connection reset")
            return super().read(size)

    with pytest.raises(OSError, match="connection reset"):
        subject.store.put(Broken(DATA), max_bytes=len(DATA))
    assert subject.inventory() == []


@pytest.mark.parametrize("bad", BAD_HASHES)
def test_bad_hashes_are_refused_everywhere(subject: Subject, bad: str) -> None:
    subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    before = subject.inventory()
    for call in (subject.store.open, subject.store.exists, subject.store.delete):
        with pytest.raises(InvalidInputError, match="not a sha256"):
            call(bad)
    assert subject.inventory() == before


def test_open_missing(subject: Subject) -> None:
    with pytest.raises(BlobNotFoundError) as caught:
        subject.store.open(MISSING_SHA)
    assert caught.value.sha256 == MISSING_SHA
    assert MISSING_SHA in str(caught.value)
    assert isinstance(caught.value, LookupError)
    assert not subject.store.exists(MISSING_SHA)


def test_delete(subject: Subject) -> None:
    subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    other = subject.store.put(io.BytesIO(b"other"), max_bytes=10)
    assert subject.store.delete(DATA_SHA) is True
    assert not subject.store.exists(DATA_SHA)
    with pytest.raises(BlobNotFoundError):
        subject.store.open(DATA_SHA)
    assert subject.store.delete(DATA_SHA) is False
    assert read(subject.store, other.sha256) == b"other"


def test_negative_limit_is_refused(subject: Subject) -> None:
    with pytest.raises(InvalidInputError, match="max_bytes"):
        subject.store.put(io.BytesIO(DATA), max_bytes=-1)
    assert subject.inventory() == []


def test_stamps_list_every_blob_with_its_write_time(subject: Subject) -> None:
    before = time.time()
    other = subject.store.put(io.BytesIO(b"other"), max_bytes=10)
    subject.store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    stamps = {stamp.sha256: stamp.written_at for stamp in subject.store.stamps()}
    assert sorted(stamps) == sorted([DATA_SHA, other.sha256])
    # S3 keeps whole seconds (and moto's clock is this machine's).
    assert all(before - 2 <= written <= time.time() + 2 for written in stamps.values())
    subject.store.delete(other.sha256)
    assert [stamp.sha256 for stamp in subject.store.stamps()] == [DATA_SHA]


def test_storing_the_same_bytes_again_renews_the_write_time(tmp_path: Path) -> None:
    clock = [1000.0]
    memory = MemoryBlobStore(clock=lambda: clock[0])
    local = LocalBlobStore(tmp_path)
    for store in (memory, local):
        store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    os.utime(local.path(DATA_SHA), (1000.0, 1000.0))
    assert [s.written_at for s in memory.stamps()] == [s.written_at for s in local.stamps()]
    clock[0] = time.time()
    for store in (memory, local):
        store.put(io.BytesIO(DATA), max_bytes=len(DATA))
        [stamp] = store.stamps()
        assert stamp.written_at > time.time() - 60


def test_s3_storing_the_same_bytes_again_renews_the_object(s3_endpoint: str) -> None:
    subject = _s3_subject(s3_endpoint)
    store = subject.store
    assert isinstance(store, S3BlobStore)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    first = store._client.head_object(Bucket=store.bucket, Key=store.key(DATA_SHA))
    time.sleep(1.1)  # LastModified has whole seconds
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    second = store._client.head_object(Bucket=store.bucket, Key=store.key(DATA_SHA))
    assert second["LastModified"] > first["LastModified"]
    assert read(store, DATA_SHA) == DATA
    assert subject.inventory() == [store.key(DATA_SHA)]


def test_stamps_ignore_what_is_not_a_blob(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    (tmp_path / "ab").mkdir()
    (tmp_path / "ab" / "notes.txt").write_text("x")
    (tmp_path / "README").write_text("x")
    (tmp_path / "tmp" / ("0" * 64)).write_text("partial")
    assert [stamp.sha256 for stamp in store.stamps()] == [DATA_SHA]


def test_local_discard_partial_removes_only_old_temp_files(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    old, fresh = tmp_path / "tmp" / "upload-old", tmp_path / "tmp" / "upload-fresh"
    old.write_bytes(b"half an archive")
    fresh.write_bytes(b"being written")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    assert store.discard_partial(time.time() - 3600) == 1
    assert sorted(p.name for p in (tmp_path / "tmp").iterdir()) == ["upload-fresh"]
    assert read(store, DATA_SHA) == DATA  # finished blobs are not partial writes


def test_memory_discard_partial_has_nothing_to_do() -> None:
    store = MemoryBlobStore()
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    assert store.discard_partial(time.time() + 60) == 0
    assert list(store) == [DATA_SHA]


def test_s3_discard_partial_aborts_old_multipart_uploads(s3_endpoint: str) -> None:
    subject = _s3_subject(s3_endpoint)
    store = subject.store
    assert isinstance(store, S3BlobStore)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    client = store._client
    started = client.create_multipart_upload(Bucket=store.bucket, Key=store.key(MISSING_SHA))
    client.upload_part(
        Bucket=store.bucket,
        Key=store.key(MISSING_SHA),
        UploadId=started["UploadId"],
        PartNumber=1,
        Body=b"part",
    )
    # moto reports one fixed, old "Initiated" for every multipart upload, so only "begun
    # after the cutoff" at the epoch can be shown here; the age rule is the same comparison
    # as the other stores'.
    assert store.discard_partial(0) == 0
    assert store.discard_partial(time.time() + 60) == 1
    assert client.list_multipart_uploads(Bucket=store.bucket).get("Uploads", []) == []
    assert [stamp.sha256 for stamp in store.stamps()] == [DATA_SHA]
    assert read(store, DATA_SHA) == DATA


# --- on disk ---------------------------------------------------------------------------------


@pytest.fixture
def open_umask() -> Iterator[None]:
    old = os.umask(0o077)
    yield
    os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_local_layout_and_mode(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    path = tmp_path / DATA_SHA[:2] / DATA_SHA[2:4] / DATA_SHA
    assert path.read_bytes() == DATA
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert list((tmp_path / "tmp").iterdir()) == []


def test_local_refusal_leaves_tmp_empty(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path)
    with pytest.raises(ArchiveLimitError):
        store.put(io.BytesIO(DATA), max_bytes=10)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert [p.name for p in tmp_path.iterdir()] == ["tmp"]


def test_local_crafted_hash_touches_no_path(tmp_path: Path) -> None:
    root = tmp_path / "root"
    secret = tmp_path / "secret"
    secret.write_bytes(b"keep")
    store = LocalBlobStore(root)
    for bad in ("../../secret", "../secret", str(secret)):
        with pytest.raises(InvalidInputError):
            store.delete(bad)
        with pytest.raises(InvalidInputError):
            store.open(bad)
    assert secret.read_bytes() == b"keep"


def test_local_second_put_is_atomic_for_readers(tmp_path: Path) -> None:
    """A second put of the same bytes renames a complete file over the first."""
    store = LocalBlobStore(tmp_path)
    store.put(io.BytesIO(DATA), max_bytes=len(DATA))
    path = store.path(DATA_SHA)
    with path.open("rb") as reader:  # a reader holding the old file keeps reading it whole
        store.put(io.BytesIO(DATA), max_bytes=len(DATA))
        assert reader.read() == DATA
    assert path.read_bytes() == DATA


def test_check_sha256() -> None:
    assert check_sha256(DATA_SHA) == DATA_SHA
    with pytest.raises(InvalidInputError):
        check_sha256(123)


# --- choosing a store from a URL -------------------------------------------------------------


def test_open_blob_store_default_and_file(tmp_path: Path) -> None:
    default = open_blob_store(None, tmp_path)
    assert isinstance(default, LocalBlobStore)
    assert default.root == tmp_path / "blobs"
    bare = open_blob_store("file://", tmp_path)
    assert isinstance(bare, LocalBlobStore)
    assert bare.root == tmp_path / "blobs"
    explicit = open_blob_store(f"file://{tmp_path / 'elsewhere'}", tmp_path)
    assert isinstance(explicit, LocalBlobStore)
    assert explicit.root == tmp_path / "elsewhere"
    assert (tmp_path / "elsewhere" / "tmp").is_dir()


def test_open_blob_store_memory(tmp_path: Path) -> None:
    assert isinstance(open_blob_store("memory://", tmp_path), MemoryBlobStore)
    assert list(tmp_path.iterdir()) == []


def test_open_blob_store_s3(tmp_path: Path) -> None:
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install 'plugport[s3]')")
    store = open_blob_store("s3://my-bucket/some/prefix/", tmp_path)
    assert isinstance(store, S3BlobStore)
    assert store.bucket == "my-bucket"
    assert store.key(DATA_SHA) == f"some/prefix/{DATA_SHA[:2]}/{DATA_SHA[2:4]}/{DATA_SHA}"
    bare = open_blob_store("s3://my-bucket", tmp_path)
    assert isinstance(bare, S3BlobStore)
    assert bare.key(DATA_SHA) == f"{DATA_SHA[:2]}/{DATA_SHA[2:4]}/{DATA_SHA}"


def test_s3_errors_other_than_missing_keys_are_not_hidden(s3_endpoint: str) -> None:
    """A missing bucket is the operator's problem to see, not a missing blob."""
    from botocore.exceptions import ClientError

    store = S3BlobStore("no-such-bucket")
    with pytest.raises(ClientError) as caught:
        store.open(DATA_SHA)
    assert not isinstance(caught.value, BlobNotFoundError)


def test_s3_needs_a_bucket() -> None:
    pytest.importorskip("boto3", reason="boto3 is not installed (pip install 'plugport[s3]')")
    with pytest.raises(InvalidInputError, match="bucket"):
        S3BlobStore("")


def test_s3_without_boto3_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "boto3", None)  # makes ``import boto3`` fail
    with pytest.raises(InvalidInputError, match=r"pip install 'plugport\[s3\]'"):
        open_blob_store("s3://bucket/prefix", tmp_path)


@pytest.mark.parametrize(
    "url",
    [
        "ftp://example.org/blobs",
        "/srv/blobs",
        "blobs",
        "file://otherhost/srv/blobs",
        "s3:///no-bucket",
        "memory://something",
        "file:///srv/blobs?x=1",
        "s3://bucket/prefix#frag",
    ],
)
def test_open_blob_store_refuses_other_urls(tmp_path: Path, url: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        open_blob_store(url, tmp_path)
    message = str(caught.value)
    assert repr(url) in message
    for scheme in ("file://", "memory://", "s3://"):
        assert scheme in message
    assert list(tmp_path.iterdir()) == []
