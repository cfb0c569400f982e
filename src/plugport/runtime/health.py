"""Health checks on running workers: a periodic ping that records each worker's CPU and memory
and kills one that does not answer in time, and the data-directory size check run at every start
and ping. What happens to a failed worker (backoff, restart, quarantine) is the supervisor's
decision: a failure found here is handed to it, never acted on here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from plugport.errors import PluginCrashedError, PlugportError, ResourceLimitExceededError
from plugport.runtime import volumes
from plugport.runtime._supervised import SupervisorConfig, _Entry
from plugport.runtime.metrics import RuntimeMetrics
from plugport.runtime.process import PluginProcess

if TYPE_CHECKING:
    from plugport.runtime.capabilities.storage import PluginStorage
    from plugport.runtime.problems import ProblemDetector

__all__ = ["HealthChecks", "tree_bytes"]

logger = logging.getLogger("plugport.runtime")
MIB = 1024 * 1024

Failed = Callable[[_Entry, PluginProcess, PlugportError], None]
"""``failed(entry, process, error)``: the supervisor's handling of a worker found failing."""


class HealthChecks:
    """Pings the supervisor's running workers and measures their data directories."""

    def __init__(
        self,
        config: SupervisorConfig,
        metrics: RuntimeMetrics,
        plugins: Callable[[], Iterable[_Entry]],
        failed: Failed,
        *,
        problems: ProblemDetector | None = None,
        storage: PluginStorage | None = None,
    ) -> None:
        """``problems``: told each ping's memory and storage readings, and asked to evaluate
        after each round of pings; ``storage`` is where the key-value storage's use is read."""
        self.config = config
        self.metrics = metrics
        self._plugins = plugins
        self._failed = failed
        self._problems = problems
        self._storage = storage

    async def run_forever(self) -> None:
        while True:
            await asyncio.sleep(self.config.ping_interval_s)
            try:
                await self.ping_all()
                if self._problems is not None:
                    self._problems.evaluate()
            except Exception:  # a bug here must not end health checks for every plugin
                logger.exception("health pings failed; trying again next interval")

    async def ping_all(self) -> None:
        """Ping every running worker once: record its CPU and memory, kill it if it does not
        answer in time."""
        await asyncio.gather(*(self.ping(e) for e in list(self._plugins()) if e.running))

    async def ping(self, entry: _Entry) -> None:
        process = entry.running
        if process is None:
            return
        try:
            pong = await process.ping(self.config.ping_timeout_s)
        except TimeoutError:
            error = PluginCrashedError(
                entry.name,
                f"unresponsive: no answer to a health ping within {self.config.ping_timeout_s:g} s"
                "; killed",
                kind="unresponsive",
            )
            process.terminate(error)
            self._failed(entry, process, error)
            return
        except PlugportError:
            return  # it died meanwhile; its watcher reports it
        try:
            data_bytes = await self.check_data_dir(entry)
        except ResourceLimitExceededError as exc:
            process.terminate(exc)
            self._failed(entry, process, exc)
            return
        entry.cpu_seconds = pong.cpu_ms / 1000
        entry.peak_rss_bytes = pong.rss_kb * 1024
        self.metrics.resources(
            entry.name, cpu_seconds=entry.cpu_seconds, peak_rss_bytes=entry.peak_rss_bytes
        )
        if self._problems is not None:
            self._observe(self._problems, entry, process, data_bytes)

    def _observe(
        self, problems: ProblemDetector, entry: _Entry, process: PluginProcess, data_bytes: int
    ) -> None:
        """Hand the detector this ping's readings: memory, and how full the plugin's stores
        are. A data dir that is a volume is measured by the kernel, not here (the host sees
        an empty mount point), so it is left out rather than reported empty."""
        name = entry.name
        problems.memory(
            name, process.handle.pid, entry.peak_rss_bytes, entry.limits.memory_mb * MIB
        )
        quota = entry.grants.permissions.storage
        if self._storage is not None and quota > 0:
            problems.storage(name, "storage", self._storage.usage(name), quota)
        if not volumes.image_path(entry.data_dir).exists():
            problems.storage(name, "data_dir", data_bytes, entry.data_quota_mb(self.config) * MIB)

    async def check_data_dir(self, entry: _Entry) -> int:
        """Raise :class:`ResourceLimitExceededError` (limit ``data_dir_bytes``) when the
        plugin's data directory holds more than its quota (``max_data_dir_mb``, or the
        operator's per-plugin override); else return how much it holds (bytes). Where the data
        dir is a volume, the kernel enforces the quota when writing and this finds the host's
        (empty) mount point: the fallback's check."""
        used = await asyncio.to_thread(tree_bytes, entry.data_dir)
        quota_mb = entry.data_quota_mb(self.config)
        limit = quota_mb * 1024 * 1024
        if used > limit:
            raise ResourceLimitExceededError(
                entry.name,
                "data_dir_bytes",
                f"its data directory holds {used} bytes, over the {limit} byte limit "
                f"(max_data_dir_mb = {quota_mb})",
            )
        return used


def tree_bytes(root: Path) -> int:
    """Bytes allocated under ``root`` (blocks, so sparse files count for what they use)."""
    total = 0
    stack = [root]
    while stack:
        with contextlib.suppress(OSError), os.scandir(stack.pop()) as entries:
            for item in entries:
                if item.is_dir(follow_symlinks=False):
                    stack.append(Path(item.path))
                else:
                    total += item.stat(follow_symlinks=False).st_blocks * 512
    return total
