"""One event loop on a background thread per test session, where every runtime of the session
lives, so tests call plugins synchronously (no pytest-asyncio needed) and share one zygote.

The zygote is started as soon as the session knows a test will need it, so it boots in its own
process while pytest collects and the host side imports: both are most of a test run's start-up
time.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from plugport.runtime.launcher import ZygoteLauncher

__all__ = ["CALL_TIMEOUT_S", "Runner"]

T = TypeVar("T")

CALL_TIMEOUT_S = 300.0
"""A backstop only: every plugin call has its own ``timeout_ms``; this keeps a wedged test from
hanging the session."""


class Runner:
    def __init__(self) -> None:
        # Imports happen on this (the main) thread only. Two threads importing parts of one
        # package graph at once can meet in CPython's import deadlock detection, which then
        # hands one of them a half-imported module (KeyError in sys.modules); the zygote boots
        # in its own process anyway, so that start-up still overlaps with pytest's collection.
        from plugport.runtime.launcher import ZygoteLauncher

        self._zygote = ZygoteLauncher()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="plugport-testing", daemon=True
        )
        self._thread.start()
        self._launcher: Future[ZygoteLauncher] = asyncio.run_coroutine_threadsafe(
            self._boot(), self._loop
        )

    async def _boot(self) -> ZygoteLauncher:
        await self._zygote.start()
        return self._zygote

    @property
    def launcher(self) -> ZygoteLauncher:
        return self._launcher.result(CALL_TIMEOUT_S)

    def run(self, awaitable: Awaitable[T]) -> T:
        """Run ``awaitable`` on the loop and wait for its result (or its exception)."""

        async def wrapped() -> T:
            return await awaitable

        return asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(CALL_TIMEOUT_S)

    def call(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Call ``function`` on the loop's thread, awaiting it when it returns an awaitable."""

        async def wrapped() -> Any:
            value = function(*args, **kwargs)
            if isinstance(value, Awaitable):
                value = await value
            return value

        result: T = asyncio.run_coroutine_threadsafe(wrapped(), self._loop).result(CALL_TIMEOUT_S)
        return result

    def close(self) -> None:
        if self._launcher.done() and self._launcher.exception() is None:
            self.run(self._launcher.result().close())
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()
