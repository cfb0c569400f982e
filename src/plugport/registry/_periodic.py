"""Background work a registry node repeats for as long as it serves (its app's lifespan):
collecting orphan blobs, re-checking verified domains."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

_log = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def periodically(
    work: Callable[[], object], *, interval_s: float, what: str, at_start: bool
) -> AsyncIterator[None]:
    """Run ``work`` in a worker thread every ``interval_s`` (first at once when ``at_start``)
    while the block runs; ``interval_s`` 0 turns it off. A failed pass is logged, naming
    ``what``, and tried again next time: it must not take the registry down."""

    async def loop() -> None:
        if not at_start:
            await asyncio.sleep(interval_s)
        while True:
            try:
                await asyncio.to_thread(work)
            except Exception:
                _log.exception("%s failed; next attempt in %s s", what, interval_s)
            await asyncio.sleep(interval_s)

    if interval_s <= 0:
        yield
        return
    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
