"""The host's way to one registry: metadata reads through a disk cache (fresh for ``ttl_s``, then
revalidated with ``If-None-Match``), archives downloaded under a byte cap and checked against the
signed index's sha256 and length before they enter the cache, and an offline mode that answers
from the cache or says exactly what it lacks. A ``429`` or ``503`` is asked again after the wait
the registry names (:mod:`plugport.host._retry` decides how long and how often). httpx errors and
the registry's JSON errors become :class:`~plugport.errors.RegistryResponseError` here, at the
edge."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, TypeVar
from urllib.parse import quote, urlencode

import httpx

from plugport._tls import default_context
from plugport._version import __version__
from plugport.errors import (
    ArchiveLimitError,
    InvalidInputError,
    OfflineError,
    RegistryResponseError,
    SignatureError,
)
from plugport.host._cache import (
    ArchiveCache,
    CachedResponse,
    MemoryMetadataCache,
    MetadataCache,
    MetadataStore,
)
from plugport.host._retry import RETRYABLE, RetryPolicy, decide_retry

__all__ = ["RegistryClient", "RetryPolicy"]

logger = logging.getLogger("plugport.host.client")

T = TypeVar("T")

_SHA256 = re.compile(r"[0-9a-f]{64}")
_MAX_ERROR_BODY = 64 * 1024  # bytes of an error response read to find the registry's message
_API = "/api/v1"


class _CountingTransport(httpx.BaseTransport):
    """Counts the requests that really leave; closes the inner transport only if it made it."""

    def __init__(self, inner: httpx.BaseTransport, *, owned: bool) -> None:
        self.inner = inner
        self.owned = owned
        self.sent = 0
        self._lock = threading.Lock()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        with self._lock:
            self.sent += 1
        return self.inner.handle_request(request)

    def close(self) -> None:
        if self.owned:
            self.inner.close()


def _segment(text: str) -> str:
    """One path segment, so that a name can never add a ``/`` or ``..`` to the path."""
    return quote(text, safe="")


def _json(what: str, kind: type[T]) -> Callable[[bytes], T]:
    def decode(body: bytes) -> T:
        try:
            value = json.loads(body)
        except ValueError:
            value = None
        if not isinstance(value, kind):
            raise RegistryResponseError(
                200, "invalid_response", f"{what}: expected a JSON {kind.__name__}"
            )
        return value

    return decode


def _raw(body: bytes) -> bytes:
    return body


def _error_fields(response: httpx.Response, body: bytes) -> tuple[str, str, dict[str, Any]]:
    """``(code, message, details)``: the registry's own ``{"error": {...}}``, or what we can
    tell from a response without it."""
    try:
        error = json.loads(body)["error"]
        code, message, details = str(error["code"]), str(error["message"]), error.get("details")
    except (ValueError, KeyError, TypeError):
        text = body[:500].decode("utf-8", "replace").strip()
        code, message, details = "http_error", text or response.reason_phrase, {}
    return code, message, details if isinstance(details, dict) else {}


def _error(response: httpx.Response, body: bytes) -> RegistryResponseError:
    return RegistryResponseError(response.status_code, *_error_fields(response, body))


def _read_capped(response: httpx.Response) -> bytes:
    """At most about :data:`_MAX_ERROR_BODY` bytes of an error's body, streamed or not."""
    body = b""
    for chunk in response.iter_bytes():
        body += chunk
        if len(body) >= _MAX_ERROR_BODY:
            break
    return body


class RegistryClient:
    """One registry, one cache directory (which several registries may share: keys include the
    registry's URL; archives are addressed by content). ``cache_dir=None``: metadata is cached
    in memory and nothing is written anywhere, so archives cannot be downloaded."""

    def __init__(
        self,
        url: str,
        *,
        cache_dir: Path | None,
        ttl_s: float = 300.0,
        offline: bool = False,
        token: str | None = None,
        transport: httpx.BaseTransport | None = None,
        clock: Callable[[], float] = time.time,
        timeout_s: float = 30.0,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
    ) -> None:
        self.url = url.rstrip("/")
        self.ttl_s = ttl_s
        self.offline = offline
        self.timeout_s = timeout_s
        self.retry = retry or RetryPolicy()
        self._clock = clock
        self._sleep = sleep
        self._jitter = jitter
        self.retried = 0
        """Requests sent again after a 429 or 503."""
        self.waited_s = 0.0
        """Seconds spent waiting as the registry asked."""
        self._meta: MetadataStore = (
            MetadataCache(Path(cache_dir)) if cache_dir is not None else MemoryMetadataCache()
        )
        self._archives = ArchiveCache(Path(cache_dir)) if cache_dir is not None else None
        self._transport = _CountingTransport(
            transport or httpx.HTTPTransport(verify=default_context()), owned=transport is None
        )
        headers = {"User-Agent": f"plugport/{__version__}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url,
            headers=headers,
            transport=self._transport,
            timeout=timeout_s,
            follow_redirects=False,
        )

    @property
    def requests_sent(self) -> int:
        """HTTP requests that actually went out (cache hits and offline answers send none)."""
        return self._transport.sent

    # --- lifecycle ----------------------------------------------------------------------------

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # --- metadata -----------------------------------------------------------------------------

    def search(self, q: str = "", **params: str) -> dict[str, Any]:
        query = {"q": q, **params} if q else dict(params)
        shown = ", ".join(f"{k}={v!r}" for k, v in sorted(query.items())) or "no filters"
        return self._metadata(
            f"{_API}/plugins", f"the search results for {shown}", _json("search", dict), query
        )

    def plugin(self, name: str, *, revalidate: bool = False) -> dict[str, Any]:
        return self._metadata(
            f"{_API}/plugins/{_segment(name)}",
            f"plugin {name}'s details",
            _json(name, dict),
            revalidate=revalidate,
        )

    def versions(self, name: str, *, revalidate: bool = False) -> list[dict[str, Any]]:
        """A plugin's versions. When they changed since the cached copy, its cached listing
        (latest version, description) is dropped too: it describes the versions as they were."""
        rows = self._metadata(
            f"{_API}/plugins/{_segment(name)}/versions",
            f"plugin {name}'s versions",
            _json(f"{name}'s versions", list),
            revalidate=revalidate,
            on_change=lambda: self._meta.forget(
                self._cache_key(f"{_API}/plugins/{_segment(name)}")
            ),
        )
        return [row for row in rows if isinstance(row, dict)]

    def index_document(self, *, revalidate: bool = False) -> bytes:
        """The signed index exactly as served; verifying it is the caller's job."""
        return self._metadata(f"{_API}/index", "the signed index", _raw, revalidate=revalidate)

    def forget_index(self) -> None:
        """Drop the cached index (one that failed verification): the next fetch is a full one."""
        self._meta.forget(self._cache_key(f"{_API}/index"))

    def keys(self) -> dict[str, Any]:
        return self._metadata(f"{_API}/keys", "the registry's index keys", _json("keys", dict))

    def namespace_keys(self, namespace: str, *, revalidate: bool = False) -> list[dict[str, Any]]:
        """The publisher keys registered for ``namespace`` (``key_id``, ``public_key_pem``,
        ``revoked_at``); trusting one is the caller's decision."""
        rows = self._metadata(
            f"{_API}/namespaces/{_segment(namespace)}/keys",
            f"namespace {namespace}'s publisher keys",
            _json(f"{namespace}'s keys", list),
            revalidate=revalidate,
        )
        return [row for row in rows if isinstance(row, dict)]

    def signature(self, name: str, version: str) -> bytes:
        """The publisher's signature document for one archive, as uploaded."""
        return self._metadata(
            f"{_API}/plugins/{_segment(name)}/versions/{_segment(version)}/signature",
            f"the signature of {name} {version}",
            _raw,
        )

    def _metadata(
        self,
        path: str,
        what: str,
        decode: Callable[[bytes], T],
        params: dict[str, str] | None = None,
        *,
        revalidate: bool = False,
        on_change: Callable[[], None] | None = None,
    ) -> T:
        """Fresh cache -> no request; stale -> conditional GET (304 keeps, 200 replaces);
        offline -> the cache at any age. Only 200s are stored, and only once they decode.
        ``revalidate`` treats a fresh copy as stale: what an update needs to see a version
        published a minute ago. ``on_change`` runs when a 200 replaces a cached copy."""
        key = self._cache_key(path, params)
        cached = self._meta.get(key)
        if self.offline:
            if cached is None:
                raise OfflineError(what, self.url)
            return decode(cached.body)
        now = self._clock()
        fresh = cached is not None and 0 <= now - cached.fetched_at < self.ttl_s
        if cached is not None and fresh and not revalidate:
            return decode(cached.body)
        headers = {"If-None-Match": cached.etag} if cached is not None and cached.etag else {}
        response = self._send("GET", path, params=params or None, headers=headers)
        if response.status_code == 304 and cached is not None:
            etag = response.headers.get("ETag") or cached.etag
            self._meta.put(CachedResponse(key, cached.body, etag, self._clock()))
            return decode(cached.body)
        if not response.is_success:
            raise _error(response, response.content)
        value = decode(response.content)
        if response.status_code == 200:
            etag = response.headers.get("ETag")
            self._meta.put(CachedResponse(key, response.content, etag, self._clock()))
            if cached is not None and cached.body != response.content and on_change is not None:
                on_change()
        return value

    def _cache_key(self, path: str, params: dict[str, str] | None = None) -> str:
        query = urlencode(sorted((params or {}).items()))
        return f"GET {self.url}{path}" + (f"?{query}" if query else "")

    def _send(
        self, method: str, path: str, *, stream: bool = False, **options: Any
    ) -> httpx.Response:
        """One request, sent again while the registry answers 429 or 503 and :attr:`retry`
        allows; giving up is a :class:`RegistryResponseError` that names the registry, what it
        answered and the wait it asked for (``details["retry_after_s"]``). A streamed response
        that is returned is the caller's to close."""
        retries, waited = 0, 0.0
        while True:
            with self._translated(method, path):
                request = self._http.build_request(method, path, **options)
                response = self._http.send(request, stream=stream)
            if response.status_code not in RETRYABLE:
                return response
            decision = decide_retry(
                self.retry,
                status=response.status_code,
                retry_after=response.headers.get("Retry-After"),
                retries=retries,
                waited_s=waited,
                now=datetime.fromtimestamp(self._clock(), UTC),
                random=self._jitter(),
            )
            if decision.wait_s is None:
                with contextlib.closing(response), self._translated(method, path):
                    body = _read_capped(response)
                raise self._gave_up(
                    response, body, path, retries=retries, waited_s=waited, asked_s=decision.asked_s
                )
            response.close()
            logger.warning(
                "the registry at %s answered %s %s with HTTP %d; asking again in %.1f s",
                self.url, method, path, response.status_code, decision.wait_s,
            )  # fmt: skip
            self._sleep(decision.wait_s)
            retries, waited = retries + 1, waited + decision.wait_s
            self.retried += 1
            self.waited_s += decision.wait_s

    def _gave_up(
        self,
        response: httpx.Response,
        body: bytes,
        path: str,
        *,
        retries: int,
        waited_s: float,
        asked_s: float | None,
    ) -> RegistryResponseError:
        code, message, details = _error_fields(response, body)
        status = response.status_code
        what = "is rate limiting this host" if status == 429 else "is unavailable"
        asks = f"it asks to wait {asked_s:g} s more" if asked_s is not None else "it named no wait"
        if asked_s is not None and asked_s > self.retry.max_retry_after_s:
            asks += f" (more than max_retry_after_s = {self.retry.max_retry_after_s:g})"
        policy = self.retry
        return RegistryResponseError(
            status,
            code,
            f"the registry at {self.url} {what} ({path}: {message}); gave up after {retries} "
            f"retries and {waited_s:.1f} s of waiting (max_retries = {policy.max_retries}, "
            f"max_total_wait_s = {policy.max_total_wait_s:g}); {asks}",
            {
                **details,
                "registry": self.url,
                "retries": retries,
                "waited_s": round(waited_s, 3),
                "retry_after_s": asked_s,
            },
        )

    @contextlib.contextmanager
    def _translated(self, method: str, path: str) -> Iterator[None]:
        """httpx's exceptions as ours, naming the registry (status 0: no HTTP answer)."""
        if self.offline:  # every request passes here: offline must never reach the network
            raise OfflineError(f"{method} {path}", self.url)
        try:
            yield
        except httpx.TimeoutException as exc:
            raise RegistryResponseError(
                0,
                "timeout",
                f"the registry at {self.url} did not answer {method} {path} within "
                f"{self.timeout_s:g} s ({type(exc).__name__})",
            ) from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise RegistryResponseError(
                0, "unreachable", f"cannot reach the registry at {self.url}: {reason}"
            ) from exc

    # --- TUF --------------------------------------------------------------------------------

    def stream(self, path: str) -> tuple[int, Iterator[bytes]]:
        """``GET path`` (under the registry's URL) as its status and its body's chunks, read
        as the caller asks for them (python-tuf's fetcher counts them against the length it
        allows). The body is closed when the chunks run out or are dropped."""
        response = self._send("GET", path, stream=True)
        if not response.is_success:
            with contextlib.closing(response), self._translated("GET", path):
                _read_capped(response)
            return response.status_code, iter(())

        def chunks() -> Iterator[bytes]:
            with contextlib.closing(response), self._translated("GET", path):
                yield from response.iter_bytes()

        return response.status_code, chunks()

    # --- archives -----------------------------------------------------------------------------

    def download(
        self,
        name: str,
        version: str,
        *,
        expected_sha256: str,
        expected_length: int,
        max_bytes: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> Path:
        """The archive's path in the cache, its bytes checked against ``expected_sha256`` and
        ``expected_length`` (from the signed index) whether they were cached or downloaded."""
        if not _SHA256.fullmatch(expected_sha256) or expected_length < 0:
            raise InvalidInputError(
                f"{name} {version}: {expected_sha256!r} / {expected_length} is not a sha256 "
                "and a length"
            )
        if expected_length > max_bytes:
            raise ArchiveLimitError(
                "max_archive_bytes",
                expected_length,
                max_bytes,
                f"{name} {version} is {expected_length} bytes",
            )
        if self._archives is None:
            raise InvalidInputError(
                f"{name} {version}: this client of {self.url} has no cache directory to "
                "download into (it was opened to read only)"
            )
        archives = self._archives
        cached = archives.verified(expected_sha256, expected_length)
        if cached is not None:
            if progress is not None:
                progress(expected_length, expected_length)
            return cached
        if self.offline:
            raise OfflineError(f"the archive of {name} {version}", self.url)
        path = f"{_API}/plugins/{_segment(name)}/versions/{_segment(version)}/download"
        response = self._send("GET", path, stream=True)
        with (
            contextlib.closing(response),
            self._translated("GET", path),
            archives.incoming() as incoming,
        ):
            self._check_download_head(response, name, version, expected_length, max_bytes)
            digest = hashlib.sha256()
            received = 0
            for chunk in response.iter_bytes():
                received += len(chunk)
                self._check_received(received, name, version, expected_length, max_bytes)
                digest.update(chunk)
                incoming.file.write(chunk)
                if progress is not None:
                    progress(received, expected_length)
            if received != expected_length:
                raise SignatureError(
                    "archive",
                    f"{name} {version}: the registry sent {received} bytes, but the signed "
                    f"index says the archive's length is {expected_length}",
                )
            if digest.hexdigest() != expected_sha256:
                raise SignatureError(
                    "archive",
                    f"{name} {version}: the downloaded archive's sha256 is "
                    f"{digest.hexdigest()[:16]}…, but the signed index says "
                    f"{expected_sha256[:16]}…",
                )
            return archives.commit(incoming, expected_sha256)

    @staticmethod
    def _check_download_head(
        response: httpx.Response, name: str, version: str, expected_length: int, max_bytes: int
    ) -> None:
        if not response.is_success:
            raise _error(response, _read_capped(response))
        declared = response.headers.get("Content-Length")
        if declared is None or not declared.isdigit() or "Content-Encoding" in response.headers:
            return
        RegistryClient._check_received(int(declared), name, version, expected_length, max_bytes)

    @staticmethod
    def _check_received(
        received: int, name: str, version: str, expected_length: int, max_bytes: int
    ) -> None:
        """Stop as soon as more bytes arrive than may (``min(expected_length, max_bytes)``)."""
        if received > max_bytes:
            raise ArchiveLimitError(
                "max_archive_bytes",
                received,
                max_bytes,
                f"the registry sent more than {max_bytes} bytes for {name} {version}",
            )
        if received > expected_length:
            raise SignatureError(
                "archive",
                f"{name} {version}: the registry sent more than the {expected_length} bytes "
                "the signed index says the archive's length is",
            )

    # --- telemetry ----------------------------------------------------------------------------

    def report_usage(self, name: str, version: str, event: Literal["install", "uninstall"]) -> bool:
        """Best effort: ``True`` if the registry counted it; never raises, never sent offline."""
        if self.offline:
            return False
        path = f"{_API}/plugins/{_segment(name)}/versions/{_segment(version)}/usage"
        try:
            with self._translated("POST", path):
                response = self._http.post(path, json={"event": event})
        except Exception:  # telemetry must never break an install
            return False
        return response.is_success
