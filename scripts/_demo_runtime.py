"""The runtime half of ``make demo``: the signed archive installed and run in the sandbox, next
to a hostile plugin whose every attempt is refused, audited, and never takes the host down."""

from __future__ import annotations

import asyncio
import textwrap
from pathlib import Path

from plugport import safe_unpack
from plugport.manifest import load_manifest
from plugport.runtime import HookSpec, PluginInstall, Supervisor, SupervisorConfig
from plugport.runtime.capabilities.events import Event
from plugport.runtime.sandbox import doctor
from plugport.sdk import Task

WORD_COUNT_TASK = "WORD_COUNT_SUMMARIZE"  # the task type the task-processor template names

HOSTILE = """
import os, subprocess
from plugport.sdk import Plugin, hook


class Hostile(Plugin):
    @hook("probe")
    async def probe(self):
        tried = {}
        for label, attempt in [
            ("read /etc/shadow", lambda: open("/etc/shadow").read()),
            ("run a program", lambda: subprocess.run(["id"], check=True)),
        ]:
            try:
                attempt()
                tried[label] = "ALLOWED"
            except OSError as exc:
                tried[label] = f"refused ({type(exc).__name__}: {exc.strerror})"
        for label, url in [
            ("fetch cloud metadata", "http://169.254.169.254/latest/meta-data/"),
            ("fetch localhost", "http://localhost:5432/"),
        ]:
            try:
                await self.api.net.fetch(url)
                tried[label] = "ALLOWED"
            except Exception as exc:
                tried[label] = f"refused ({type(exc).__name__})"
        return tried

    @hook("process_task", priority=99)
    def process_task(self, task):
        os._exit(1)  # dies first in line on every task
"""


def install_hostile(root: Path) -> PluginInstall:
    code = root / "hostile"
    code.mkdir()
    (code / "hostile.py").write_text(HOSTILE)
    (code / "plugport.toml").write_text(
        textwrap.dedent(
            """\
            name = "evil.hostile"
            version = "6.6.6"
            entry = "hostile:Hostile"
            permissions.network = ["api.example.com"]
            [contributes]
            hooks = { process_task = 99, probe = 0 }
            """
        )
    )
    return PluginInstall(load_manifest(code / "plugport.toml"), code)


async def run_plugins(archive: Path, work: Path) -> None:
    installed = work / "installed" / "acme.word-count"
    installed.parent.mkdir()
    safe_unpack(archive, installed)
    layers = doctor()
    strict = all(layer.available for layer in layers)
    available = sum(layer.available for layer in layers)
    print(
        f"  sandbox policy {'strict' if strict else 'best-effort'}: {available}/{len(layers)} "
        "layers available here (`plugport doctor` has the details)"
    )
    config = SupervisorConfig(
        state_dir=work / "host-state",
        sandbox="strict" if strict else "best-effort",
        ping_interval_s=0,
    )
    async with Supervisor(config) as runtime:
        runtime.declare_hook(HookSpec("probe"))
        runtime.add(PluginInstall(load_manifest(installed / "plugport.toml"), installed))
        runtime.add(install_hostile(work))
        processed: list[Event] = []
        runtime.events.listen("tasks.processed", processed.append)

        [probe] = await runtime.call_hook("probe")
        for attempt, answer in probe.value.items():
            print(f"  evil.hostile tried to {attempt}: {answer}")
        job = Task("t-1", WORD_COUNT_TASK, {"id": "t-1", "text": "the cat and the hat and the bat"})
        answer = await runtime.run_task(
            "acme.word-count", WORD_COUNT_TASK, job.to_wire(), timeout_ms=2000
        )
        print(f"  one attempt at a {WORD_COUNT_TASK} task, in the sandbox -> {answer}")
        await runtime.events.drain()
        print(f"  the host heard {processed[0].topic}: {processed[0].payload}")
        for status in runtime.status():
            print(f"  status {status.name}: {status.state}, {status.restarts} restarts")
        print("  audit log, oldest first:")
        for event in reversed(runtime.audit.query(limit=20)):
            what = f"{event.kind} {event.capability}".strip()
            print(f"    {event.plugin:<16} {what:<15} {event.reason[:90]}")


def main(archive: Path, work: Path) -> None:
    asyncio.run(run_plugins(archive, work))
