"""Hot swap with real sandboxed workers: a new version (or new settings) takes over a running
plugin under load without a failed call, slow calls finish on the old worker within the drain
deadline, and a new worker that does not come up leaves everything as it was."""

from __future__ import annotations

import asyncio
import dataclasses
import textwrap
from pathlib import Path
from typing import Any

import pytest

from plugport.errors import (
    ConflictError,
    InvalidInputError,
    PlugportError,
    ResourceLimitExceededError,
    SwapRefusedError,
)
from plugport.manifest import load_manifest
from plugport.runtime._problem_rules import Thresholds
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import PluginInstall, PluginStatus, Supervisor
from tests.runtime._supervised import HEADER, kinds, supervise

NAME = "demo.hot"
WHICH = HookSpec("which", ("delay",))

BODY = """
class Main(Plugin):
    @hook("which")
    async def which(self, delay):
        if delay:
            await asyncio.sleep(delay)
        return [VERSION, os.getpid()]
"""

COMMANDS = """
class Main(Plugin):
    async def initialize(self):
        await self.api.ui.register_command(COMMAND)
        if COMMAND == "x.two":
            raise RuntimeError("version 2 cannot start")

    @hook("which")
    async def which(self, delay):
        return [VERSION, os.getpid()]
"""

START_FAILURES = {
    "initialize raises": (
        COMMANDS,
        "plugin 'demo.hot' raised RuntimeError: version 2 cannot start",
    ),
    "exits at start": (
        "class Main(Plugin):\n    def initialize(self):\n        os._exit(3)\n",
        "exit",
    ),
    "import error": ("import not_a_module_of_anyone\n" + BODY, "not_a_module_of_anyone"),
}

SETTINGS = """
class Main(Plugin):
    async def initialize(self):
        self.greeting = await self.api.config.get("greeting")
        if self.greeting == "boom":
            raise ValueError("config.greeting: 'boom' is not a greeting")

    @hook("which")
    async def which(self, delay):
        return [self.greeting, os.getpid()]
"""

SETTINGS_MANIFEST = """\
permissions = { config = true }
[config]
type = "object"
additionalProperties = false
properties.greeting = { type = "string", default = "hello" }
"""


def version(
    root: Path, number: str, body: str = BODY, manifest: str = "", **constants: str
) -> PluginInstall:
    """Version ``number`` of demo.hot in a code directory of its own, as the host installs them;
    ``VERSION`` (and each of ``constants``) is a module constant of its ``main.py``."""
    code = root / "plugins" / f"{NAME}-{number}"
    code.mkdir(parents=True)
    values = {"VERSION": number, **constants}
    defined = "".join(f"{k} = {v!r}\n" for k, v in values.items())
    (code / "main.py").write_text(HEADER + defined + textwrap.dedent(body))
    (code / "plugport.toml").write_text(
        f'name = "{NAME}"\nversion = "{number}"\nentry = "main:Main"\n'
        + (manifest or 'permissions = { ui = ["commands"] }\n')
        + "[contributes]\nhooks = { which = 0 }\n"
        + 'commands = [{ id = "x.one", title = "One" }, { id = "x.two", title = "Two" }]\n'
    )
    return PluginInstall(load_manifest(code / "plugport.toml"), code)


def gone(pid: int | None) -> bool:
    return pid is not None and not Path(f"/proc/{pid}").exists()


def snapshot(runtime: Supervisor) -> tuple[PluginStatus, Any, list[Any]]:
    [status] = runtime.status(NAME)
    hooks = {hook: dict(impls) for hook, impls in runtime.hooks.impls.items()}
    return status, hooks, runtime.ui.commands(NAME)


def test_a_swap_under_load_fails_no_call(tmp_path: Path) -> None:
    installs = [version(tmp_path, "1.0.0"), version(tmp_path, "2.0.0")]

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        [before] = runtime.status(NAME)
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        failures: list[BaseException] = []

        async def load(task: int) -> list[tuple[float, float, str]]:
            answers = []
            while not stop.is_set():
                began = loop.time()
                try:
                    if task % 2:
                        answer = await runtime.call_hook_on(NAME, "which", {"delay": 0})
                    else:
                        [outcome] = await runtime.call_hook("which", delay=0)
                        if outcome.error is not None:
                            raise outcome.error
                        answer = outcome.value
                except PlugportError as exc:
                    failures.append(exc)
                else:
                    answers.append((began, loop.time(), answer[0]))
                await asyncio.sleep(0.002)
            return answers

        tasks = [asyncio.create_task(load(i)) for i in range(6)]
        await asyncio.sleep(0.2)
        asked = loop.time()
        report = await runtime.swap(installs[1])
        returned = loop.time()
        await asyncio.sleep(0.2)
        stop.set()
        per_task = await asyncio.gather(*tasks)

        assert failures == []
        for answers in per_task:
            versions = [v for _, _, v in answers]
            assert versions == sorted(versions)  # 1.0.0 until its switch, then 2.0.0 only
            assert {v for _, ended, v in answers if ended < asked} == {"1.0.0"}
            assert {v for began, _, v in answers if began > returned} == {"2.0.0"}
        [after] = runtime.status(NAME)
        assert (after.version, after.state) == ("2.0.0", "active")
        assert report.hot
        assert (report.old_pid, report.new_pid) == (before.pid, after.pid)
        assert gone(before.pid)
        metrics = runtime.metrics.render().decode()
        assert 'plugport_plugin_swaps_total{outcome="hot",plugin="demo.hot"} 1.0' in metrics
        assert 'plugport_plugin_state{plugin="demo.hot",state="active"} 1.0' in metrics

    audit = supervise(tmp_path, installs[:1], scenario, hooks=(WHICH,))
    swaps = [e.reason for e in audit.query(plugin=NAME) if e.kind == "swap"]
    assert len(swaps) == 1
    assert swaps[0].startswith("1.0.0 -> 2.0.0; pid ")
    assert "cleanup() finished" in swaps[0]


def test_calls_in_flight_finish_on_the_old_worker_within_the_drain_deadline(
    tmp_path: Path,
) -> None:
    installs = [version(tmp_path, n) for n in ("1.0.0", "2.0.0", "3.0.0")]

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        [v1] = runtime.status(NAME)
        slow = asyncio.create_task(runtime.call_hook_on(NAME, "which", {"delay": 0.4}))
        await asyncio.sleep(0.05)  # it runs on 1.0.0
        report = await runtime.swap(installs[1], drain_deadline_s=3)
        assert (await slow)[0] == "1.0.0"
        assert (report.drained, report.ended) == (1, 0)
        assert report.drain_ms > 100  # the switch came first: the drain waited for the call
        assert gone(v1.pid)

        [v2] = runtime.status(NAME)
        stuck = asyncio.create_task(runtime.call_hook_on(NAME, "which", {"delay": 3}))
        await asyncio.sleep(0.05)
        report = await runtime.swap(installs[2], drain_deadline_s=0.2)
        with pytest.raises(ResourceLimitExceededError) as ended:
            await stuck
        assert ended.value.limit == "swap_drain_deadline_s"
        assert "2.0.0 was replaced by 3.0.0" in str(ended.value)
        assert "the 0.2 s drain deadline passed" in str(ended.value)
        assert (report.drained, report.ended) == (0, 1)
        assert report.drain_ms < 1500
        assert gone(v2.pid)
        assert (await runtime.call_hook_on(NAME, "which", {"delay": 0}))[0] == "3.0.0"

    audit = supervise(tmp_path, installs[:1], scenario, hooks=(WHICH,))
    swaps = [e.reason for e in reversed(audit.query(plugin=NAME)) if e.kind == "swap"]
    assert "1 call(s) drained" in swaps[0]
    assert "0 call(s) drained, 1 ended at the 0.2 s deadline" in swaps[1]


@pytest.mark.parametrize("failure", sorted(START_FAILURES))
def test_a_new_version_that_cannot_start_leaves_the_old_one_serving(
    tmp_path: Path, failure: str
) -> None:
    body, cause = START_FAILURES[failure]
    v1 = version(tmp_path, "1.0.0", COMMANDS, COMMAND="x.one")
    v2 = version(tmp_path, "2.0.0", body, COMMAND="x.two")

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        before = snapshot(runtime)
        answer = await runtime.call_hook_on(NAME, "which", {"delay": 0})
        with pytest.raises(SwapRefusedError) as refused:
            await runtime.swap(v2)
        message = str(refused.value)
        assert message.startswith("swap of demo.hot to 2.0.0 refused: the new worker did not start")
        assert cause in message
        assert message.endswith("; 1.0.0 keeps running")
        assert (refused.value.stage, refused.value.version) == ("start", "2.0.0")
        assert snapshot(runtime) == before  # status (pid, state, version), hooks, commands
        assert [c.id for c in before[2]] == ["x.one"]
        assert await runtime.call_hook_on(NAME, "which", {"delay": 0}) == answer
        metrics = runtime.metrics.render().decode()
        assert 'plugport_plugin_swaps_total{outcome="rolled_back",plugin="demo.hot"} 1.0' in metrics
        assert 'plugport_plugin_state{plugin="demo.hot",state="active"} 1.0' in metrics
        await asyncio.sleep(0.3)  # past the failed start's backoff: nothing restarts it
        assert snapshot(runtime) == before

    audit = supervise(tmp_path, [v1], scenario, hooks=(WHICH,))
    assert "swap-rolled-back" in kinds(audit, NAME)


def test_a_new_worker_that_fails_its_health_check_is_stopped(tmp_path: Path) -> None:
    frozen = """
class Main(Plugin):
    async def initialize(self):
        asyncio.get_running_loop().call_soon(time.sleep, 5)  # blocks the loop after Ready

    @hook("which")
    async def which(self, delay):
        return [VERSION, os.getpid()]
"""
    v1, v2 = version(tmp_path, "1.0.0"), version(tmp_path, "2.0.0", frozen)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        before = snapshot(runtime)
        with pytest.raises(SwapRefusedError) as refused:
            await runtime.swap(v2)
        assert refused.value.stage == "health"
        assert "the new worker failed its health check: it did not answer a ping in time" in str(
            refused.value
        )
        assert snapshot(runtime) == before
        assert (await runtime.call_hook_on(NAME, "which", {"delay": 0}))[0] == "1.0.0"

    supervise(tmp_path, [v1], scenario, hooks=(WHICH,), ping_timeout_s=0.3)


def test_a_second_swap_while_one_runs_is_refused_not_queued(tmp_path: Path) -> None:
    installs = [version(tmp_path, n) for n in ("1.0.0", "2.0.0", "3.0.0")]

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        first, second = await asyncio.gather(
            runtime.swap(installs[1]), runtime.swap(installs[2]), return_exceptions=True
        )
        assert not isinstance(first, BaseException)
        assert first.to_version == "2.0.0"
        assert isinstance(second, ConflictError)
        assert str(second) == (
            "plugin 'demo.hot' is being swapped to 2.0.0 already; this swap (to 3.0.0) is "
            "refused, not queued: ask again when that one has finished"
        )
        assert runtime.status(NAME)[0].version == "2.0.0"
        third = await runtime.swap(installs[2])  # once the first has finished, it may
        assert (third.from_version, third.to_version) == ("2.0.0", "3.0.0")

    supervise(tmp_path, installs[:1], scenario, hooks=(WHICH,))


def test_a_plugin_not_running_is_replaced_and_starts_lazily(tmp_path: Path) -> None:
    v1, v2 = version(tmp_path, "1.0.0"), version(tmp_path, "2.0.0")

    async def scenario(runtime: Supervisor) -> None:
        report = await runtime.swap(v2)
        assert (report.hot, report.old_pid, report.new_pid) == (False, None, None)
        [status] = runtime.status(NAME)
        assert (status.version, status.state, status.pid) == ("2.0.0", "inactive", None)
        assert (await runtime.call_hook_on(NAME, "which", {"delay": 0}))[0] == "2.0.0"

    audit = supervise(tmp_path, [v1], scenario, hooks=(WHICH,))
    assert [e.reason for e in audit.query(plugin=NAME) if e.kind == "swap"] == [
        "1.0.0 -> 2.0.0; no worker was running: the new one starts on its next activation"
    ]


def test_what_cannot_be_swapped_is_refused_and_changes_nothing(tmp_path: Path) -> None:
    v1 = version(tmp_path, "1.0.0")
    other = version(tmp_path, "2.0.0")
    (other.code_dir / "plugport.toml").unlink()

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        before = snapshot(runtime)
        with pytest.raises(InvalidInputError, match=r"no plugport\.toml"):
            await runtime.swap(other)
        with pytest.raises(InvalidInputError, match=r"drain_deadline_s must be >= 0 \(got -1\)"):
            await runtime.swap(v1, drain_deadline_s=-1)
        assert snapshot(runtime) == before
        runtime_without = v1.manifest.model_copy(update={"name": "demo.unknown"})
        with pytest.raises(InvalidInputError, match=r"no plugin 'demo\.unknown' is added"):
            await runtime.swap(PluginInstall(runtime_without, v1.code_dir))

    supervise(tmp_path, [v1], scenario, hooks=(WHICH,))


def test_reconfigure_restarts_the_worker_onto_new_settings_or_changes_nothing(
    tmp_path: Path,
) -> None:
    v1 = version(tmp_path, "1.0.0", SETTINGS, SETTINGS_MANIFEST)

    async def ask(runtime: Supervisor) -> Any:
        return await runtime.call_hook_on(NAME, "which", {"delay": 0})

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        greeting, pid = await ask(runtime)
        assert greeting == "hello"
        before = snapshot(runtime)

        with pytest.raises(InvalidInputError) as invalid:
            await runtime.reconfigure(NAME, {"greeting": 5})
        assert "config.greeting: 5 is not of type 'string'" in str(invalid.value)
        assert runtime.services.settings.stored(NAME) == {}
        assert snapshot(runtime) == before

        with pytest.raises(SwapRefusedError) as refused:  # valid, but the plugin refuses it
            await runtime.reconfigure(NAME, {"greeting": "boom"})
        assert str(refused.value) == (
            "swap of demo.hot to 1.0.0 refused: the new worker did not start: plugin 'demo.hot' "
            "raised ValueError: config.greeting: 'boom' is not a greeting; the previous "
            "settings are restored and 1.0.0 keeps running"
        )
        assert runtime.services.settings.stored(NAME) == {}
        assert snapshot(runtime) == before
        assert await ask(runtime) == ["hello", pid]

        report = await runtime.reconfigure(NAME, {"greeting": "hi"})
        assert (report.hot, report.new_settings) == (True, True)
        assert runtime.services.settings.stored(NAME) == {"greeting": "hi"}
        assert (await ask(runtime))[0] == "hi"
        assert gone(before[0].pid)

    audit = supervise(tmp_path, [v1], scenario, hooks=(WHICH,))
    swaps = [e.reason for e in audit.query(plugin=NAME) if e.kind == "swap"]
    assert swaps[0].startswith("1.0.0 onto new settings; pid ")


def test_an_answer_that_comes_after_the_drain_deadline_is_dropped(tmp_path: Path) -> None:
    lingering = (
        BODY
        + """
    async def cleanup(self):
        await asyncio.sleep(0.4)  # the ended call's answer comes meanwhile
"""
    )
    v1, v2 = version(tmp_path, "1.0.0", lingering), version(tmp_path, "2.0.0")

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        late = asyncio.create_task(runtime.call_hook_on(NAME, "which", {"delay": 0.2}))
        await asyncio.sleep(0.05)
        report = await runtime.swap(v2, drain_deadline_s=0.05)
        with pytest.raises(ResourceLimitExceededError):
            await late
        assert report.ended == 1
        assert report.stopped == "cleanup() finished"  # not killed for a protocol violation

    audit = supervise(tmp_path, [v1], scenario, hooks=(WHICH,))
    assert "kill" not in kinds(audit, NAME)


def test_a_plugin_removed_while_its_new_worker_starts_is_not_brought_back(
    tmp_path: Path,
) -> None:
    slow_start = BODY.replace(
        "class Main(Plugin):\n",
        "class Main(Plugin):\n    async def initialize(self):\n        await asyncio.sleep(0.3)\n",
    )
    v1, v2 = version(tmp_path, "1.0.0"), version(tmp_path, "2.0.0", slow_start)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        swap = asyncio.create_task(runtime.swap(v2))
        await asyncio.sleep(0.1)  # the new worker is initializing
        await runtime.remove(NAME)
        with pytest.raises(SwapRefusedError) as refused:
            await swap
        assert refused.value.stage == "removed"
        assert str(refused.value).endswith(
            "the plugin was removed while the new worker started; 1.0.0 stays in place"
        )
        assert runtime.added() == []
        assert runtime.hooks.impls.get("which", {}) == {}

    supervise(tmp_path, [v1], scenario, hooks=(WHICH,))


def test_a_swapped_in_version_is_compared_with_the_one_before(tmp_path: Path) -> None:
    """The plugin stays tracked through a swap: the problem detector's baseline of 1.0.0's call
    times is what 2.0.0, which sleeps in every call, is found slower than."""
    slower = BODY.replace(
        "        if delay:\n", "        await asyncio.sleep(0.02)\n        if delay:\n"
    )
    v1, v2 = version(tmp_path, "1.0.0"), version(tmp_path, "2.0.0", slower)
    few = dataclasses.replace(Thresholds(), latency_min_samples=10)

    async def scenario(runtime: Supervisor) -> None:
        await runtime.activate(NAME)
        for _ in range(12):
            await runtime.call_hook("which", delay=0)
        await runtime.swap(v2)
        for _ in range(12):
            await runtime.call_hook("which", delay=0)
        [finding] = runtime.problems(NAME)
        assert finding.kind == "latency-regression"
        assert (finding.numbers["previous_version"], finding.numbers["version"]) == (
            "1.0.0",
            "2.0.0",
        )

    supervise(tmp_path, [v1], scenario, hooks=(WHICH,), problems=few)
