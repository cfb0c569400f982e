"""The ``plugport dev`` process: start the session, serve the page, watch the source, and
stop everything on Ctrl-C or SIGTERM.

The rule it protects: dev leaves nothing behind. The first signal stops the watcher, the page
(its port closes) and the supervisor (worker and zygote), then exits 0; a second one during
that shutdown SIGKILLs the worker and the zygote before exiting at once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
from pathlib import Path

from rich.markup import escape
from watchfiles import Change, awatch

from plugport.dev._page import MISSING_HINT, PageServer, page_available
from plugport.dev._problems import SourceProblem
from plugport.dev._session import DevOptions, DevSession
from plugport.dev._stream import Stream
from plugport.dev._watch_rules import classify, ignored
from plugport.errors import PlugportError

__all__ = ["EXIT_FORCED", "WATCH_STEP_MS", "run_dev"]

EXIT_FORCED = 130
"""A second Ctrl-C: out at once, workers killed rather than stopped."""
WATCH_STEP_MS = 20
"""How long the watcher waits for more events after one before reporting the batch: an
editor's save (write, rename, chmod) is one batch, and a change is still live well within 1 s."""
WATCH_DEBOUNCE_MS = 300

logger = logging.getLogger("plugport.dev")


async def run_dev(options: DevOptions, stream: Stream) -> int:
    """Run until a signal; 0 when stopped cleanly. Raises
    :class:`~plugport.dev._session.DevStartError` (nothing left running) on bad input."""
    session = DevSession(options, stream)
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[int] = []

    def on_signal(signum: int) -> None:
        received.append(signum)
        if len(received) == 1:
            stream.say(
                "stopping",
                "[yellow]stopping…[/] (Ctrl-C again to kill at once)",
                signal=signal.Signals(signum).name,
            )
            stop.set()
            return
        session.kill_now()
        stream.say("killed", "[bold red]killed the worker and the zygote[/]")
        os._exit(EXIT_FORCED)

    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, on_signal, signum)
    page: PageServer | None = None
    watcher: asyncio.Task[None] | None = None
    try:
        await session.start()
        if options.port is not None and not stop.is_set():
            if page_available():
                page = PageServer(session, options.port)
                await page.start()
                stream.say(
                    "page", f"page: [bold underline]{page.url}[/]", url=page.url, port=page.port
                )
            else:
                stream.say("page", f"[yellow]no page: {MISSING_HINT}[/]", url=None)
        if not stop.is_set():
            watcher = asyncio.create_task(_watch(session, stop))
            await asyncio.sleep(0.05)  # the watcher's inotify watches are set up on its 1st step
            stream.say(
                "watching",
                f"watching {escape(str(session.root))} for changes [dim](Ctrl-C to stop)[/]",
                path=str(session.root),
                pid=os.getpid(),
            )
            await stop.wait()
    finally:
        stop.set()
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if page is not None:
            await page.stop()
        await session.close()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
    stream.say("stopped", "stopped: no worker, zygote or port left")
    return 0


async def _watch(session: DevSession, stop: asyncio.Event) -> None:
    root, config = session.root, session.config_file
    paths = [root]
    if config is not None and not config.is_relative_to(root):
        paths.append(config.parent)

    def wanted(change: Change, path: str) -> bool:
        where = Path(path)
        if where == config:
            return True
        try:
            return not ignored(where.relative_to(root).as_posix())
        except ValueError:
            return False

    async for batch in awatch(
        *paths,
        watch_filter=wanted,
        stop_event=stop,
        step=WATCH_STEP_MS,
        debounce=WATCH_DEBOUNCE_MS,
    ):
        changes = classify(
            ((Path(path), change != Change.deleted) for change, path in batch),
            root,
            config_file=config,
        )
        if changes.empty:
            continue
        try:
            await session.changed(changes)
        except PlugportError as exc:  # the supervisor refused: say so, keep watching
            session.stream.problems([SourceProblem("start", "", str(exc))], keeping="")
        except Exception as exc:  # a bug of ours must not end the author's session
            logger.exception("reload failed")
            session.stream.problems(
                [SourceProblem("start", "", f"reload failed: {type(exc).__name__}: {exc}")],
                keeping="",
            )
