"""How the testing kit's fakes serve HTTP: a threaded server on 127.0.0.1 with a port of its
own, and a stop that returns at once (a short poll: tests start and stop a fake each)."""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["serve_locally", "stop_serving"]

POLL_INTERVAL_S = 0.05


def serve_locally(handler: type[BaseHTTPRequestHandler]) -> ThreadingHTTPServer:
    """A server for ``handler`` on 127.0.0.1 (any free port), already serving on a thread."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": POLL_INTERVAL_S}, daemon=True
    ).start()
    return server


def stop_serving(server: ThreadingHTTPServer | None) -> None:
    if server is not None:
        server.shutdown()
        server.server_close()
