"""Task ids the node took from the queue while their plugin was at its concurrency limit are
held without their records being read again on every pass, until there is room; then each is
read again (it may have been cancelled meanwhile) and runs."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from plugport.host import PluginHost
from plugport.host.tasks import QueueOptions, TaskRecord
from tests.host.tasks._tasks import install_tasker, open_gate, with_host

pytestmark = pytest.mark.slow  # a real worker


def test_held_ids_are_not_read_again_while_the_plugin_is_full(tmp_path: Path) -> None:
    home = tmp_path / "home"
    install_tasker(home, tmp_path)  # max_concurrency = 4

    async def scenario(host: PluginHost) -> tuple[int, int, int, str, list[str]]:
        queue = host.tasks
        ids = [
            (await queue.submit("EFFECT", {"key": f"k{i}", "gated": True})).id for i in range(12)
        ]
        while sum(r.progress is not None for r in queue.find(state="running")) < 4:
            await asyncio.sleep(0.02)
        cancelled = await queue.cancel(ids[-1])  # held, then cancelled: never runs
        reads = 0
        real_get = queue.store.get

        def counting_get(task_id: str) -> TaskRecord | None:
            nonlocal reads
            reads += 1
            return real_get(task_id)

        queue.store.get = counting_get  # type: ignore[method-assign]
        for _ in range(20):
            queue.wake()
            await asyncio.sleep(0.01)
        held, running = queue._held, len(queue.running)
        queue.store.get = real_get  # type: ignore[method-assign]
        open_gate(host)
        states = [(await queue.await_result(i, timeout_s=60)).state for i in ids]
        return reads, held, running, cancelled.state, states

    reads, held, running, cancelled, states = with_host(
        home, scenario, options=QueueOptions(concurrency=8)
    )
    assert (reads, held, running) == (0, 8, 4)
    assert cancelled == "cancelled"
    assert states == ["succeeded"] * 11 + ["cancelled"]
