"""A local HTTPS server for the domain check's tests: a certificate made here (its own CA,
trusted by the checker only through ``CheckOptions.ca_file``), and answers chosen per host
name and path."""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from tests._certs import self_signed


def certificate(tmp_path: Path, names: list[str]) -> tuple[Path, Path]:
    """A self-signed certificate (its own CA) for ``names``: (cert file, key file)."""
    return self_signed(tmp_path, "site", names)


@dataclass
class Answer:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


@dataclass
class Site:
    port: int
    ca_file: Path
    answers: dict[tuple[str, str], Answer]
    """(host name, path) -> what to answer; anything else is a 404."""
    seen: list[tuple[str, str]] = field(default_factory=list)

    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextlib.contextmanager
def https_site(tmp_path: Path, names: list[str]) -> Iterator[Site]:
    cert_file, key_file = certificate(tmp_path, names)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    answers: dict[tuple[str, str], Answer] = {}
    seen: list[tuple[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            host = (self.headers.get("host") or "").split(":")[0]
            seen.append((host, self.path))
            answer = answers.get((host, self.path), Answer(404, b"not found"))
            time.sleep(answer.delay_s)
            self.send_response(answer.status)
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.send_header("content-length", str(len(answer.body)))
            self.end_headers()
            with contextlib.suppress(OSError):
                self.wfile.write(answer.body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield Site(server.server_address[1], cert_file, answers, seen)
    finally:
        server.shutdown()
        server.server_close()
