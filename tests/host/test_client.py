"""The host's registry client: the metadata cache (TTL, ETag revalidation, only 200s kept),
offline mode that never touches the network, errors translated at the edge, and downloads that
are capped, checked and content-addressed, against mock transports and a real registry."""

from __future__ import annotations

import hashlib
import json
import socket
import stat
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from plugport._version import __version__
from plugport.errors import (
    ArchiveLimitError,
    InvalidInputError,
    OfflineError,
    RegistryResponseError,
    SignatureError,
)
from plugport.host.client import RegistryClient
from tests.registry.conftest import Registry
from tests.registry.test_publish import Publisher

URL = "http://registry.test"
PLUGIN = {"name": "acme.hello", "summary": "says hello"}
VERSIONS = [{"version": "1.0.0", "sha256": "0" * 64, "length": 3, "yanked": False}]
Handler = Callable[[httpx.Request], httpx.Response]


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def no_network(request: httpx.Request) -> httpx.Response:
    raise AssertionError(f"the network was touched: {request.method} {request.url}")


def error(status: int, code: str, message: str, **details: Any) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": details}}
    return httpx.Response(status, json=body)


class FakeRegistry:
    """JSON bodies by path, each with an ETag, answering ``If-None-Match`` with 304."""

    def __init__(self, bodies: dict[str, Any] | None = None) -> None:
        self.bodies: dict[str, Any] = dict(bodies or {})
        self.seen: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.seen.append(request)
        if request.url.path not in self.bodies:
            return error(404, "not_found", f"no plugin at {request.url.path}")
        content = json.dumps(self.bodies[request.url.path]).encode()
        etag = '"' + hashlib.sha256(content).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            return httpx.Response(304, headers={"ETag": etag})
        headers = {"ETag": etag, "Content-Type": "application/json"}
        return httpx.Response(200, content=content, headers=headers)


def make_client(
    tmp_path: Path, handler: Handler, *, clock: Clock | None = None, **options: Any
) -> RegistryClient:
    return RegistryClient(
        URL + "/",
        cache_dir=tmp_path / "cache",
        transport=httpx.MockTransport(handler),
        clock=clock or Clock(),
        **options,
    )


def files_under(path: Path) -> list[str]:
    return sorted(str(p.relative_to(path)) for p in path.rglob("*") if p.is_file())


# --- the metadata cache -----------------------------------------------------------------------


def test_within_the_ttl_nothing_is_sent_and_the_entry_is_private(tmp_path: Path) -> None:
    fake = FakeRegistry({"/api/v1/plugins/acme.hello": PLUGIN})
    with make_client(tmp_path, fake, token="s3cret") as client:  # noqa: S106 not a secret
        assert client.url == URL
        assert client.plugin("acme.hello") == PLUGIN
        for _ in range(5):
            assert client.plugin("acme.hello") == PLUGIN
        assert client.requests_sent == 1
    [request] = fake.seen
    assert request.headers["User-Agent"] == f"plugport/{__version__}"
    assert request.headers["Authorization"] == "Bearer s3cret"
    meta = tmp_path / "cache" / "meta"
    [entry] = meta.iterdir()
    assert stat.S_IMODE(meta.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert len(entry.name) == 64  # the sha256 of the key, not the key


def test_after_the_ttl_a_304_keeps_the_body_and_restarts_the_ttl(tmp_path: Path) -> None:
    fake = FakeRegistry({"/api/v1/plugins/acme.hello/versions": VERSIONS})
    clock = Clock()
    client = make_client(tmp_path, fake, clock=clock, ttl_s=60)
    assert client.versions("acme.hello") == VERSIONS
    clock.now += 61
    assert client.versions("acme.hello") == VERSIONS
    assert client.requests_sent == 2
    first, second = fake.seen
    assert "If-None-Match" not in first.headers
    assert second.headers["If-None-Match"].startswith('"')
    clock.now += 59  # fetched-at moved to the 304
    assert client.versions("acme.hello") == VERSIONS
    assert client.requests_sent == 2


def test_after_the_ttl_a_200_replaces_the_entry(tmp_path: Path) -> None:
    fake = FakeRegistry({"/api/v1/plugins/acme.hello": PLUGIN})
    clock = Clock()
    client = make_client(tmp_path, fake, clock=clock, ttl_s=60)
    assert client.plugin("acme.hello") == PLUGIN
    changed = {**PLUGIN, "summary": "says hello twice"}
    fake.bodies["/api/v1/plugins/acme.hello"] = changed
    clock.now += 30
    assert client.plugin("acme.hello") == PLUGIN  # still fresh
    clock.now += 31
    assert client.plugin("acme.hello") == changed
    assert client.requests_sent == 2
    offline = make_client(tmp_path, no_network, clock=Clock(clock.now + 10**6), offline=True)
    assert offline.plugin("acme.hello") == changed


def test_errors_are_not_cached_so_a_new_plugin_appears(tmp_path: Path) -> None:
    fake = FakeRegistry()
    client = make_client(tmp_path, fake)
    with pytest.raises(RegistryResponseError) as caught:
        client.plugin("acme.hello")
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert not any((tmp_path / "cache" / "meta").iterdir())
    fake.bodies["/api/v1/plugins/acme.hello"] = PLUGIN
    assert client.plugin("acme.hello") == PLUGIN
    assert client.requests_sent == 2


def test_the_key_is_the_sorted_query_and_the_registry(tmp_path: Path) -> None:
    answer = {"items": [], "total": 0, "page": 1, "per_page": 20}
    fake = FakeRegistry({"/api/v1/plugins": answer})
    client = make_client(tmp_path, fake)
    assert client.search("hello", tag="x", sort="name") == answer
    assert client.search("hello", sort="name", tag="x") == answer
    assert client.requests_sent == 1
    assert dict(fake.seen[0].url.params) == {"q": "hello", "tag": "x", "sort": "name"}
    client.search("hello", tag="y")
    client.search()
    assert client.requests_sent == 3
    other = RegistryClient(
        "http://other.test",
        cache_dir=tmp_path / "cache",
        transport=httpx.MockTransport(fake),
        clock=Clock(),
    )
    other.search()  # same cache directory, another registry: not the same entry
    assert other.requests_sent == 1


def test_a_damaged_entry_is_a_miss(tmp_path: Path) -> None:
    fake = FakeRegistry({"/api/v1/keys": {"keys": []}})
    client = make_client(tmp_path, fake)
    client.keys()
    [entry] = (tmp_path / "cache" / "meta").iterdir()
    entry.write_bytes(b"not a header")
    assert client.keys() == {"keys": []}
    assert client.requests_sent == 2


def test_a_stale_copy_is_not_served_when_the_registry_cannot_be_reached(tmp_path: Path) -> None:
    up = FakeRegistry({"/api/v1/plugins/acme.hello": PLUGIN})
    clock = Clock()
    make_client(tmp_path, up, clock=clock, ttl_s=60).plugin("acme.hello")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    clock.now += 61
    client = make_client(tmp_path, down, clock=clock, ttl_s=60)
    with pytest.raises(RegistryResponseError) as caught:
        client.plugin("acme.hello")
    assert (caught.value.status, caught.value.code) == (0, "unreachable")
    assert URL in str(caught.value)
    assert "connection refused" in str(caught.value)


# --- offline ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("call", "missing"),
    [
        (lambda c: c.versions("acme.hello"), "plugin acme.hello's versions"),
        (lambda c: c.plugin("acme.hello"), "plugin acme.hello's details"),
        (lambda c: c.search("hello", tag="x"), "the search results for q='hello', tag='x'"),
        (lambda c: c.index_document(), "the signed index"),
        (lambda c: c.keys(), "the registry's index keys"),
        (lambda c: c.signature("acme.hello", "1.0.0"), "the signature of acme.hello 1.0.0"),
        (lambda c: c.namespace_keys("acme"), "namespace acme's publisher keys"),
    ],
)
def test_offline_without_a_cached_copy_names_what_is_missing(
    tmp_path: Path, call: Callable[[RegistryClient], Any], missing: str
) -> None:
    client = make_client(tmp_path, no_network, offline=True)
    with pytest.raises(OfflineError) as caught:
        call(client)
    assert caught.value.missing == missing
    assert caught.value.source == URL
    assert str(caught.value) == (
        f"offline: no cached copy of {missing} from {URL}; run once online first"
    )
    assert client.requests_sent == 0
    assert files_under(tmp_path / "cache") == []


def test_offline_answers_from_the_cache_whatever_its_age(tmp_path: Path) -> None:
    index = b'{"signed": {}, "signatures": []}'

    def online(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/v1/index":
            return httpx.Response(200, content=index, headers={"ETag": '"i1"'})
        return FakeRegistry({"/api/v1/plugins/acme.hello/versions": VERSIONS})(request)

    clock = Clock()
    first = make_client(tmp_path, online, clock=clock)
    assert first.index_document() == index
    first.versions("acme.hello")
    clock.now += 365 * 24 * 3600
    offline = make_client(tmp_path, no_network, clock=clock, offline=True)
    assert offline.index_document() == index
    assert offline.versions("acme.hello") == VERSIONS
    assert offline.report_usage("acme.hello", "1.0.0", "install") is False
    assert offline.requests_sent == 0


# --- errors -----------------------------------------------------------------------------------


def test_a_json_error_becomes_registry_response_error_with_its_fields(tmp_path: Path) -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        return error(422, "invalid_request", "page: must be a number", field="page")

    with pytest.raises(RegistryResponseError) as caught:
        make_client(tmp_path, refuse).search(page="x")
    exc = caught.value
    assert (exc.status, exc.code, exc.details) == (422, "invalid_request", {"field": "page"})
    assert str(exc) == "page: must be a number (HTTP 422, invalid_request)"


def test_an_error_without_json_keeps_its_status_and_text(tmp_path: Path) -> None:
    def proxy(request: httpx.Request) -> httpx.Response:
        return httpx.Response(502, text="<html>Bad gateway</html>")

    with pytest.raises(RegistryResponseError) as caught:
        make_client(tmp_path, proxy).keys()
    assert (caught.value.status, caught.value.code) == (502, "http_error")
    assert "Bad gateway" in str(caught.value)


def test_a_200_that_is_not_the_expected_json_is_refused_and_not_cached(tmp_path: Path) -> None:
    def garbage(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=b"[1, 2")

    client = make_client(tmp_path, garbage)
    with pytest.raises(RegistryResponseError) as caught:
        client.plugin("acme.hello")
    assert caught.value.code == "invalid_response"
    assert not any((tmp_path / "cache" / "meta").iterdir())


def test_connection_refused_names_the_url(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    with RegistryClient(url, cache_dir=tmp_path / "cache", timeout_s=5) as client:
        with pytest.raises(RegistryResponseError) as caught:
            client.versions("acme.hello")
        assert client.requests_sent == 1
    assert (caught.value.status, caught.value.code) == (0, "unreachable")
    assert f"cannot reach the registry at {url}" in str(caught.value)


def test_a_timeout_says_how_long_was_waited(tmp_path: Path) -> None:
    def slow(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(RegistryResponseError) as caught:
        make_client(tmp_path, slow, timeout_s=7).keys()
    assert (caught.value.status, caught.value.code) == (0, "timeout")
    assert f"the registry at {URL} did not answer GET /api/v1/keys within 7 s" in str(caught.value)


# --- downloads --------------------------------------------------------------------------------

ARCHIVE = b"PK\x03\x04" + bytes(range(256)) * 40
SHA = hashlib.sha256(ARCHIVE).hexdigest()
DOWNLOAD = "/api/v1/plugins/acme.hello/versions/1.0.0/download"


def serving(body: bytes | Callable[[], Iterator[bytes]], status: int = 200) -> Handler:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.path == DOWNLOAD
        content = body if isinstance(body, bytes) else body()
        return httpx.Response(status, content=content)

    return handler


def fetch(
    client: RegistryClient,
    *,
    sha256: str = SHA,
    length: int = len(ARCHIVE),
    max_bytes: int = 1 << 20,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    return client.download(
        "acme.hello",
        "1.0.0",
        expected_sha256=sha256,
        expected_length=length,
        max_bytes=max_bytes,
        progress=progress,
    )


def test_a_good_download_lands_in_the_cache_by_sha256(tmp_path: Path) -> None:
    chunks = [ARCHIVE[i : i + 1000] for i in range(0, len(ARCHIVE), 1000)]
    client = make_client(tmp_path, serving(lambda: iter(chunks)))
    seen: list[tuple[int, int]] = []
    path = fetch(client, progress=lambda done, total: seen.append((done, total)))
    assert path == tmp_path / "cache" / "archives" / f"{SHA}.plugport"
    assert path.read_bytes() == ARCHIVE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert seen[-1] == (len(ARCHIVE), len(ARCHIVE))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) == len(chunks)
    assert files_under(tmp_path / "cache" / "archives") == [f"{SHA}.plugport"]


@pytest.mark.parametrize(
    ("body", "length", "words"),
    [
        (ARCHIVE[:-1] + b"X", len(ARCHIVE), "sha256"),
        (ARCHIVE[:-10], len(ARCHIVE), "sent 10234 bytes"),
        (ARCHIVE, len(ARCHIVE) - 10, "sent more than the 10234 bytes"),
    ],
    ids=["wrong sha256", "short", "long"],
)
def test_a_download_that_does_not_match_the_index_leaves_nothing(
    tmp_path: Path, body: bytes, length: int, words: str
) -> None:
    client = make_client(tmp_path, serving(body))
    with pytest.raises(SignatureError) as caught:
        fetch(client, length=length)
    assert caught.value.part == "archive"
    assert words in str(caught.value)
    assert files_under(tmp_path / "cache" / "archives") == []


def test_an_endless_stream_is_cut_off_right_after_the_expected_length(tmp_path: Path) -> None:
    sent = 0

    def endless() -> Iterator[bytes]:
        nonlocal sent
        for _ in range(10_000):  # 10 MB if nobody stops reading
            sent += 1024
            yield b"\0" * 1024

    client = make_client(tmp_path, serving(endless))
    with pytest.raises(SignatureError):
        fetch(client, length=4096)
    assert sent <= 4096 + 1024  # one chunk past the length, not the whole stream
    assert files_under(tmp_path / "cache" / "archives") == []


def test_more_than_max_bytes_is_refused_before_any_request(tmp_path: Path) -> None:
    client = make_client(tmp_path, no_network)
    with pytest.raises(ArchiveLimitError) as caught:
        fetch(client, max_bytes=len(ARCHIVE) - 1)
    assert (caught.value.limit, caught.value.value) == ("max_archive_bytes", len(ARCHIVE))
    assert client.requests_sent == 0


def test_a_declared_length_past_the_cap_is_refused_before_reading(tmp_path: Path) -> None:
    read = 0

    def big(request: httpx.Request) -> httpx.Response:
        def chunks() -> Iterator[bytes]:
            nonlocal read
            read += 1
            yield ARCHIVE

        return httpx.Response(200, content=chunks(), headers={"Content-Length": "99999999"})

    with pytest.raises(ArchiveLimitError):
        fetch(make_client(tmp_path, big), max_bytes=1 << 20)
    assert read == 0
    assert files_under(tmp_path / "cache" / "archives") == []


def test_a_bad_sha256_is_refused_before_touching_a_path(tmp_path: Path) -> None:
    client = make_client(tmp_path, no_network)
    with pytest.raises(InvalidInputError):
        fetch(client, sha256="../../etc/passwd")
    assert client.requests_sent == 0


def test_a_cached_archive_is_rehashed_and_reused_without_a_request(tmp_path: Path) -> None:
    online = make_client(tmp_path, serving(ARCHIVE))
    path = fetch(online)
    assert online.requests_sent == 1
    assert fetch(online) == path
    assert online.requests_sent == 1
    offline = make_client(tmp_path, no_network, offline=True)
    assert fetch(offline) == path
    assert offline.requests_sent == 0


def test_a_corrupted_cached_archive_is_downloaded_again(tmp_path: Path) -> None:
    client = make_client(tmp_path, serving(ARCHIVE))
    path = fetch(client)
    path.write_bytes(ARCHIVE[:-1] + b"X")  # same length, other bytes
    assert fetch(client) == path
    assert path.read_bytes() == ARCHIVE
    assert client.requests_sent == 2


def test_offline_a_corrupted_cached_archive_is_an_offline_error(tmp_path: Path) -> None:
    path = fetch(make_client(tmp_path, serving(ARCHIVE)))
    path.write_bytes(b"short")
    offline = make_client(tmp_path, no_network, offline=True)
    with pytest.raises(OfflineError) as caught:
        fetch(offline)
    assert caught.value.missing == "the archive of acme.hello 1.0.0"
    assert not path.exists()
    assert offline.requests_sent == 0


def test_a_download_refused_by_the_registry_leaves_no_temp_file(tmp_path: Path) -> None:
    def gone(request: httpx.Request) -> httpx.Response:
        return error(404, "not_found", "no version '1.0.0'")

    with pytest.raises(RegistryResponseError) as caught:
        fetch(make_client(tmp_path, gone))
    assert (caught.value.status, caught.value.code) == (404, "not_found")
    assert files_under(tmp_path / "cache" / "archives") == []


def test_a_connection_lost_mid_download_leaves_no_temp_file(tmp_path: Path) -> None:
    def broken() -> Iterator[bytes]:
        yield ARCHIVE[:100]
        raise httpx.RemoteProtocolError("peer closed connection")

    with pytest.raises(RegistryResponseError) as caught:
        fetch(make_client(tmp_path, serving(broken)))
    assert caught.value.status == 0
    assert files_under(tmp_path / "cache" / "archives") == []


# --- usage reports ----------------------------------------------------------------------------


def test_report_usage_posts_the_event_and_never_raises(tmp_path: Path) -> None:
    bodies: list[Any] = []

    def accept(request: httpx.Request) -> httpx.Response:
        assert request.url.path == "/api/v1/plugins/acme.hello/versions/1.0.0/usage"
        bodies.append(json.loads(request.content))
        return httpx.Response(202, json={"recorded": "install"})

    client = make_client(tmp_path, accept)
    assert client.report_usage("acme.hello", "1.0.0", "install") is True
    assert client.report_usage("acme.hello", "1.0.0", "install") is True  # never cached
    assert bodies == [{"event": "install"}] * 2
    assert not any((tmp_path / "cache" / "meta").iterdir())

    def fail(request: httpx.Request) -> httpx.Response:
        return error(500, "internal", "boom")

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    assert make_client(tmp_path, fail).report_usage("acme.hello", "1.0.0", "uninstall") is False
    assert make_client(tmp_path, down).report_usage("acme.hello", "1.0.0", "install") is False


# --- against a real registry ------------------------------------------------------------------


def publish_and_approve(registry: Registry, root: Path) -> Path:
    root.mkdir()
    publisher = Publisher(registry, root)
    archive = publisher.build()
    uploaded = publisher.upload(archive)
    assert uploaded.status_code == 201, uploaded.text
    with registry.client(registry.token("rex", "review")) as reviewer:
        approved = reviewer.post("/api/v1/review/acme.hello/0.1.0/approve", json={"reason": "ok"})
        assert approved.status_code == 200, approved.text
    return archive


def test_against_a_real_registry(registry: Registry, tmp_path: Path) -> None:
    archive = publish_and_approve(registry, tmp_path / "publisher")
    clock = Clock()
    cached = RegistryClient(registry.url, cache_dir=tmp_path / "cache", ttl_s=300, clock=clock)
    uncached = RegistryClient(registry.url, cache_dir=tmp_path / "nocache", ttl_s=0)

    def everything(client: RegistryClient) -> list[Any]:
        return [
            client.search("hello"),
            client.plugin("acme.hello"),
            client.versions("acme.hello"),
            client.index_document(),
            client.keys(),
        ]

    rounds = 20
    with cached, uncached:
        answers = [everything(cached) for _ in range(rounds)]
        baseline = [everything(uncached) for _ in range(rounds)]
        assert answers == baseline
        assert uncached.requests_sent == 5 * rounds
        assert cached.requests_sent == 5
        assert cached.requests_sent <= uncached.requests_sent * 0.1

        search, plugin, versions, index, keys = answers[0]
        assert [item["name"] for item in search["items"]] == ["acme.hello"]
        assert plugin["name"] == "acme.hello"
        [row] = versions
        assert (row["version"], row["length"]) == ("0.1.0", archive.stat().st_size)
        [entry] = json.loads(index)["signed"]["entries"]
        assert (entry["name"], entry["sha256"]) == ("acme.hello", row["sha256"])
        assert keys["keys"][0]["keyid"]
        assert cached.namespace_keys("acme")[0]["key_id"] == row["key_id"]
        signature = cached.signature("acme.hello", "0.1.0")
        assert json.loads(signature)

        clock.now += 301  # stale: the registry's ETag turns the next read into a 304
        before = cached.requests_sent
        assert cached.plugin("acme.hello") == plugin
        assert cached.requests_sent == before + 1

        path = cached.download(
            "acme.hello",
            "0.1.0",
            expected_sha256=row["sha256"],
            expected_length=row["length"],
            max_bytes=10 << 20,
        )
        assert path.read_bytes() == archive.read_bytes()
        assert cached.report_usage("acme.hello", "0.1.0", "install") is True
        with pytest.raises(RegistryResponseError) as caught:
            cached.versions("acme.nothing")
        assert (caught.value.status, caught.value.code) == (404, "not_found")

    with registry.client() as anyone:
        stats = anyone.get("/api/v1/plugins/acme.hello/stats").json()
    assert stats["totals"] == {"downloads": 1, "installs": 1, "uninstalls": 0}

    offline = RegistryClient(
        registry.url,
        cache_dir=tmp_path / "cache",
        offline=True,
        transport=httpx.MockTransport(no_network),
    )
    assert everything(offline) == answers[0]
    assert offline.signature("acme.hello", "0.1.0") == signature
    again = offline.download(
        "acme.hello",
        "0.1.0",
        expected_sha256=row["sha256"],
        expected_length=row["length"],
        max_bytes=10 << 20,
    )
    assert again == path
    assert offline.requests_sent == 0
