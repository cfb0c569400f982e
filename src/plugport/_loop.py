"""The event loop plugport's own processes run on: uvloop where it is installed (a dependency
on every platform but Windows), else asyncio's.

A plugin call is a frame out and a frame back, and each end's loop turns once per frame; on
uvloop a turn costs a few system calls fewer than on asyncio's selector loop (the answer
resumes the caller in the turn that read it, where asyncio takes one more turn to do so), and
far less Python. The worker, the host commands of the CLI and the benchmarks use it; the host
service gets it from uvicorn, which picks uvloop where installed. An application that embeds
the runtime on its own loop keeps its choice."""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any, TypeVar

__all__ = ["new_event_loop", "run"]

T = TypeVar("T")


def new_event_loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def run(main: Coroutine[Any, Any, T]) -> T:
    """``asyncio.run(main)`` on :func:`new_event_loop`."""
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        return runner.run(main)
