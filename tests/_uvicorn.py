"""A real uvicorn server on 127.0.0.1 in a thread, for a with block: what every end-to-end test
talks to over real HTTP."""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import uvicorn

START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 30.0


@contextlib.contextmanager
def serving(app: Any, sock: socket.socket | None = None) -> Iterator[str]:
    """``app`` on ``sock`` (already bound, for an app that must know its URL) or on a free
    port; yields the base URL and stops the server however the block ends."""
    if sock is None:
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    else:
        config = uvicorn.Config(app, log_level="warning")
    server = uvicorn.Server(config)
    run: dict[str, Any] = {} if sock is None else {"sockets": [sock]}
    thread = threading.Thread(target=server.run, kwargs=run, daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(STOP_TIMEOUT_S)
