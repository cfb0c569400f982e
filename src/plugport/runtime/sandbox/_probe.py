"""Kernel feature probes that would change the calling process (``unshare``, ``mount``) run in a
throwaway child; this runs one and returns what it said, never blocking past a deadline."""

from __future__ import annotations

import os
import select
import signal
from collections.abc import Callable

from plugport.runtime.sandbox import _libc

__all__ = ["in_child"]


def in_child(action: Callable[[], str], timeout_s: float = 5.0) -> str:
    """Run ``action`` in a forked child and return its answer: its return value, the kernel's
    refusal (``EPERM (path)``), or ``""`` when it did not answer in time."""
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        return f"cannot fork a probe: {_libc.errno_name(exc.errno or 0)}"
    if pid == 0:  # pragma: no cover - runs in the probe child, which never returns
        message = "?"
        try:
            os.close(read_end)
            message = action()
        except OSError as exc:
            where = f" ({exc.filename})" if exc.filename else ""
            message = f"{_libc.errno_name(exc.errno or 0)}{where}"
        except BaseException as exc:
            message = getattr(exc, "reason", None) or f"probe failed: {exc!r}"
        finally:
            try:
                os.write(write_end, message.encode())
            finally:
                os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], timeout_s)
        message = os.read(read_end, 4096).decode(errors="replace") if ready else ""
    finally:
        os.close(read_end)
    if not message:
        os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return message
