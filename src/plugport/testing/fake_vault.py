"""A local fake of HashiCorp Vault's KV v2 HTTP API, enough for :class:`VaultSecretStore` and
its tests: ``X-Vault-Token`` auth (403 ``{"errors":["permission denied"]}``), read and write
``/v1/{mount}/data/{path}`` (with ``options.cas`` check-and-set), ``LIST`` and ``DELETE``
``/v1/{mount}/metadata/{path}``, 404 ``{"errors":[]}`` for what is missing, and the sealed
(503) and rate-limited (429) answers. It listens on 127.0.0.1 only.

    with FakeVault(tokens={"root-token": None}) as vault:
        store = VaultSecretStore(vault.url, "root-token")
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

__all__ = ["FakeVault"]


@dataclass
class _Secret:
    versions: list[tuple[dict[str, Any], str]] = field(default_factory=list)
    """(data, created_time) per version, oldest first."""


class FakeVault:
    """``tokens``: token -> the path prefixes it may use under any mount (None: everything).
    Set ``sealed`` or ``rate_limited`` to make every request fail that way."""

    def __init__(
        self,
        *,
        tokens: Mapping[str, Sequence[str] | None] | None = None,
        mounts: Sequence[str] = ("secret",),
    ) -> None:
        self.tokens: dict[str, Sequence[str] | None] = dict(tokens or {"root": None})
        self.mounts = set(mounts)
        self.secrets: dict[tuple[str, str], _Secret] = {}
        self.sealed = False
        self.rate_limited = False
        self.requests: list[tuple[str, str]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> FakeVault:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    # --- what the handler asks --------------------------------------------------------------

    def answer(  # noqa: PLR0911 - one return per documented answer
        self, method: str, raw_path: str, token: str | None, body: bytes
    ) -> tuple[int, Any]:
        parts = urlsplit(raw_path)
        query = parse_qs(parts.query)
        if method == "GET" and query.get("list") == ["true"]:
            method = "LIST"
        self.requests.append((method, parts.path))
        if self.sealed:
            return 503, {"errors": ["Vault is sealed"]}
        if self.rate_limited:
            return 429, {"errors": ["request path: rate limit quota exceeded"]}
        segments = parts.path.strip("/").split("/")
        if len(segments) < 3 or segments[0] != "v1":
            return 404, {"errors": []}
        mount, kind, path = segments[1], segments[2], "/".join(segments[3:]).strip("/")
        if token not in self.tokens or not self._allowed(token, path):
            return 403, {"errors": ["permission denied"]}
        if mount not in self.mounts or kind not in ("data", "metadata"):
            return 404, {"errors": [f'no handler for route "{mount}/{kind}/{path}"']}
        with self._lock:
            if kind == "data" and method == "GET":
                return self._read(mount, path, query)
            if kind == "data" and method in ("POST", "PUT"):
                return self._write(mount, path, body)
            if kind == "metadata" and method == "LIST":
                return self._list(mount, path)
            if kind == "metadata" and method == "DELETE":
                self.secrets.pop((mount, path), None)
                return 204, None
        return 405, {"errors": ["unsupported operation"]}

    def _allowed(self, token: str, path: str) -> bool:
        prefixes = self.tokens[token]
        return prefixes is None or any(path.startswith(p) for p in prefixes)

    def _read(self, mount: str, path: str, query: Mapping[str, list[str]]) -> tuple[int, Any]:
        secret = self.secrets.get((mount, path))
        if secret is None or not secret.versions:
            return 404, {"errors": []}
        version = int(query.get("version", ["0"])[0]) or len(secret.versions)
        if not 1 <= version <= len(secret.versions):
            return 404, {"errors": []}
        data, created = secret.versions[version - 1]
        return 200, _envelope(
            {
                "data": data,
                "metadata": {
                    "created_time": created,
                    "custom_metadata": None,
                    "deletion_time": "",
                    "destroyed": False,
                    "version": version,
                },
            }
        )

    def _write(self, mount: str, path: str, body: bytes) -> tuple[int, Any]:
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            return 400, {"errors": ["failed to parse JSON input"]}
        if not isinstance(payload.get("data"), dict):
            return 400, {"errors": ["no data provided"]}
        secret = self.secrets.setdefault((mount, path), _Secret())
        cas = (payload.get("options") or {}).get("cas")
        if cas is not None and int(cas) != len(secret.versions):
            if not secret.versions:
                del self.secrets[(mount, path)]
            return 400, {"errors": ["check-and-set parameter did not match the current version"]}
        created = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        secret.versions.append((payload["data"], created))
        return 200, _envelope(
            {
                "created_time": created,
                "custom_metadata": None,
                "deletion_time": "",
                "destroyed": False,
                "version": len(secret.versions),
            }
        )

    def _list(self, mount: str, path: str) -> tuple[int, Any]:
        prefix = f"{path}/" if path else ""
        keys = set()
        for m, name in self.secrets:
            if m == mount and name.startswith(prefix):
                rest = name[len(prefix) :]
                head, slash, _ = rest.partition("/")
                keys.add(head + slash)
        if not keys:
            return 404, {"errors": []}
        return 200, _envelope({"keys": sorted(keys)})


def _envelope(data: Any) -> dict[str, Any]:
    return {
        "request_id": str(uuid.uuid4()),
        "lease_id": "",
        "renewable": False,
        "lease_duration": 0,
        "data": data,
        "wrap_info": None,
        "warnings": None,
        "auth": None,
    }


def _handler(vault: FakeVault) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def _serve(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            body = self.rfile.read(length) if length else b""
            status, payload = vault.answer(
                self.command, self.path, self.headers.get("x-vault-token"), body
            )
            data = b"" if payload is None else json.dumps(payload).encode()
            self.send_response(status)
            if data:
                self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PUT = do_DELETE = do_LIST = _serve

        def log_message(self, *args: object) -> None:
            pass

    return Handler
