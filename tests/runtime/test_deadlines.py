"""No host call hangs because something below it broke: a zygote that cannot answer a spawn
fails the activation within ``spawn_timeout_ms`` (and is replaced), and a plugin that breaks its
own worker in any way never holds a call, a ping or a stop past its deadline."""

from __future__ import annotations

import asyncio
import contextlib
import os
import resource
import signal
import time
from collections.abc import Awaitable
from pathlib import Path
from typing import TypeVar

import pytest

from plugport.errors import PluginCrashedError
from plugport.runtime.hooks import HookSpec
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.protocol import WorkerSpec
from plugport.runtime.sandbox import doctor
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import kinds, supervise, write_plugin

ECHO = """
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return f"hello {name}"
"""
GREET = "[contributes]\nhooks = { greet = 0 }\n"
HOOKS = (HookSpec("greet", ("name",)), HookSpec("attack"))
T = TypeVar("T")
SLACK_S = 1.5  # scheduling on a loaded machine; every deadline below is far shorter than a hang


def zygote_of(runtime: Supervisor) -> int:
    assert isinstance(runtime.launcher, ZygoteLauncher)
    pid = runtime.launcher.pid
    assert pid is not None
    return pid


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def greets(runtime: Supervisor, name: str = "again") -> None:
    [outcome] = await runtime.call_hook("greet", name=name)
    assert outcome.value == f"hello {name}", outcome.error


def test_a_stopped_zygote_fails_the_activation_in_time_and_is_replaced(tmp_path: Path) -> None:
    install = write_plugin(tmp_path, "acme.echo", ECHO, GREET)

    async def scenario(runtime: Supervisor) -> None:
        await greets(runtime, "first")
        await runtime.deactivate("acme.echo")
        stopped = zygote_of(runtime)
        os.kill(stopped, signal.SIGSTOP)  # what a plugin could do to it with the same uid
        try:
            started = time.monotonic()
            with pytest.raises(PluginCrashedError) as caught:
                await runtime.activate("acme.echo")
            elapsed = time.monotonic() - started
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.kill(stopped, signal.SIGCONT)
        assert caught.value.kind == "launch"
        assert "did not answer for 500 ms (spawn_timeout_ms)" in caught.value.cause
        assert 0.5 <= elapsed < 0.5 + SLACK_S
        assert gone(stopped)  # killed and reaped, not left stopped
        assert 'cause="launch"' in runtime.metrics.render().decode()
        await asyncio.sleep(0.1)  # the backoff after one failure
        await greets(runtime)
        assert zygote_of(runtime) != stopped

    audit = supervise(tmp_path, [install], scenario, hooks=HOOKS, spawn_timeout_ms=500)
    assert kinds(audit, "acme.echo") == ["activate", "deactivate", "crash", "restart", "deactivate"]


def test_a_zygote_that_cannot_take_the_channel_answers_spawn_failed(tmp_path: Path) -> None:
    """With its fd limit at 3 the kernel drops the channel descriptor a spawn request carries;
    the zygote says so at once (SpawnFailed) rather than leaving the host to time out, and keeps
    serving once the limit is back."""
    install = write_plugin(tmp_path, "acme.echo", ECHO, GREET)

    async def scenario(runtime: Supervisor) -> None:
        await greets(runtime, "first")
        await runtime.deactivate("acme.echo")
        zygote = zygote_of(runtime)
        limits = resource.prlimit(zygote, resource.RLIMIT_NOFILE)
        resource.prlimit(zygote, resource.RLIMIT_NOFILE, (3, limits[1]))
        try:
            started = time.monotonic()
            with pytest.raises(PluginCrashedError) as caught:
                await runtime.activate("acme.echo")
            elapsed = time.monotonic() - started
        finally:
            resource.prlimit(zygote, resource.RLIMIT_NOFILE, limits)
        assert caught.value.kind == "launch"
        assert caught.value.cause == (
            "could not start a worker: the zygote received no channel descriptor with the "
            "request (out of fds?)"
        )
        assert elapsed < 5  # well before spawn_timeout_ms: it answered
        await asyncio.sleep(0.1)
        await greets(runtime)
        assert zygote_of(runtime) == zygote  # the same zygote, still serving

    supervise(tmp_path, [install], scenario, hooks=HOOKS, spawn_timeout_ms=10_000)


def test_a_slow_zygote_that_keeps_answering_serves_a_burst_past_the_deadline(
    tmp_path: Path,
) -> None:
    """The deadline is on the zygote's silence, not on the queue: a burst that takes longer
    than spawn_timeout_ms in all, from a zygote running a sixth of the time, is served whole
    and the zygote is not replaced."""
    install = write_plugin(tmp_path, "acme.echo", ECHO, GREET)
    (tmp_path / "data").mkdir()
    spec = WorkerSpec(
        plugin="acme.echo",
        code_dir=str(install.code_dir),
        data_dir=str(tmp_path / "data"),
        entry="main:Main",
        memory_mb=256,
        cpu_seconds=10,
        max_concurrency=4,
        sandbox="best-effort",
    )

    async def throttle(pid: int, done: asyncio.Event) -> None:
        try:
            while not done.is_set():
                os.kill(pid, signal.SIGSTOP)
                await asyncio.sleep(0.25)
                os.kill(pid, signal.SIGCONT)
                await asyncio.sleep(0.05)
        finally:
            os.kill(pid, signal.SIGCONT)

    async def main() -> None:
        launcher = ZygoteLauncher(spawn_timeout_ms=600)
        try:
            first = await launcher.launch(spec)  # boots the zygote
            first.kill()
            first.channel.close()
            zygote = launcher.pid
            assert zygote is not None
            done = asyncio.Event()
            throttling = asyncio.create_task(throttle(zygote, done))
            started = time.monotonic()
            try:
                handles = await asyncio.gather(*(launcher.launch(spec) for _ in range(60)))
            finally:
                done.set()
                await throttling
            assert time.monotonic() - started > 0.6  # longer than spawn_timeout_ms in all
            assert len({h.pid for h in handles}) == 60
            assert launcher.pid == zygote
            for handle in handles:
                handle.kill()
                handle.channel.close()
        finally:
            await launcher.close()

    asyncio.run(main())


# --- a plugin that breaks its own worker ------------------------------------------------------

# Every body defines ``attack`` (a hook) on a class ``Main``; ``channel()`` finds the worker's
# end of its socket the way a plugin could: the Unix socket whose peer is another process.
BREAK_HEADER = """
import ctypes, errno, signal, socket, struct, threading


def channel():
    for fd in range(3, 256):
        try:
            probe = socket.socket(fileno=os.dup(fd))
        except OSError:
            continue
        with probe:
            if probe.family != socket.AF_UNIX:
                continue
            cred = probe.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12)
            if struct.unpack("3i", cred)[0] != os.getpid():  # not the event loop's self-pipe
                return fd
    raise LookupError("no channel")


class Main(Plugin):
"""
BREAKS = {
    "close-channel": "def attack(self):\n    os.close(channel())\n    time.sleep(30)",
    "dup2-over-channel": "def attack(self):\n    r, w = os.pipe()\n    os.dup2(r, channel())\n"
    "    time.sleep(30)",
    "sigstop-itself": "def attack(self):\n    os.kill(os.getpid(), signal.SIGSTOP)",
    "sigstop-after-answering": "def attack(self):\n"
    "    threading.Timer(0.1, os.kill, (os.getpid(), signal.SIGSTOP)).start()\n"
    "    return 'answered'",
    "exhaust-fds": "def attack(self):\n    kept = []\n    try:\n        while True:\n"
    "            kept.extend(os.pipe())\n    except OSError as exc:\n"
    "        return errno.errorcode[exc.errno]",
    "block-in-c-call": "async def attack(self):\n    ctypes.CDLL(None).sleep(30)",
    "garbage-frames": "def attack(self):\n    os.write(channel(), b'\\xff' * 4096)\n"
    "    time.sleep(30)",
    "exit-during-call": "def attack(self):\n    os._exit(9)",
    "fork-bomb": "def attack(self):\n    for _ in range(1000):\n        try:\n"
    "            if os.fork() == 0:\n                os._exit(0)\n"
    "        except OSError as exc:\n            return errno.errorcode[exc.errno]",
    "log-flood": "def attack(self):\n    end = time.monotonic() + 0.5\n"
    "    while time.monotonic() < end:\n        self.log.info('x' * 4000)\n    return 'flooded'",
    "log-flood-threads": "def attack(self):\n    def flood():\n"
    "        for _ in range(20000):\n            self.log.warning('y' * 4000)\n"
    "    for _ in range(4):\n        threading.Thread(target=flood, daemon=True).start()\n"
    "    return 'flooding'",
}


def strict_available() -> None:
    missing = [f"{s.name}: {s.detail}" for s in doctor() if not s.available]
    if missing:
        pytest.skip("the strict sandbox is not available here: " + "; ".join(missing))


async def within(how: str, deadline_s: float, call: Awaitable[T]) -> T:
    """``call``'s result, asserting it came within ``deadline_s`` (plus scheduling slack)."""
    started = time.monotonic()
    result = await asyncio.wait_for(call, deadline_s + 10)
    elapsed = time.monotonic() - started
    assert elapsed < deadline_s + SLACK_S, f"{how}: took {elapsed:.2f} s"
    return result


def _indented(body: str) -> str:
    lines = ['    @hook("attack")'] + ["    " + line for line in body.splitlines()]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("how", sorted(BREAKS))
def test_a_worker_broken_from_inside_never_holds_a_host_call(tmp_path: Path, how: str) -> None:
    strict_available()
    timeout_ms, ping_timeout_s, stop_deadline_ms = 1000, 0.5, 500
    evil = write_plugin(
        tmp_path,
        "acme.evil",
        BREAK_HEADER + _indented(BREAKS[how]),
        f"[limits]\ntimeout_ms = {timeout_ms}\n[contributes]\nhooks = {{ attack = 0 }}\n",
    )
    good = write_plugin(tmp_path, "acme.good", ECHO, GREET)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate("acme.evil")  # its start is not what the deadlines measure
        [outcome] = await within(how, timeout_ms / 1000, runtime.call_hook("attack"))
        assert outcome.plugin == "acme.evil"
        await within(how, ping_timeout_s, runtime.ping_all())
        await within(how, ping_timeout_s, runtime.ping_all())  # an unanswered ping killed it
        await within(how, stop_deadline_ms / 1000, runtime.deactivate("acme.evil"))
        await greets(runtime, "neighbour")
        assert runtime.status("acme.good")[0].state == "active"

    supervise(
        tmp_path,
        [evil, good],
        scenario,
        hooks=HOOKS,
        ping_timeout_s=ping_timeout_s,
        stop_deadline_ms=stop_deadline_ms,
    )


# The worker asks for capabilities whose refusals echo a 100 kB name, then blocks its event loop
# after answering: the host's answers fill the socket and its write buffer, so a send to it waits.
STALLED = """
import msgspec


def stall(fd):
    os.set_blocking(fd, True)
    for i in range(64):
        call = {"t": "cap", "id": 10**6 + i, "capability": "x" * 100_000, "method": "y"}
        body = msgspec.msgpack.encode(call)
        os.write(fd, struct.pack("!I", len(body)) + body)
    ctypes.CDLL(None).sleep(30)  # the event loop never runs again: nothing is read


class Main(Plugin):
    @hook("attack")
    async def attack(self):
        asyncio.get_running_loop().call_soon(stall, channel())  # once the answer is out
        return "stalled"
"""


@pytest.mark.parametrize("then", ["ping", "stop"])
def test_a_worker_that_stops_reading_cannot_hold_a_ping_or_a_stop(
    tmp_path: Path, then: str
) -> None:
    strict_available()
    ping_timeout_s, stop_deadline_ms = 0.5, 500
    evil = write_plugin(
        tmp_path,
        "acme.evil",
        BREAK_HEADER + "    pass\n" + STALLED,
        "[contributes]\nhooks = { attack = 0 }\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("attack")
        assert outcome.value == "stalled", outcome.error
        await asyncio.sleep(0.5)  # the refusals pile up unread
        if then == "ping":
            await within(then, ping_timeout_s, runtime.ping_all())
            [status] = runtime.status("acme.evil")
            assert status.state == "backoff"
            assert status.last_error is not None
            assert "unresponsive" in status.last_error
        else:
            await within(then, stop_deadline_ms / 1000 + 0.5, runtime.deactivate("acme.evil"))
            assert runtime.status("acme.evil")[0].state == "inactive"

    audit = supervise(
        tmp_path,
        [evil],
        scenario,
        hooks=HOOKS,
        ping_timeout_s=ping_timeout_s,
        stop_deadline_ms=stop_deadline_ms,
    )
    stop = ["deactivate"] if then == "stop" else ["kill"]
    assert kinds(audit, "acme.evil")[-1:] == stop
