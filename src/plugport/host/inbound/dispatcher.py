"""Hands the inbox's due deliveries to the plugins' handlers, in the host service's event loop:
a delivery whose handler raised (or could not be reached) is tried again later by the inbox's
schedule, and one out of attempts is ``dead``. Started with the workspace, it first takes what a
previous process left pending, so nothing accepted is lost to a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from plugport.host.inbound._inbox_rules import DEFAULT_RETENTION_S
from plugport.host.inbound.inbox import Delivery, SqliteInbox

__all__ = ["Dispatcher"]

log = logging.getLogger(__name__)

Deliver = Callable[[Delivery], Awaitable[None]]
"""Runs the plugin's handler for one delivery; raising means "try again later"."""
Outcome = Callable[[Delivery, str, str], None]
"""Told ``(delivery, state, error)`` after each failed attempt (``pending`` or ``dead``)."""

IDLE_POLL_S = 5.0
"""The longest the dispatcher sleeps with nothing due (a wake-up normally comes sooner)."""
PRUNE_EVERY_S = 3600.0
"""How often the dispatcher forgets handled deliveries past their retention."""


class Dispatcher:
    def __init__(
        self,
        inbox: SqliteInbox,
        deliver: Deliver,
        *,
        concurrency: int = 4,
        on_failure: Outcome | None = None,
        clock: Callable[[], float] = time.time,
        retention_s: float = DEFAULT_RETENTION_S,
        prune_every_s: float = PRUNE_EVERY_S,
    ) -> None:
        self.inbox = inbox
        self.retention_s = retention_s
        self.prune_every_s = prune_every_s
        self.pruned = 0
        """Handled deliveries forgotten so far."""
        self.pruned_at: float | None = None
        """The clock's time of the last prune."""
        self._deliver = deliver
        self._on_failure = on_failure
        self._clock = clock
        self._slots = asyncio.Semaphore(concurrency)
        self._concurrency = concurrency
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="plugport-inbox")

    def wake(self) -> None:
        """A delivery was accepted: look now rather than at the next poll."""
        self._wake.set()

    async def close(self) -> None:
        """Stop taking deliveries; those in flight finish (their outcome recorded) or, if cut
        off, stay claimed and go back to pending when the inbox is opened next."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)

    async def _prune(self) -> None:
        now = self._clock()
        if self.pruned_at is not None and now < self.pruned_at + self.prune_every_s:
            return
        try:
            self.pruned += await asyncio.to_thread(self.inbox.prune, now, self.retention_s)
        except Exception:  # a prune that failed must not stop deliveries; tried again later
            log.exception("pruning the webhook inbox")
        self.pruned_at = now

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            await self._prune()
            free = self._concurrency - len(self._running)
            claimed = (
                await asyncio.to_thread(self.inbox.claim_due, self._clock(), free) if free else []
            )
            for delivery in claimed:
                task = asyncio.create_task(self._attempt(delivery))
                self._running.add(task)
                task.add_done_callback(self._finished)
            if claimed:
                continue
            due = await asyncio.to_thread(self.inbox.next_due)
            wait = IDLE_POLL_S if due is None else max(0.0, min(IDLE_POLL_S, due - self._clock()))
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancel that lands
            # as the wait ends, and close() would then wait for this loop forever.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(wait):
                    await self._wake.wait()

    def _finished(self, task: asyncio.Task[None]) -> None:
        self._running.discard(task)
        self._wake.set()  # a slot is free

    async def _attempt(self, delivery: Delivery) -> None:
        async with self._slots:
            try:
                await self._deliver(delivery)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                error = _error_text(exc)
                state = await asyncio.to_thread(
                    self.inbox.failed, delivery.id, error, self._clock()
                )
                if self._on_failure is not None:
                    try:
                        self._on_failure(delivery, state, error)
                    except Exception:  # an audit that failed must not stop deliveries
                        log.exception("recording a failed webhook delivery")
                return
            await asyncio.to_thread(self.inbox.done, delivery.id, self._clock())


def _error_text(exc: BaseException) -> str:
    """What the operator sees: our errors' messages never carry secrets; a plugin's own
    exception text is its own (it never had the endpoint's secret)."""
    return f"{type(exc).__name__}: {exc}"[:1000]
