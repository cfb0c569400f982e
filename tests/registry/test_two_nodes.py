"""Two registry nodes as behind a load balancer: one PostgreSQL schema, one S3 bucket (moto's
server on 127.0.0.1), one Redis and one index key, each node with its own engine and data
directory. What is done through one node is what the other serves: publish on A, then search,
detail, download, signed index and install through B; a yank on B moves A's resolution within
a second; a rate limit spent through A is spent on B. Skipped, with the reason, when
``PLUGPORT_TEST_POSTGRES_URL`` or ``PLUGPORT_TEST_REDIS_URL`` is unset (``.ci/run`` sets both)."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, text

from plugport.host import PluginHost
from plugport.index import load_or_create_registry_key
from plugport.registry.blobs import S3BlobStore
from plugport.registry.db import make_engine, make_sessions
from plugport.registry.orphans import Uploads, collect
from plugport.registry.ratelimit import RateLimiter, RedisRateLimiter
from tests.registry.conftest import POSTGRES_URL, Registry, engine_for, running
from tests.registry.test_blobs import s3_endpoint
from tests.registry.test_lifecycle import resolved, two_published
from tests.registry.test_publish import Publisher
from tests.registry.test_review import bump
from tests.registry.test_signed_index import fetch, listed, registry_key

__all__ = ["s3_endpoint"]  # the module-scoped moto server fixture, used here too

REDIS_URL = os.environ.get("PLUGPORT_TEST_REDIS_URL")
VISIBLE_WITHIN_S = 1.0  # the default bound for a change on one node to show on another


def _second_engine(engine: Engine) -> Engine:
    """Another engine on ``engine``'s schema: node B's own connections."""
    assert POSTGRES_URL is not None
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    return make_engine(POSTGRES_URL, connect_args={"options": f"-csearch_path={schema}"})


@dataclass
class Nodes:
    a: Registry
    b: Registry
    shared: dict[str, Any]
    """The settings every node has alike."""
    store: S3BlobStore
    """The bucket both nodes keep archives in."""


@contextlib.contextmanager
def two_nodes(
    tmp_path: Path,
    endpoint: str,
    limiters: tuple[RateLimiter, RateLimiter] | tuple[None, None] = (None, None),
    **settings: Any,
) -> Iterator[Nodes]:
    if not REDIS_URL:
        pytest.skip("PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
    import boto3

    bucket = f"nodes-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket=bucket)
    key = tmp_path / "shared" / "index.key"
    load_or_create_registry_key(key)
    shared: dict[str, Any] = {
        "blob_url": f"s3://{bucket}/archives",
        "s3_endpoint_url": endpoint,
        "redis_url": REDIS_URL,
        "index_key_file": key,
        **settings,
    }
    with engine_for("postgresql", tmp_path) as engine_a:
        engine_b = _second_engine(engine_a)
        try:
            with (
                running(engine_a, tmp_path / "a", limiter=limiters[0], **shared) as a,
                running(engine_b, tmp_path / "b", limiter=limiters[1], **shared) as b,
            ):
                yield Nodes(a, b, shared, S3BlobStore(bucket, "archives", endpoint_url=endpoint))
        finally:
            engine_b.dispose()


def test_published_on_a_served_and_installed_through_b(tmp_path: Path, s3_endpoint: str) -> None:
    with two_nodes(tmp_path, s3_endpoint) as nodes:
        a, b = nodes.a, nodes.b
        (tmp_path / "publisher").mkdir()
        publisher = Publisher(a, tmp_path / "publisher")
        archive = publisher.build()
        uploaded = publisher.upload(archive)
        assert uploaded.status_code == 201, uploaded.text
        with a.client(a.token("rex", "review")) as reviewer:
            reviewer.post(
                "/api/v1/review/acme.hello/0.1.0/approve", json={"reason": "ok"}
            ).raise_for_status()

        with a.client() as client:
            key_on_a = registry_key(client).public_bytes_raw()
        with b.client() as client:
            found = client.get("/api/v1/plugins", params={"q": "hello"}).json()
            assert "acme.hello" in [item["name"] for item in found["items"]]
            assert client.get("/api/v1/plugins/acme.hello").status_code == 200
            download = client.get("/api/v1/plugins/acme.hello/versions/0.1.0/download")
            assert download.status_code == 200
            assert download.content == archive.read_bytes()
            assert registry_key(client).public_bytes_raw() == key_on_a
        assert listed(fetch(b)) == [("acme.hello", "0.1.0", False)]

        async def install() -> list[tuple[str, str]]:
            host = PluginHost(
                app="myapp", app_version="1.0.0", home=tmp_path / "home", registries=[b.url]
            )
            async with host:
                await host.install("acme.hello")
                return [(i.name, i.version) for i in host.installed()]

        assert asyncio.run(install()) == [("acme.hello", "0.1.0")]


def test_a_yank_on_b_moves_resolution_on_a_within_the_bound(
    tmp_path: Path, s3_endpoint: str
) -> None:
    with two_nodes(tmp_path, s3_endpoint) as nodes:
        a, b = nodes.a, nodes.b
        (tmp_path / "publisher").mkdir()
        publisher = two_published(a, tmp_path / "publisher")
        assert resolved(a) == "0.2.0"
        with b.client(publisher.token) as client:
            client.post(
                "/api/v1/plugins/acme.hello/versions/0.2.0/yank", json={"reason": "broken"}
            ).raise_for_status()
        yanked_at = time.monotonic()
        while resolved(a) != "0.1.0":
            assert time.monotonic() - yanked_at < VISIBLE_WITHIN_S, "A still resolves 0.2.0"
            time.sleep(0.02)
        assert ("acme.hello", "0.2.0", True) in listed(fetch(a))


def test_a_rate_limit_spent_through_a_is_spent_on_b(tmp_path: Path, s3_endpoint: str) -> None:
    if not REDIS_URL:
        pytest.skip("PLUGPORT_TEST_REDIS_URL is not set (.ci/run sets it)")
    now = float(secrets.randbelow(10**9) * 60 + 7)  # a window no other run counts in
    registry = secrets.token_hex(8)  # one registry: both nodes share its counters
    limiters = (
        RedisRateLimiter(REDIS_URL, clock=lambda: now, namespace=registry),
        RedisRateLimiter(REDIS_URL, clock=lambda: now, namespace=registry),
    )
    with two_nodes(tmp_path, s3_endpoint, limiters, rate_limit_per_minute=6) as nodes:
        with nodes.a.client() as client:
            assert [client.get("/api/v1/namespaces/x").status_code for _ in range(6)] == [404] * 6
        with nodes.b.client() as client:
            refused = client.get("/api/v1/namespaces/x")
        assert refused.status_code == 429
        assert refused.json()["error"]["code"] == "rate_limited"
        assert refused.headers["ratelimit-remaining"] == "0"


def _large(version: str) -> Any:
    """An edit that sets the version and adds 1 MB of incompressible data (an upload that
    takes a while, so a kill lands while some are in flight)."""

    def edit(source: Path) -> None:
        bump(version)(source)
        (source / "data.bin").write_bytes(os.urandom(1024 * 1024))

    return edit


def _versions(engine: Engine) -> list[tuple[str, str]]:
    with engine.connect() as connection:
        rows = connection.exec_driver_sql("SELECT version, sha256 FROM plugin_versions")
        return [(str(version), str(sha256)) for version, sha256 in rows]


def _node_process(engine: Engine, data_dir: Path, port: int, shared: dict[str, Any]) -> Any:
    """``plugport serve`` as its own process on ``engine``'s schema (so it can be killed)."""
    with engine.connect() as connection:
        schema = connection.exec_driver_sql("SELECT current_schema()").scalar_one()
    assert POSTGRES_URL is not None
    env = {
        **os.environ,
        "PLUGPORT_DATABASE_URL": f"{POSTGRES_URL}?options=-csearch_path%3D{schema}",
        "PLUGPORT_DATA_DIR": str(data_dir),
        "PLUGPORT_BLOB_URL": shared["blob_url"],
        "PLUGPORT_S3_ENDPOINT_URL": shared["s3_endpoint_url"],
        "PLUGPORT_REDIS_URL": shared["redis_url"],
        "PLUGPORT_INDEX_KEY_FILE": str(shared["index_key_file"]),
    }
    command = [sys.executable, "-m", "plugport", "serve", "--port", str(port)]
    data_dir.mkdir(parents=True)
    with (data_dir / "node.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT)


def _wait_healthy(url: str, process: Any, log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, log.read_text()
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                return
        time.sleep(0.05)
    raise AssertionError(f"{url} did not become healthy")


def _content_blobs(engine: Engine) -> set[str]:
    with engine.connect() as connection:
        return set(connection.execute(text("SELECT sha256 FROM version_content")).scalars())


def test_a_node_killed_during_publishes_leaves_no_half_version_and_no_orphan(
    tmp_path: Path, s3_endpoint: str
) -> None:
    """kill -9 a node while several publishes are in flight through it: every version the
    database holds has its archive in the bucket, byte for byte; every archive the bucket holds
    after a collection pass belongs to a version; the other node serves on."""
    with two_nodes(tmp_path, s3_endpoint) as nodes:
        a, b, shared = nodes.a, nodes.b, nodes.shared
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        victim = _node_process(a.engine, tmp_path / "victim", port, shared)
        try:
            url = f"http://127.0.0.1:{port}"
            _wait_healthy(url, victim, tmp_path / "victim" / "node.log")
            (tmp_path / "publisher").mkdir()
            publisher = Publisher(a, tmp_path / "publisher")
            through_victim = Registry(url, a.engine, a.admin, tmp_path / "victim")
            publisher.registry = through_victim
            archives = [publisher.build(edit=_large(f"0.{minor}.0")) for minor in range(1, 7)]
            answers: list[int] = []

            def upload(archive: Path) -> None:
                with contextlib.suppress(httpx.TransportError):
                    answers.append(publisher.upload(archive).status_code)

            threads = [threading.Thread(target=upload, args=(x,)) for x in archives]
            for thread in threads:
                thread.start()
            while not answers and any(t.is_alive() for t in threads):
                time.sleep(0.005)
            victim.send_signal(signal.SIGKILL)  # mid-way through the other uploads
            for thread in threads:
                thread.join(30)
        finally:
            victim.kill()
            victim.wait(10)
        assert answers, "no publish finished before the kill"
        assert len(answers) < len(archives), "every publish finished before the kill"

        store = nodes.store
        rows = _versions(a.engine)
        assert len(rows) >= answers.count(201)  # a committed one may have lost its answer
        for _version, sha256 in rows:  # stored whole before its row was committed
            with store.open(sha256) as blob:
                assert hashlib.sha256(blob.read()).hexdigest() == sha256
        with b.client(b.token("rex", "review")) as client:  # the other node serves on
            queue = client.get("/api/v1/review/queue")
            assert queue.status_code == 200, queue.text
            assert len(queue.json()) == len(rows)
        # What the killed node stored without committing is an orphan, collected once old
        # enough (an hour by default; "now" is moved past it here rather than waited for).
        collect(store, make_sessions(a.engine), Uploads(), now=time.time() + 7200, min_age_s=3600)
        shown = _content_blobs(a.engine)  # the README and icon the committed versions show
        assert {stamp.sha256 for stamp in store.stamps()} == {sha for _, sha in rows} | shown
