"""A line a handler logs reaches the host before the handler's answer, whether the handler is a
coroutine (the line is written at once, in order with the answer) or runs in a thread. Before,
the line was queued behind the answer, so a host (or a test) reading the logs right after the
call could miss it."""

from __future__ import annotations

import asyncio

import pytest

from plugport.runtime.channel import MemoryChannel
from plugport.runtime.protocol import Call, Log, Message, Ready, Result
from plugport.runtime.worker import PluginServer
from plugport.sdk import Plugin, hook

from ._servers import plugin_logger  # noqa: F401  (autouse)


class Noisy(Plugin):
    @hook("async_noisy")
    async def async_noisy(self) -> str:
        self.log.warning("about to answer")
        return "answered"

    @hook("sync_noisy")
    def sync_noisy(self) -> str:
        self.log.warning("about to answer")
        return "answered"


@pytest.mark.parametrize("hook_name", ["async_noisy", "sync_noisy"])
def test_a_logged_line_arrives_before_the_answer(hook_name: str) -> None:
    async def scenario() -> list[Message]:
        host, worker = MemoryChannel.pair()
        server = PluginServer(Noisy(), worker, max_concurrency=4)
        serving = asyncio.create_task(server.serve({}))
        assert isinstance(await host.receive(), Ready)
        frames: list[Message] = []
        for call_id in range(1, 21):
            await host.send(Call(call_id, "hook", hook_name))
            while not isinstance(frame := await host.receive(), Result):
                frames.append(frame)
            frames.append(frame)
        host.close()
        await asyncio.wait_for(serving, 5)
        return frames

    frames = asyncio.run(scenario())
    kinds = ["log" if isinstance(f, Log) else "result" for f in frames]
    assert kinds == ["log", "result"] * 20
    assert {f.message for f in frames if isinstance(f, Log)} == {"about to answer"}
