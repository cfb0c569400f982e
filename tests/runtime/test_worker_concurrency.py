"""A worker answers at most ``max_concurrency`` calls at a time; the calls past the limit wait
their turn and start in the order they came, as each running call ends."""

from __future__ import annotations

import asyncio

from plugport.runtime.channel import MemoryChannel
from plugport.runtime.protocol import Call, Failure, Ready, Result
from plugport.runtime.worker import PluginServer
from plugport.sdk import Plugin, hook

from ._servers import plugin_logger  # noqa: F401  (autouse)


class Gated(Plugin):
    def __init__(self) -> None:
        super().__init__()
        self.running = 0
        self.most = 0
        self.started: list[int] = []
        self.gate = asyncio.Event()

    @hook("wait")
    async def wait(self, n: int) -> int:
        self.running += 1
        self.most = max(self.most, self.running)
        self.started.append(n)
        try:
            await self.gate.wait()
        finally:
            self.running -= 1
        return n

    @hook("fail")
    async def fail(self) -> None:
        raise ValueError("no")


def test_calls_past_the_limit_wait_and_start_in_order() -> None:
    async def scenario() -> tuple[Gated, list[int], int, int]:
        host, worker = MemoryChannel.pair()
        plugin = Gated()
        server = PluginServer(plugin, worker, max_concurrency=2)
        serving = asyncio.create_task(server.serve({}))
        assert isinstance(await host.receive(), Ready)
        await host.send(Call(1, "hook", "fail"))  # a failed call gives its slot back too
        assert isinstance(await host.receive(), Failure)
        for n in range(2, 8):
            await host.send(Call(n, "hook", "wait", kwargs={"n": n}))
        for _ in range(20):
            await asyncio.sleep(0)
        started_while_gated = len(plugin.started)
        plugin.gate.set()
        answers = []
        for _ in range(6):
            reply = await host.receive()
            assert isinstance(reply, Result)
            answers.append(reply.value)
        tasks_left = len(server.tasks)
        host.close()
        await asyncio.wait_for(serving, 5)
        return plugin, answers, started_while_gated, tasks_left

    plugin, answers, started_while_gated, tasks_left = asyncio.run(scenario())
    assert started_while_gated == 2
    assert plugin.most == 2
    assert plugin.started == [2, 3, 4, 5, 6, 7]
    assert sorted(answers) == [2, 3, 4, 5, 6, 7]
    assert tasks_left == 0
