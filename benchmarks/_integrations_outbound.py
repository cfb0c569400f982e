"""Outbound webhooks, end to end (``targets.webhook_deliveries_per_s``, target >= 500/s): a real
plugin in a real sandboxed worker calls ``api.webhooks.deliver`` N times at once; the host checks
each, commits it to ``outbox.sqlite`` before answering (deliveries arriving together share a
commit) and the sender POSTs it, signed, to a local receiver on 127.0.0.1 that answers 204.
Timed from the command's start until every row is ``done`` in the outbox. The per-host rate
limit and the broker's call rate are raised for the run (the defaults, 10/s per target host and
500 calls/s per plugin, would measure the limits)."""

from __future__ import annotations

import asyncio
import tempfile
import textwrap
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from plugport.manifest import load_manifest
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.capabilities._delivery_rules import WebhookOptions
from plugport.runtime.capabilities._secret_source import MemorySecrets
from plugport.runtime.supervisor import PluginInstall, Supervisor, SupervisorConfig

__all__ = ["webhook_deliveries"]

TARGET_PER_S = 500.0
_ANSWER = b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n"

_CODE = """
import asyncio
from plugport.sdk import Plugin, command


class Main(Plugin):
    @command("b.burst")
    async def burst(self, target, n):
        gate = asyncio.Semaphore(32)  # the worker's cap on capability calls in flight

        async def one(i):
            async with gate:
                return await self.api.webhooks.deliver(
                    target, {"n": i, "pad": "x" * 200}, sign_with="hook"
                )

        return len(set(await asyncio.gather(*(one(i) for i in range(n)))))
"""

_MANIFEST = """
name = "bench.hooks"
version = "1.0.0"
entry = "main:Main"

[credentials.hook]
kind = "hmac"

[permissions]
webhooks.deliver = ["https://hooks.example.com/"]

[contributes]
commands = [{ id = "b.burst", title = "Burst" }]
"""


class _Receiver:
    """A minimal keep-alive HTTP/1.1 server in its own thread and loop: reads each request's
    head and body, answers 204, counts."""

    def __init__(self) -> None:
        self.count = 0
        self.port = 0
        self._ready = threading.Event()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> _Receiver:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value.strip())
                await reader.readexactly(length)
                self.count += 1
                writer.write(_ANSWER)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


async def _measure(root: Path, port: int, count: int) -> float:
    code = root / "plugin"
    code.mkdir()
    (code / "main.py").write_text(textwrap.dedent(_CODE))
    (code / "plugport.toml").write_text(textwrap.dedent(_MANIFEST))
    endpoint = f"127.0.0.1:{port}"
    install = PluginInstall(
        load_manifest(code / "plugport.toml"), code, local_endpoints=(endpoint,)
    )
    config = SupervisorConfig(
        state_dir=root / "state",
        sandbox="best-effort",
        restart=RestartPolicy(backoff_initial_s=0.05, backoff_max_s=0.2),
        ping_interval_s=0,
        data_volumes=False,
        capability_calls_per_s=1e6,
        webhooks=replace(WebhookOptions(), host_rates={"127.0.0.1": (1e6, 1e6)}),
    )
    async with Supervisor(config) as runtime:
        if not isinstance(runtime.services.secrets, MemorySecrets):
            raise TypeError("the benchmark sets its key in the in-memory secrets")
        runtime.services.secrets.set("bench.hooks", "hook", b"bench-key")
        runtime.add(install)
        await runtime.start()
        await runtime.activate("bench.hooks")
        url = f"http://{endpoint}/in"
        await runtime.run_command("bench.hooks", "b.burst", [url, 20])  # warm up
        while runtime.outbox.counts()["done"] < 20:
            await asyncio.sleep(0.005)
        started = time.perf_counter()
        unique = await _burst(runtime, url, count)
        while runtime.outbox.counts()["done"] < count + 20:
            await asyncio.sleep(0.002)
        elapsed = time.perf_counter() - started
        if unique != count:
            raise RuntimeError(f"{count} deliveries gave {unique} distinct ids")
        return elapsed


async def _burst(runtime: Supervisor, url: str, count: int) -> int:
    return int(await runtime.run_command("bench.hooks", "b.burst", [url, count]))


def webhook_deliveries(count: int = 2000) -> dict[str, Any]:
    """``{"webhook_deliveries_per_s": {"target", "value", "met", ...}}``."""
    with tempfile.TemporaryDirectory() as tmp, _Receiver() as receiver:
        elapsed = asyncio.run(_measure(Path(tmp), receiver.port, count))
    value = round(count / elapsed, 1)
    return {
        "webhook_deliveries_per_s": {
            "target": TARGET_PER_S,
            "value": value,
            "met": value >= TARGET_PER_S,
            "deliveries": count,
            "elapsed_s": round(elapsed, 3),
            "received": receiver.count,
        }
    }
