"""The supervisor with real sandboxed workers: lazy activation, hook order and timeouts, events,
commands, settings, health pings, restarts, clean deactivation and removal."""

from __future__ import annotations

import asyncio
import logging
import os
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import (
    InvalidInputError,
    PluginCallError,
    PluginCrashedError,
    PlugportError,
    ResourceLimitExceededError,
    SandboxUnavailableError,
)
from plugport.manifest import LIMIT_BOUNDS
from plugport.runtime import volumes
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.audit import MemoryAuditLog
from plugport.runtime.capabilities.events import Event
from plugport.runtime.channel import MemoryChannel
from plugport.runtime.hooks import HookSpec
from plugport.runtime.launcher import WorkerExit, WorkerHandle
from plugport.runtime.protocol import Failure, WorkerSpec
from plugport.runtime.supervisor import Supervisor, SupervisorConfig, failure_kind
from tests.runtime._supervised import config_for, data_file, kinds, supervise, write_plugin

ECHO = """
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return f"{__name__}:{name}"
"""


def echo(root: Path, name: str, manifest: str = "", body: str = ECHO) -> Any:
    return write_plugin(root, name, body, manifest or "[contributes]\nhooks = { greet = 0 }\n")


GREET = HookSpec("greet", ("name",))


def test_activation_is_lazy_and_follows_activation_events(tmp_path: Path) -> None:
    lazy = echo(tmp_path, "acme.lazy")
    eager = echo(
        tmp_path,
        "acme.eager",
        'activation = ["on_startup"]\n[contributes]\nhooks = { greet = 0 }\n',
    )
    evented = write_plugin(
        tmp_path,
        "acme.evented",
        ECHO,
        'activation = ["on_event:tasks.created"]\n'
        'permissions.events.subscribe = ["tasks.created"]\n[contributes]\nhooks = { greet = 0 }\n',
    )

    async def scenario(runtime: Supervisor) -> None:
        states = {s.name: s.state for s in runtime.status()}
        assert states == {
            "acme.eager": "active",
            "acme.evented": "inactive",
            "acme.lazy": "inactive",
        }
        outcomes = await runtime.call_hook("greet", name="x")
        # acme.evented implements greet but only wakes on its event: it is skipped, not failed.
        assert [(o.plugin, o.value) for o in outcomes] == [
            ("acme.eager", "main:x"),
            ("acme.lazy", "main:x"),
        ]
        assert runtime.status("acme.lazy")[0].state == "active"
        assert runtime.status("acme.evented")[0].state == "inactive"

    audit = supervise(tmp_path, [lazy, eager, evented], scenario, hooks=(GREET,))
    assert kinds(audit, "acme.lazy") == ["activate", "deactivate"]
    assert kinds(audit, "acme.evented") == []


def test_hooks_run_in_priority_order_with_overrides_and_firstresult(tmp_path: Path) -> None:
    answer = """
class Main(Plugin):
    @hook("pick")
    def pick(self, n):
        return None if {none} else "{name}"

    @hook("greet", priority={code_priority})
    def greet(self, name):
        return "{name}"
"""
    plugins = [
        write_plugin(
            tmp_path,
            f"acme.{name}",
            answer.format(name=name, none=none, code_priority=code_priority),
            f"[contributes]\nhooks = {{ greet = {priority}, pick = {priority} }}\n",
        )
        for name, priority, code_priority, none in [
            ("low", -5, "None", False),
            ("high", 50, "None", True),
            ("coded", 0, "0", False),
        ]
    ]

    async def scenario(runtime: Supervisor) -> None:
        for _ in range(2):  # the same order before and after the workers started
            outcomes = await runtime.call_hook("greet", name="x")
            assert [o.value for o in outcomes] == ["high", "coded", "low"]
        runtime.set_priority("greet", "acme.low", 1000)
        first = (await runtime.call_hook("greet", name="x"))[0]
        assert first.value == "low"
        picked = await runtime.call_hook("pick", n=1)
        assert [(o.plugin, o.value) for o in picked] == [
            ("acme.high", None),
            ("acme.coded", "coded"),
        ]
        with pytest.raises(InvalidInputError, match=r"hook 'pick' takes \(n\): missing n"):
            await runtime.call_hook("pick")

    supervise(
        tmp_path,
        plugins,
        scenario,
        hooks=(GREET, HookSpec("pick", ("n",), firstresult=True)),
    )


def test_each_implementation_has_its_own_timeout(tmp_path: Path) -> None:
    slow = echo(
        tmp_path,
        "acme.slow",
        body="""
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        time.sleep(30)
""",
    )
    fast = echo(tmp_path, "acme.fast")

    async def scenario(runtime: Supervisor) -> None:
        outcomes = await runtime.call_hook("greet", name="x")
        assert [o.plugin for o in outcomes] == ["acme.fast", "acme.slow"]
        assert outcomes[0].value == "main:x"
        error = outcomes[1].error
        assert isinstance(error, ResourceLimitExceededError)
        assert error.limit == "timeout_ms"
        assert outcomes[1].elapsed_ms < 5000
        assert runtime.status("acme.slow")[0].state == "backoff"

    audit = supervise(
        tmp_path, [slow, fast], scenario, hooks=(HookSpec("greet", ("name",), timeout_ms=300),)
    )
    assert kinds(audit, "acme.slow")[:2] == ["activate", "kill"]


def test_events_flow_between_host_and_plugins(tmp_path: Path) -> None:
    worker = write_plugin(
        tmp_path,
        "acme.worker",
        """
class Main(Plugin):
    @on_event("tasks.*")
    async def on_task(self, payload, topic):
        await self.api.storage.set("last", [topic, payload])
        await self.api.events.publish("tasks.done", {"id": payload["id"]})

    @hook("last")
    async def last(self):
        return await self.api.storage.get("last")
""",
        'activation = ["on_event:tasks.created"]\npermissions.storage = "1 KiB"\n'
        'permissions.events = { subscribe = ["tasks.*"], publish = ["tasks.done"] }\n'
        "[contributes]\nhooks = { last = 0 }\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        seen: list[Event] = []
        done = asyncio.Event()

        def listener(event: Event) -> None:
            seen.append(event)
            done.set()

        runtime.events.listen("tasks.done", listener)
        assert await runtime.emit("tasks.updated", {"id": 0}) == 1  # not running: not woken
        await runtime.events.drain()
        assert runtime.status("acme.worker")[0].state == "inactive"
        assert await runtime.emit("tasks.created", {"id": 7}) == 1
        await asyncio.wait_for(done.wait(), 10)
        assert (seen[0].topic, seen[0].payload, seen[0].source) == (
            "tasks.done",
            {"id": 7},
            "acme.worker",
        )
        [outcome] = await runtime.call_hook("last")
        assert outcome.value == ["tasks.created", {"id": 7}]

    supervise(tmp_path, [worker], scenario, hooks=(HookSpec("last"),))


def test_commands_ui_and_settings(tmp_path: Path) -> None:
    tool = write_plugin(
        tmp_path,
        "acme.tool",
        """
class Main(Plugin):
    @command("tool.run")
    async def run(self, times=1):
        settings = await self.api.config.get()
        await self.api.ui.register_command("tool.run")
        await self.api.ui.invalidate("tool.stats")
        await self.api.ui.update_widget("tool.stats", {"runs": times})  # deprecated: the same
        await self.api.ui.message(f"ran {times} x {settings['label']}")
        return settings

    def cleanup(self):
        self.api.sync.ui.message("bye")
""",
        'permissions = { config = true, ui = ["messages", "commands", "widgets"] }\n'
        "[contributes]\n"
        'commands = [{ id = "tool.run", title = "Run the tool" }]\n'
        'widgets = [{ id = "tool.stats", title = "Stats" }]\n'
        "[config]\n"
        'type = "object"\nadditionalProperties = false\n'
        'properties.label = { type = "string", default = "default" }\n'
        'properties.limit = { type = "integer", minimum = 1 }\n',
    )

    async def scenario(runtime: Supervisor) -> None:
        with pytest.raises(InvalidInputError) as caught:
            runtime.configure("acme.tool", {"limit": 0, "colour": "red"})
        assert "config.limit: 0 is less than the minimum of 1" in str(caught.value)
        assert "'colour' was unexpected" in str(caught.value)
        assert runtime.configure("acme.tool", {"label": "custom"}) == {"label": "custom"}
        assert await runtime.run_command("acme.tool", "tool.run", [3]) == {"label": "custom"}
        assert [c.title for c in runtime.ui.commands("acme.tool")] == ["Run the tool"]
        # the registry keeps a version per surface, never the data a plugin sends
        assert runtime.ui.versions() == {("acme.tool", "tool.stats"): 2}
        with pytest.raises(InvalidInputError, match=r"contributes no command 'tool\.nope'"):
            await runtime.run_command("acme.tool", "tool.nope")
        await runtime.deactivate("acme.tool")
        assert [m.text for m in runtime.ui.messages("acme.tool")] == ["ran 3 x custom", "bye"]
        assert runtime.ui.commands("acme.tool") == []  # contributions go with the worker
        assert runtime.ui.version("acme.tool", "tool.stats") == 2  # a page's version stays

    audit = supervise(tmp_path, [tool], scenario)
    deactivated = [e for e in audit.query(plugin="acme.tool") if e.kind == "deactivate"]
    assert deactivated[0].reason == "cleanup() finished"


def test_cleanup_has_a_deadline(tmp_path: Path) -> None:
    stuck = write_plugin(
        tmp_path,
        "acme.stuck",
        """
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        return name

    def cleanup(self):
        time.sleep(60)
""",
        "[contributes]\nhooks = { greet = 0 }\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate("acme.stuck")
        started = asyncio.get_running_loop().time()
        await runtime.deactivate("acme.stuck")
        assert asyncio.get_running_loop().time() - started < 5
        assert runtime.status("acme.stuck")[0].pid is None

    audit = supervise(tmp_path, [stuck], scenario, hooks=(GREET,), stop_deadline_ms=200)
    [event] = [e for e in audit.query(plugin="acme.stuck") if e.kind == "deactivate"]
    assert "cleanup() failed (TimeoutError" in event.reason or "did not finish" in event.reason


SLOW = """
class Main(Plugin):
    @hook("greet")
    async def greet(self, name):
        await asyncio.sleep(float(name))
        return f"slept {name}"

    def cleanup(self):
        self.api.sync.ui.message("cleaned up")
"""


def _slow(root: Path) -> Any:
    """A plugin whose greet hook sleeps as many seconds as its name says."""
    manifest = 'permissions = { ui = ["messages"] }\n[contributes]\nhooks = { greet = 0 }\n'
    return write_plugin(root, "acme.slow", SLOW, manifest)


def test_deactivate_lets_running_calls_finish_first(tmp_path: Path) -> None:
    """A call the worker is answering when the plugin is deactivated gets its answer; the
    worker's cleanup() runs after it, and the audit line says what the drain did."""
    slow = _slow(tmp_path)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate("acme.slow")
        call = asyncio.ensure_future(runtime.call_hook("greet", name="0.4"))
        await asyncio.sleep(0.1)  # the call is running in the worker
        await runtime.deactivate("acme.slow")
        assert call.done()  # answered before the worker went
        [outcome] = call.result()
        assert outcome.value == "slept 0.4", outcome.error
        assert runtime.status("acme.slow")[0].state == "inactive"
        assert [m.text for m in runtime.ui.messages("acme.slow")] == ["cleaned up"]

    audit = supervise(tmp_path, [slow], scenario, hooks=(GREET,))
    [event] = [e for e in audit.query(plugin="acme.slow") if e.kind == "deactivate"]
    assert event.reason == "cleanup() finished; 1 call(s) finished first, 0 ended at the deadline"


def test_deactivate_ends_a_call_still_running_at_the_drain_deadline(tmp_path: Path) -> None:
    """Past the drain deadline a running call ends with an error naming the deadline and the
    deactivation (not a crash), and the worker is stopped cleanly all the same."""
    slow = _slow(tmp_path)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate("acme.slow")
        call = asyncio.ensure_future(runtime.call_hook("greet", name="5"))
        await asyncio.sleep(0.1)
        started = asyncio.get_running_loop().time()
        await runtime.deactivate("acme.slow", drain_deadline_s=0.2)
        assert asyncio.get_running_loop().time() - started < 3
        [outcome] = await call
        assert isinstance(outcome.error, ResourceLimitExceededError), outcome.error
        assert outcome.error.limit == "swap_drain_deadline_s"
        assert "being deactivated" in str(outcome.error)
        assert "0.2 s drain deadline" in str(outcome.error)
        assert runtime.status("acme.slow")[0].state == "inactive"
        with pytest.raises(InvalidInputError, match="drain_deadline_s must be >= 0"):
            await runtime.deactivate("acme.slow", drain_deadline_s=-1)

    audit = supervise(tmp_path, [slow], scenario, hooks=(GREET,))
    [event] = [e for e in audit.query(plugin="acme.slow") if e.kind == "deactivate"]
    assert event.reason.endswith("0 call(s) finished first, 1 ended at the deadline"), event.reason
    assert "crash" not in kinds(audit, "acme.slow")


def test_pings_measure_and_kill_the_unresponsive(tmp_path: Path) -> None:
    blocker = write_plugin(
        tmp_path,
        "acme.blocker",
        """
class Main(Plugin):
    @hook("greet")
    async def greet(self, name):
        if name == "block":
            time.sleep(30)  # blocks the worker's event loop: no pongs
        return bytearray(20 * 1024 * 1024)[:1].decode()
""",
        "[contributes]\nhooks = { greet = 0 }\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        await runtime.call_hook("greet", name="x")
        await runtime.ping_all()
        status = runtime.status("acme.blocker")[0]
        assert status.peak_rss_bytes > 20 * 1024 * 1024
        assert status.cpu_seconds > 0
        assert (
            'plugport_plugin_peak_rss_bytes{plugin="acme.blocker"}'
            in runtime.metrics.render().decode()
        )
        blocked = asyncio.create_task(runtime.call_hook("greet", name="block"))
        await asyncio.sleep(0.3)
        await runtime.ping_all()
        [outcome] = await blocked
        assert isinstance(outcome.error, PluginCrashedError)
        assert "unresponsive: no answer to a health ping within 0.3 s" in str(outcome.error)
        assert outcome.error.kind == "unresponsive"
        assert 'cause="unresponsive"' in runtime.metrics.render().decode()
        assert runtime.status("acme.blocker")[0].state == "backoff"
        [again] = await runtime.call_hook("greet", name="x")
        assert again.ok

    audit = supervise(tmp_path, [blocker], scenario, hooks=(GREET,), ping_timeout_s=0.3)
    assert kinds(audit, "acme.blocker") == ["activate", "kill", "restart", "deactivate"]


def test_a_long_backoff_fails_fast_and_always_on_plugins_come_back(tmp_path: Path) -> None:
    crasher = """
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        os._exit(9)
"""
    lazy = echo(tmp_path, "acme.lazy", body=crasher)
    always = echo(
        tmp_path,
        "acme.always",
        'activation = ["on_startup"]\n[contributes]\nhooks = { greet = 0 }\n',
        crasher,
    )

    async def scenario(runtime: Supervisor) -> None:
        outcomes = await runtime.call_hook("greet", name="x")
        assert all("exited with code 9" in str(o.error) for o in outcomes)
        again = await runtime.call_hook("greet", name="x")
        # A 5 s backoff does not fit a 2 s call: refused at once, not after waiting.
        assert all("next attempt in" in str(o.error) for o in again)
        assert all(o.elapsed_ms < 1000 for o in again)

    supervise(
        tmp_path,
        [lazy, always],
        scenario,
        hooks=(HookSpec("greet", ("name",), timeout_ms=2000),),
        restart=RestartPolicy(backoff_initial_s=5, backoff_max_s=5),
    )


def test_always_on_plugin_is_restarted_in_the_background(tmp_path: Path) -> None:
    always = echo(
        tmp_path,
        "acme.always",
        'activation = ["on_startup"]\n[contributes]\nhooks = { greet = 0 }\n',
        "class Main(Plugin):\n    @hook('greet')\n    def greet(self, name):\n"
        "        os._exit(1)\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        first_pid = runtime.status("acme.always")[0].pid
        await runtime.call_hook("greet", name="x")
        for _ in range(100):
            status = runtime.status("acme.always")[0]
            if status.state == "active":
                break
            await asyncio.sleep(0.05)
        assert (status.state, status.restarts) == ("active", 1)
        assert status.pid not in (None, first_pid)

    supervise(tmp_path, [always], scenario, hooks=(GREET,))


def test_remove_keeps_or_purges_data(tmp_path: Path) -> None:
    body = """
class Main(Plugin):
    @hook("greet")
    async def greet(self, name):
        await self.api.storage.set("name", name)
        with open("notes.txt", "w") as notes:
            notes.write(name)
        return name
"""
    keeper = echo(
        tmp_path,
        "acme.keeper",
        "permissions.storage = 100\n[contributes]\nhooks = { greet = 0 }\n",
        body,
    )
    purged = echo(
        tmp_path,
        "acme.purged",
        "permissions.storage = 100\n[contributes]\nhooks = { greet = 0 }\n",
        body,
    )

    async def scenario(runtime: Supervisor) -> None:
        await runtime.call_hook("greet", name="kept")
        await runtime.remove("acme.keeper")
        await runtime.remove("acme.purged", purge_data=True)
        assert runtime.status() == []
        assert runtime.services.storage.get("acme.keeper", "name") == "kept"
        assert runtime.services.storage.get("acme.purged", "name") is None
        with pytest.raises(
            InvalidInputError, match=r"no plugin 'acme.keeper' is added \(added: none\)"
        ):
            await runtime.call_hook("greet", name="x") or runtime.status("acme.keeper")
        assert 'plugin="acme.keeper"' not in runtime.metrics.render().decode()

    supervise(tmp_path, [keeper, purged], scenario, hooks=(GREET,))
    data = tmp_path / "state" / "data"
    assert data_file(data / "acme.keeper", "notes.txt") == b"kept"
    assert not (data / "acme.purged").exists()
    assert not volumes.image_path(data / "acme.purged").exists()


def test_adding_twice_or_without_code_is_refused(tmp_path: Path) -> None:
    plugin = echo(tmp_path, "acme.once")

    async def scenario(runtime: Supervisor) -> None:
        with pytest.raises(InvalidInputError, match=r"'acme\.once' is already added"):
            runtime.add(plugin)
        (plugin.code_dir / "plugport.toml").unlink()
        with pytest.raises(InvalidInputError, match=r"no plugport\.toml"):
            runtime.add(
                type(plugin)(
                    plugin.manifest.model_copy(update={"name": "acme.twice"}), plugin.code_dir
                )
            )
        assert [s.name for s in runtime.status()] == ["acme.once"]

    supervise(tmp_path, [plugin], scenario)


def test_plugin_logs_reach_the_host_rate_limited(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    chatty = echo(
        tmp_path,
        "acme.chatty",
        body="""
class Main(Plugin):
    @hook("greet")
    def greet(self, name):
        for i in range(1000):
            self.log.warning("line %d", i, extra={"task": name})
        return "done"
""",
    )

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("greet", name="t1")
        assert outcome.value == "done"
        await asyncio.sleep(0.3)

    with caplog.at_level(logging.INFO, logger="plugport.runtime"):
        supervise(tmp_path, [chatty], scenario, hooks=(GREET,))
    lines = [r for r in caplog.records if getattr(r, "plugport_plugin", None) == "acme.chatty"]
    assert 150 <= len(lines) <= 260  # a burst of 200, then 50 a second
    assert lines[0].getMessage() == "[acme.chatty] line 0"
    assert lines[0].plugport_fields == {"task": "t1"}  # type: ignore[attr-defined]


def test_a_plugin_that_fails_to_load_is_a_crash(tmp_path: Path) -> None:
    broken = echo(tmp_path, "acme.broken", body="raise ImportError('missing dependency xyz')\n")

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("greet", name="x")
        assert isinstance(outcome.error, PluginCallError)
        assert "missing dependency xyz" in str(outcome.error)

    audit = supervise(tmp_path, [broken], scenario, hooks=(GREET,))
    assert kinds(audit, "acme.broken") == ["crash"]


def test_runtime_facade_is_lazy_and_complete() -> None:
    import subprocess
    import sys

    from plugport import runtime

    for name in runtime.__all__:
        assert getattr(runtime, name).__name__ == name
    assert runtime.__all__ == sorted(runtime.__all__)
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = runtime.Nope
    # What a worker imports must not drag in the host's side.
    probe = (  # only what these imports add: coverage may have loaded sqlite3 already
        "import sys; before = set(sys.modules); "
        "import plugport.runtime.protocol, plugport.runtime.worker; "
        "added = set(sys.modules) - before; "
        "print(sorted(m for m in ('httpx', 'sqlite3', 'prometheus_client') if m in added))"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"


class RefusingLauncher:
    """A worker that reports, as a strict sandbox does on an old kernel, that a layer is
    missing: the launcher interface lets the test play the kernel."""

    async def launch(self, spec: WorkerSpec) -> WorkerHandle:
        host_end, worker_end = MemoryChannel.pair()
        refusal = Failure(
            0,
            "SandboxUnavailableError",
            "no landlock",
            details={"layer": "landlock", "reason": "the kernel has no Landlock (ABI 0)"},
        )
        await worker_end.send(refusal)
        worker_end.close()
        exited = asyncio.get_running_loop().create_future()
        exited.set_result(WorkerExit(3, None))
        return WorkerHandle(0, host_end, exited)


def test_strict_refusal_names_the_layer_and_is_not_a_crash(tmp_path: Path) -> None:
    plugin = echo(tmp_path, "acme.strict")
    audit = MemoryAuditLog()

    async def main() -> None:
        config = config_for(tmp_path)
        async with Supervisor(config, launcher=RefusingLauncher(), audit=audit) as runtime:
            runtime.declare_hook(GREET)
            runtime.add(plugin)
            [outcome] = await runtime.call_hook("greet", name="x")
            assert isinstance(outcome.error, SandboxUnavailableError)
            assert outcome.error.layer == "landlock"
            status = runtime.status("acme.strict")[0]
            assert (status.state, status.recent_failures) == ("inactive", 0)

    asyncio.run(main())
    [event] = audit.query(plugin="acme.strict")
    assert event.kind == "refuse"
    assert "sandbox layer 'landlock' is not available: the kernel has no Landlock" in event.reason


def test_config_refuses_nonsense(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="sandbox must be 'strict' or 'best-effort'"):
        SupervisorConfig(tmp_path, sandbox="off")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as caught:
        SupervisorConfig(tmp_path, ping_timeout_s=0, stop_deadline_ms=-1, max_data_dir_mb=0)
    assert str(caught.value) == (
        "SupervisorConfig: ping_timeout_s must be > 0 (got 0); max_data_dir_mb must be > 0 "
        "(got 0); stop_deadline_ms must be >= 0 (got -1)"
    )


def test_the_smallest_memory_limit_a_manifest_allows_can_run(tmp_path: Path) -> None:
    low = LIMIT_BOUNDS["memory_mb"][1]
    plugin = echo(
        tmp_path,
        "acme.small",
        f"limits.memory_mb = {low}\n[contributes]\nhooks = {{ greet = 0 }}\n",
    )

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("greet", name="x")
        assert outcome.value == "main:x", outcome.error

    supervise(tmp_path, [plugin], scenario, hooks=(GREET,))


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # Messages that name another cause: the attribute decides, never the text.
        (PluginCrashedError("p", "exited with code 1 (SIGSEGV) unresponsive"), ("crash", "exit")),
        (PluginCrashedError("p", "killed", kind="protocol"), ("kill", "protocol")),
        (PluginCrashedError("p", "protocol violation", kind="signal"), ("crash", "signal")),
        (PluginCrashedError("p", "no answer", kind="unresponsive"), ("kill", "unresponsive")),
        (PluginCrashedError("p", "protocol violation", kind="launch"), ("crash", "launch")),
        (PluginCrashedError("p", "unresponsive (SIGKILL)", kind="lost"), ("crash", "exit")),
        (PluginCallError("p", "ImportError", "protocol violation (SIGSEGV)"), ("crash", "load")),
        (ResourceLimitExceededError("p", "memory_mb", "unresponsive"), ("kill", "memory")),
        (ResourceLimitExceededError("p", "activation", "(SIGKILL)"), ("kill", "timeout")),
    ],
)
def test_failure_kind_reads_attributes_not_messages(
    error: PlugportError, expected: tuple[str, str]
) -> None:
    assert failure_kind(error) == expected


@pytest.mark.skipif(os.geteuid() != 0, reason="workers keep the host's uid when it is not root")
def test_code_its_uid_cannot_read_is_refused_with_what_to_change(tmp_path: Path) -> None:
    plugin = echo(tmp_path, "acme.private")
    plugin.code_dir.chmod(0o700)

    async def scenario(runtime: Supervisor) -> None:
        with pytest.raises(SandboxUnavailableError) as refused:
            await runtime.activate("acme.private")
        assert refused.value.layer == "identity"
        assert f"chmod -R o+rX {plugin.code_dir}" in str(refused.value)
        assert runtime.status("acme.private")[0].pid is None

    audit = supervise(tmp_path, [plugin], scenario)
    assert kinds(audit, "acme.private") == ["refuse"]


@pytest.mark.skipif(os.geteuid() != 0, reason="workers keep the host's uid when it is not root")
def test_only_what_the_plugin_ships_must_be_readable(tmp_path: Path) -> None:
    """plugport dev's state and ignored files beside the code are private (0700, 0600) and do
    not stop the plugin; a shipped module its uid cannot read does."""
    plugin = echo(tmp_path, "acme.beside")
    private = plugin.code_dir / ".plugport-dev"
    private.mkdir(mode=0o700)
    (private / "runtime.sqlite").write_bytes(b"dev state")
    (plugin.code_dir / ".plugportignore").write_text("notes.txt\n")
    (plugin.code_dir / "notes.txt").write_text("mine")
    (plugin.code_dir / "notes.txt").chmod(0o600)
    (plugin.code_dir / "pkg").mkdir()
    (plugin.code_dir / "pkg" / "helper.py").write_text("X = 1\n")

    async def scenario(runtime: Supervisor) -> None:
        [outcome] = await runtime.call_hook("greet", name="x")
        assert outcome.ok
        await runtime.deactivate("acme.beside")
        (plugin.code_dir / "pkg" / "helper.py").chmod(0o600)
        with pytest.raises(SandboxUnavailableError, match=r"pkg/helper\.py is mode 600"):
            await _fresh_start(runtime, "acme.beside")

    supervise(tmp_path, [plugin], scenario, hooks=(GREET,))


async def _fresh_start(runtime: Supervisor, name: str) -> None:
    """Activate ``name`` again with its readability checked anew (the check is cached per code
    directory for the life of the runtime)."""
    runtime.isolation._readable_code.clear()
    await runtime.activate(name)
