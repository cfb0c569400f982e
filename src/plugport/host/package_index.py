"""A PEP 503/691 package index over HTTP (httpx): project pages and file downloads, each URL
checked before it is fetched (redirects too), every download capped and hashed as it streams.
What the pages mean and which wheel to take is decided in :mod:`._index_rules`.

``transport`` is httpx's seam: :class:`httpx.MockTransport` serves a page from memory."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx

from plugport._tls import default_context
from plugport.errors import (
    ArchiveLimitError,
    NotFoundError,
    OfflineError,
    RegistryResponseError,
    SignatureError,
)
from plugport.host._index_rules import ACCEPT, IndexFile, check_url, parse_project_page, project_url

__all__ = ["PackageIndex"]

_MAX_PAGE_BYTES = 16 * 1024 * 1024
_MAX_REDIRECTS = 5
_REDIRECTS = {301, 302, 303, 307, 308}


class PackageIndex:
    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        offline: bool = False,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = check_url(url, what="--index-url")
        self.timeout_s = timeout_s
        self.offline = offline
        self._http = httpx.Client(
            timeout=timeout_s,
            follow_redirects=False,
            transport=transport,
            verify=default_context(),
        )
        self._pages: dict[str, tuple[str, list[IndexFile]]] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PackageIndex:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def project(self, name: str) -> tuple[str, list[IndexFile]]:
        """The project page's URL (after redirects) and the files it lists; asked once per
        project however often an operation needs it."""
        page = project_url(self.url, name)
        if page not in self._pages:
            with self._get(page, accept=ACCEPT) as response:
                if response.status_code == 404:
                    raise NotFoundError(
                        "project", name, f"the package index {self.url} has no page {page}"
                    )
                self._expect_ok(response, "the project page")
                body = self._read(response, _MAX_PAGE_BYTES, f"the project page {page}")
                final = str(response.url)
                kind = response.headers.get("Content-Type", "")
            self._pages[page] = (final, parse_project_page(body, kind, final))
        return self._pages[page]

    def optional(self, url: str, *, max_bytes: int) -> bytes | None:
        """A small file that may be absent (a signature): ``None`` on 404 or 410."""
        with self._get(url) as response:
            if response.status_code in (404, 410):
                return None
            self._expect_ok(response, "the file")
            return self._read(response, max_bytes, url)

    def download(
        self,
        file: IndexFile,
        dest: Path,
        *,
        max_bytes: int,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[str, int]:
        """Stream ``file`` into ``dest``, at most ``max_bytes``; the sha256 the page gave is
        checked. Returns the file's sha256 and length."""
        digest = hashlib.sha256()
        received = 0
        with self._get(file.url) as response, dest.open("wb") as out:
            self._expect_ok(response, file.filename)
            total = int(response.headers.get("Content-Length") or 0)
            if total > max_bytes:
                raise _too_large(file.url, total, max_bytes)
            with self._translated(file.url):
                for chunk in response.iter_bytes():
                    received += len(chunk)
                    if received > max_bytes:
                        raise _too_large(file.url, received, max_bytes)
                    digest.update(chunk)
                    out.write(chunk)
                    if progress is not None:
                        progress(received, max(total, received))
        sha256 = digest.hexdigest()
        if file.sha256 is not None and sha256 != file.sha256:
            raise SignatureError(
                "archive",
                f"{file.url} has sha256 {sha256[:16]}…, but the package index lists "
                f"{file.filename} with sha256 {file.sha256[:16]}…; it changed on the way or on "
                "the server: nothing was installed",
            )
        return sha256, received

    # --- HTTP -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _get(self, url: str, *, accept: str | None = None) -> Iterator[httpx.Response]:
        """GET ``url`` streamed, following redirects only to URLs that pass :func:`check_url`."""
        headers = {"Accept": accept} if accept else {}
        for _ in range(_MAX_REDIRECTS + 1):
            check_url(url, what="URL")
            with self._translated(url):
                response = self._http.send(
                    self._http.build_request("GET", url, headers=headers), stream=True
                )
            if response.status_code in _REDIRECTS and "Location" in response.headers:
                response.close()
                url = str(response.url.join(response.headers["Location"]))
                continue
            try:
                yield response
            finally:
                response.close()
            return
        raise RegistryResponseError(
            0, "redirects", f"{url}: more than {_MAX_REDIRECTS} redirects from {self.url}"
        )

    def _expect_ok(self, response: httpx.Response, what: str) -> None:
        if response.status_code == 404:
            raise NotFoundError("download", f"{what} at {response.url} (HTTP 404)")
        if response.status_code != 200:
            raise RegistryResponseError(
                response.status_code,
                "index",
                f"the package index answered {response.url} with HTTP {response.status_code}",
            )

    def _read(self, response: httpx.Response, max_bytes: int, what: str) -> bytes:
        chunks = []
        received = 0
        with self._translated(str(response.url)):
            for chunk in response.iter_bytes():
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(what, received, max_bytes)
                chunks.append(chunk)
        return b"".join(chunks)

    @contextlib.contextmanager
    def _translated(self, url: str) -> Iterator[None]:
        """httpx's exceptions as ours, naming the index (status 0: no HTTP answer)."""
        if self.offline:
            raise OfflineError(url, self.url)
        try:
            yield
        except httpx.TimeoutException as exc:
            raise RegistryResponseError(
                0,
                "timeout",
                f"the package index did not answer {url} within {self.timeout_s:g} s",
            ) from exc
        except httpx.HTTPError as exc:
            reason = str(exc) or type(exc).__name__
            raise RegistryResponseError(
                0, "unreachable", f"cannot reach the package index at {self.url}: {reason}"
            ) from exc


def _too_large(what: str, size: int, limit: int) -> ArchiveLimitError:
    return ArchiveLimitError(
        "max_archive_bytes", size, limit, f"{what} is more than {limit} bytes", path=what
    )
