"""Real workers forked from a real zygote: calls, failures, kills and protocol abuse."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import (
    PermissionDeniedError,
    PluginCallError,
    PluginCrashedError,
    ResourceLimitExceededError,
)
from plugport.runtime import _memory
from plugport.runtime.launcher import WorkerExit, ZygoteLauncher
from plugport.runtime.process import PluginProcess
from plugport.runtime.protocol import WorkerSpec

PLUGIN = """
import asyncio, ctypes, os, socket, struct, time
import msgspec
from plugport.sdk import Plugin, hook
from plugport.errors import PermissionDeniedError


class Sample(Plugin):
    def initialize(self):
        self.calls = 0

    @hook("echo")
    async def echo(self, value):
        self.calls += 1
        return {"value": value, "calls": self.calls}

    @hook("sync_echo")
    def sync_echo(self, value):
        return value

    @hook("fail")
    def fail(self):
        raise ValueError("bad input")

    @hook("sleep")
    def sleep(self, seconds):
        time.sleep(seconds)

    @hook("exit")
    def exit(self, code):
        os._exit(code)

    @hook("segfault")
    def segfault(self):
        ctypes.string_at(0)

    @hook("memory")
    def memory(self):
        return len(bytearray(1024 * 1024 * 1024))

    @hook("hold")
    def hold(self, mib):
        self.held = b"x" * (mib * 1024 * 1024)  # resident: every page written
        return len(self.held)

    @hook("huge")
    def huge(self):
        return "x" * (5 * 1024 * 1024)

    @hook("storage")
    async def storage(self, key):
        try:
            return await self.api.storage.get(key)
        except PermissionDeniedError as exc:
            return {"denied": str(exc)}

    @hook("sync_storage")
    def sync_storage(self, key):
        return self.api.sync.storage.get(key)

    def _write_to_every_socket(self, data):
        # The attacker does not know which descriptor is the channel, so it tries them all.
        for fd in range(3, 64):
            try:
                probe = socket.socket(fileno=os.dup(fd))
            except OSError:
                continue
            if probe.family == socket.AF_UNIX:
                os.write(fd, data)
            probe.close()

    @hook("forge")
    def forge(self):
        body = msgspec.msgpack.encode({"t": "result", "id": 999999, "value": "forged"})
        self._write_to_every_socket(struct.pack("!I", len(body)) + body)
        time.sleep(5)

    @hook("giant_header")
    def giant_header(self):
        self._write_to_every_socket(struct.pack("!I", 2**31))
        time.sleep(5)
"""


@pytest.fixture(scope="module")
def plugin_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("plugin")
    (root / "sample.py").write_text(textwrap.dedent(PLUGIN))
    return root


Scenario = Callable[[PluginProcess], Awaitable[None]]


def run(
    plugin_dir: Path,
    tmp_path: Path,
    scenario: Scenario,
    broker: Callable[..., Awaitable[Any]] | None = None,
    memory_mb: int = 256,
) -> None:
    async def default_broker(capability: str, method: str, args: list[Any], kwargs: Any) -> Any:
        return {"capability": capability, "method": method, "args": args}

    async def main() -> None:
        launcher = ZygoteLauncher()
        data = tmp_path / "data"
        data.mkdir(exist_ok=True)
        spec = WorkerSpec(
            plugin="acme.sample",
            code_dir=str(plugin_dir),
            data_dir=str(data),
            entry="sample:Sample",
            memory_mb=memory_mb,
            cpu_seconds=10,
            max_concurrency=4,
            sandbox="best-effort",
        )
        try:
            handle = await launcher.launch(spec)
            process = PluginProcess(
                "acme.sample", handle, broker or default_broker, memory_mb=memory_mb
            )
            await process.start()
            try:
                await scenario(process)
            finally:
                await process.stop()
        finally:
            await launcher.close()

    asyncio.run(main())


def test_round_trip_async_and_sync(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        assert process.ready is not None
        assert {h.name for h in process.ready.handlers} >= {"echo", "sync_echo"}
        first = await process.call("hook", "echo", [1], timeout_ms=2000)
        second = await process.call("hook", "echo", [{"a": [1, 2]}], timeout_ms=2000)
        assert first.value == {"value": 1, "calls": 1}
        assert second.value == {"value": {"a": [1, 2]}, "calls": 2}
        assert (await process.call("hook", "sync_echo", ["x"], timeout_ms=2000)).value == "x"

    run(plugin_dir, tmp_path, scenario)


def test_exception_is_a_call_error_and_worker_lives(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(PluginCallError, match="raised ValueError: bad input") as caught:
            await process.call("hook", "fail", timeout_ms=2000)
        assert caught.value.type == "ValueError"
        assert "bad input" in caught.value.traceback
        with pytest.raises(PluginCallError, match="no hook handler 'missing'"):
            await process.call("hook", "missing", timeout_ms=2000)
        assert (await process.call("hook", "sync_echo", [2], timeout_ms=2000)).value == 2

    run(plugin_dir, tmp_path, scenario)


def test_timeout_kills_the_worker(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(ResourceLimitExceededError) as caught:
            await process.call("hook", "sleep", [30], timeout_ms=200)
        assert caught.value.limit == "timeout_ms"
        exit = await asyncio.wait_for(process.handle.exited, 5)
        assert exit.signal == signal.SIGKILL
        assert not process.alive

    run(plugin_dir, tmp_path, scenario)


@pytest.mark.parametrize(
    ("hook", "args", "ended"),
    [
        ("exit", [7], ("exited with code 7", "exit")),
        ("segfault", [], ("segmentation fault (SIGSEGV)", "signal")),
    ],
)
def test_crash_is_detected_with_its_cause(
    plugin_dir: Path, tmp_path: Path, hook: str, args: list[Any], ended: tuple[str, str]
) -> None:
    cause, kind = ended

    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(PluginCrashedError) as caught:
            await process.call("hook", hook, args, timeout_ms=5000)
        assert caught.value.cause == cause
        assert caught.value.kind == kind
        with pytest.raises(PluginCrashedError):
            await process.call("hook", "echo", [1], timeout_ms=1000)

    run(plugin_dir, tmp_path, scenario)


def test_memory_limit_is_reported(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(ResourceLimitExceededError) as caught:
            await process.call("hook", "memory", timeout_ms=5000)
        error = caught.value
        assert error.limit == "memory_mb"
        assert error.limit_mb == 200
        assert error.peak_mb is not None
        assert 0 < error.peak_mb <= 200
        assert f"over its memory limit: memory_mb 200 MiB, peak {error.peak_mb:.0f} MiB" in str(
            error
        )
        assert "(MemoryError: an allocation would pass the limit)" in str(error)

    run(plugin_dir, tmp_path, scenario, memory_mb=200)


def test_a_kernel_oom_kill_names_the_limit_and_the_peak_from_wait4(
    plugin_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The worker holds 48 MiB and is SIGKILLed from outside, as the kernel's OOM killer does;
    # with the share lowered, a kill the host did not send from a worker that large reads as
    # the kernel's.
    monkeypatch.setattr(_memory, "OOM_SHARE", 0.1)

    async def scenario(process: PluginProcess) -> None:
        await process.call("hook", "hold", [48], timeout_ms=5000)
        os.kill(process.handle.pid, signal.SIGKILL)
        with pytest.raises(ResourceLimitExceededError) as caught:
            await process.call("hook", "sleep", [5], timeout_ms=5000)
        error = caught.value
        exit = process.handle.exited.result()
        assert exit.signal == signal.SIGKILL
        assert exit.max_rss_kb >= 48 * 1024
        assert error.limit == "memory_mb"
        assert (error.limit_mb, error.peak_mb) == (256, round(exit.max_rss_kb / 1024, 1))
        assert error.peak_mb is not None
        assert error.peak_mb >= 48
        assert f"memory_mb 256 MiB, peak {error.peak_mb:.0f} MiB" in str(error)
        assert "killed by the kernel when out of memory (SIGKILL)" in str(error)

    run(plugin_dir, tmp_path, scenario)


def test_a_sigkill_far_below_the_limit_stays_a_crash(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        await process.call("hook", "hold", [1], timeout_ms=5000)
        os.kill(process.handle.pid, signal.SIGKILL)
        with pytest.raises(PluginCrashedError) as caught:
            await process.call("hook", "sleep", [5], timeout_ms=5000)
        assert caught.value.kind == "signal"
        assert "SIGKILL" in caught.value.cause

    run(plugin_dir, tmp_path, scenario)


@pytest.mark.parametrize(
    ("exit", "by_host", "kills", "expected"),
    [
        (WorkerExit(None, signal.SIGKILL, 120 * 1024), False, (None, None), True),
        (WorkerExit(None, signal.SIGKILL, 120 * 1024), True, (None, None), False),
        (WorkerExit(None, signal.SIGKILL, 20 * 1024), False, (None, None), False),
        (WorkerExit(None, signal.SIGKILL, 20 * 1024), False, (3, 4), True),
        (WorkerExit(None, signal.SIGKILL, 20 * 1024), False, (3, 3), False),
        (WorkerExit(None, signal.SIGSEGV, 120 * 1024), False, (3, 4), False),
        (WorkerExit(1, None, 120 * 1024), False, (None, None), False),
    ],
)
def test_oom_killed_decides_from_the_signal_the_peak_and_the_kernels_count(
    exit: WorkerExit, by_host: bool, kills: tuple[int | None, int | None], expected: bool
) -> None:
    before, after = kills
    decided = _memory.oom_killed(exit, 128, by_host=by_host, kills_before=before, kills_after=after)
    assert decided is expected


def test_memory_exceeded_without_a_reading_says_so() -> None:
    error = _memory.memory_exceeded("p", 64, 0, "MemoryError")
    assert (error.limit, error.limit_mb, error.peak_mb) == ("memory_mb", 64, None)
    assert "memory_mb 64 MiB, peak not measured (MemoryError)" in str(error)


def test_oversized_result_is_refused_not_sent(plugin_dir: Path, tmp_path: Path) -> None:
    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(ResourceLimitExceededError) as caught:
            await process.call("hook", "huge", timeout_ms=5000)
        assert caught.value.limit == "max_frame_bytes"
        assert "answer to hook 'huge' is too large to send" in str(caught.value)
        assert (await process.call("hook", "sync_echo", [3], timeout_ms=2000)).value == 3

    run(plugin_dir, tmp_path, scenario)


def test_capability_calls_reach_the_broker(plugin_dir: Path, tmp_path: Path) -> None:
    seen: list[tuple[str, str, list[Any]]] = []

    async def broker(capability: str, method: str, args: list[Any], kwargs: Any) -> Any:
        seen.append((capability, method, args))
        if args[0] == "secret":
            raise PermissionDeniedError("acme.sample", "storage", "no storage permission")
        return f"value-of-{args[0]}"

    async def scenario(process: PluginProcess) -> None:
        assert (await process.call("hook", "storage", ["k"], timeout_ms=2000)).value == "value-of-k"
        denied = await process.call("hook", "storage", ["secret"], timeout_ms=2000)
        assert "no storage permission" in denied.value["denied"]
        synced = await process.call("hook", "sync_storage", ["s"], timeout_ms=2000)
        assert synced.value == "value-of-s"

    run(plugin_dir, tmp_path, scenario, broker=broker)
    assert seen == [  # the typed proxy sends every parameter, defaults included
        ("storage", "get", ["k", None]),
        ("storage", "get", ["secret", None]),
        ("storage", "get", ["s", None]),
    ]


@pytest.mark.parametrize(
    ("hook", "reason"),
    [("forge", "unknown request id 999999"), ("giant_header", "over the")],
)
def test_protocol_abuse_kills_the_worker(
    plugin_dir: Path, tmp_path: Path, hook: str, reason: str
) -> None:
    async def scenario(process: PluginProcess) -> None:
        with pytest.raises(PluginCrashedError, match="protocol violation"):
            await process.call("hook", hook, timeout_ms=5000)
        assert process.violation is not None
        assert reason in process.violation
        exit = await asyncio.wait_for(process.handle.exited, 5)
        assert exit.signal == signal.SIGKILL

    run(plugin_dir, tmp_path, scenario)


def test_a_burst_of_launches_waits_for_room_on_the_control_socket(
    plugin_dir: Path, tmp_path: Path
) -> None:
    """Found by the 200-plugin benchmark: a full control socket must slow launches down, not
    fail them with a raw BlockingIOError."""
    data = tmp_path / "data"
    data.mkdir()
    spec = WorkerSpec(
        plugin="acme.sample",
        code_dir=str(plugin_dir),
        data_dir=str(data),
        entry="sample:Sample",
        memory_mb=256,
        cpu_seconds=10,
        max_concurrency=4,
        sandbox="best-effort",
    )

    async def main() -> None:
        launcher = ZygoteLauncher()
        await launcher.start()
        assert launcher.pid is not None
        assert launcher._control is not None
        launcher._control.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 2048)
        handles = await asyncio.gather(*(launcher.launch(spec) for _ in range(40)))
        assert len({h.pid for h in handles}) == 40
        for handle in handles:
            handle.kill()
            handle.channel.close()
        await asyncio.gather(*(h.exited for h in handles))
        launcher._control.shutdown(socket.SHUT_WR)  # the zygote reads EOF and exits
        with pytest.raises(PluginCrashedError, match=r"could not start a worker: .*Broken pipe"):
            await launcher.launch(spec)
        assert launcher._spawns == {}
        await launcher.close()

    asyncio.run(main())
