"""Problem detection end to end, with real sandboxed workers: a plugin that fails calls, times
out (and so is restarted), fills its storage and leaks memory, and one that slows every fan-out
of a hook, are found: by ``Supervisor.problems``, in the metrics and in the audit log; and
removing the plugin clears its findings."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from plugport.errors import ResourceLimitExceededError
from plugport.manifest import load_manifest
from plugport.runtime._problem_rules import Thresholds
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import Supervisor
from tests.runtime._supervised import supervise, write_plugin
from tests.runtime.test_metrics import value

TROUBLED = """
class Main(Plugin):
    kept = []

    @hook("work")
    def work(self, n):
        if n % 2:
            raise ValueError(f"odd input {n}")
        return n

    @command("acme.troubled.hang")
    def hang(self):
        time.sleep(30)

    @command("acme.troubled.fill")
    async def fill(self, size):
        await self.api.storage.set("blob", "x" * size)

    @command("acme.troubled.leak")
    def leak(self, mib):
        chunk = bytearray(mib * 1024 * 1024)
        for i in range(0, len(chunk), 4096):
            chunk[i] = 1  # touched, so resident
        self.kept.append(chunk)
"""
TROUBLED_MANIFEST = """
[limits]
timeout_ms = 300
memory_mb = 512
[permissions]
storage = 1000
[contributes]
hooks = { work = 0 }
[[contributes.commands]]
id = "acme.troubled.hang"
title = "Hang"
[[contributes.commands]]
id = "acme.troubled.fill"
title = "Fill"
[[contributes.commands]]
id = "acme.troubled.leak"
title = "Leak"
"""
RENDER = """
class Main(Plugin):
    @hook("render")
    def render(self):
        time.sleep({delay})
        return {delay}
"""
RENDER_MANIFEST = "[contributes]\nhooks = { render = 0 }\n"


def test_a_troubled_plugin_is_found_exported_and_audited_then_cleared(tmp_path: Path) -> None:
    troubled = write_plugin(tmp_path, "acme.troubled", TROUBLED, TROUBLED_MANIFEST)
    name = "acme.troubled"

    async def scenario(runtime: Supervisor) -> None:
        for n in range(40):  # half of them fail: far above a plugin without a history
            await runtime.call_hook("work", n=n)
        for _ in range(3):  # each one kills the worker; the next call starts it again
            with pytest.raises(ResourceLimitExceededError):
                await runtime.run_command(name, "acme.troubled.hang")
            await runtime.call_hook("work", n=0)
        await runtime.run_command(name, "acme.troubled.fill", [950])
        for _ in range(12):
            await runtime.run_command(name, "acme.troubled.leak", [2])
            await runtime.ping_all()

        found = {f.kind: f for f in runtime.problems(name)}
        assert sorted(found) == [
            "error-rate",
            "memory-growth",
            "restarts",
            "storage-quota",
            "timeouts",
        ]
        assert found["error-rate"].numbers["failures"] == 20 + 3  # the timeouts failed too
        assert found["timeouts"].numbers["timeouts"] == 3
        assert found["restarts"].numbers["restarts"] == 3
        storage = found["storage-quota"]
        assert storage.numbers["storage_quota_bytes"] == 1000
        assert 950 <= int(storage.numbers["storage_used_bytes"]) <= 1000
        assert found["memory-growth"].numbers["rising_share"] >= 0.7
        assert all(f.plugin == name and f.since > 0 for f in found.values())
        assert runtime.problems() == runtime.problems(name)

        for kind in found:
            assert value(runtime.metrics, "plugport_plugin_problem", plugin=name, kind=kind) == 1
        quiet = value(runtime.metrics, "plugport_plugin_problem", plugin=name, kind="slow-hook")
        assert quiet == 0

        await runtime.remove(name)
        assert value(runtime.metrics, "plugport_plugin_problem", plugin=name, kind="timeouts") is (
            None
        )

    audit = supervise(tmp_path, [troubled], scenario, hooks=(HookSpec("work", ("n",)),))
    raised = audit.query(plugin=name, kind="problem")
    assert sorted(e.capability for e in raised) == [
        "error-rate",
        "memory-growth",
        "restarts",
        "storage-quota",
        "timeouts",
    ]
    cleared = audit.query(plugin=name, kind="problem-cleared")
    assert sorted(e.capability for e in cleared) == sorted(e.capability for e in raised)
    assert all("removed from the runtime" in e.reason for e in cleared)


def test_a_plugin_slowing_every_fan_out_of_a_hook_is_found(tmp_path: Path) -> None:
    slow = write_plugin(tmp_path, "acme.slow", RENDER.format(delay=0.02), RENDER_MANIFEST)
    quick = [
        write_plugin(tmp_path, f"acme.quick{i}", RENDER.format(delay=0), RENDER_MANIFEST)
        for i in range(2)
    ]

    async def scenario(runtime: Supervisor) -> None:
        for _ in range(19):
            await runtime.call_hook("render")
        assert runtime.problems() == []  # 19 fan-outs: not enough to say
        await runtime.call_hook("render")
        [finding] = runtime.problems("acme.slow")
        assert (finding.plugin, finding.kind) == ("acme.slow", "slow-hook")
        assert finding.numbers["hook"] == "render"
        assert float(finding.numbers["p95_s"]) >= 0.02

    audit = supervise(tmp_path, [slow, *quick], scenario, hooks=(HookSpec("render"),))
    [raised] = audit.query(kind="problem")
    assert (raised.plugin, raised.capability) == ("acme.slow", "slow-hook")


def test_slower_calls_after_an_update_are_compared_with_the_version_before(
    tmp_path: Path,
) -> None:
    """An update is a remove and an add: the baseline of 1.0.0's call times outlives the
    remove, and 1.1.0, which sleeps in every call, is found slower."""
    body = """
class Main(Plugin):
    @hook("render")
    def render(self):
        time.sleep({delay})
"""
    old = write_plugin(tmp_path / "v1", "acme.upd", body.format(delay=0), RENDER_MANIFEST)
    code = write_plugin(tmp_path / "v2", "acme.upd", body.format(delay=0.02), RENDER_MANIFEST)
    manifest = code.code_dir / "plugport.toml"
    manifest.write_text(manifest.read_text().replace('version = "1.0.0"', 'version = "1.1.0"'))
    new = replace(code, manifest=load_manifest(manifest))
    few = replace(Thresholds(), latency_min_samples=10)

    async def scenario(runtime: Supervisor) -> None:
        # started first: a call that starts the worker takes its start too, an outlier that
        # 10 calls cannot outvote (the default, 50, can)
        await runtime.activate("acme.upd")
        for _ in range(12):
            await runtime.call_hook("render")
        assert runtime.problems("acme.upd") == []
        await runtime.remove("acme.upd")
        runtime.add(new)
        await runtime.activate("acme.upd")
        for _ in range(12):
            await runtime.call_hook("render")
        [finding] = runtime.problems("acme.upd")
        assert finding.kind == "latency-regression"
        assert finding.numbers["previous_version"] == "1.0.0"
        assert finding.numbers["version"] == "1.1.0"
        assert float(finding.numbers["p95_s"]) >= 0.02

    supervise(tmp_path, [old], scenario, hooks=(HookSpec("render"),), problems=few)
