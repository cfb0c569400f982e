"""Writing small plugins to disk and running them under a real supervisor, for the runtime's
end-to-end tests (the supervisor, the broker through a real worker, the attack suite)."""

from __future__ import annotations

import asyncio
import subprocess
import textwrap
from collections.abc import Awaitable, Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from plugport.manifest import load_manifest
from plugport.runtime import volumes
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.audit import MemoryAuditLog
from plugport.runtime.hooks import HookSpec
from plugport.runtime.supervisor import PluginInstall, Supervisor, SupervisorConfig

HEADER = """\
import asyncio, os, sys, time
from plugport.sdk import Plugin, command, hook, on_event
"""


def write_plugin(root: Path, name: str, body: str, manifest: str = "") -> PluginInstall:
    """A plugin ``name`` whose ``main.py`` is HEADER + ``body`` (a class ``Main``) and whose
    manifest adds ``manifest`` (TOML) after its identity and entry."""
    code = root / "plugins" / name
    code.mkdir(parents=True)
    (code / "main.py").write_text(HEADER + textwrap.dedent(body))
    (code / "plugport.toml").write_text(
        f'name = "{name}"\nversion = "1.0.0"\nentry = "main:Main"\n' + textwrap.dedent(manifest)
    )
    return PluginInstall(load_manifest(code / "plugport.toml"), code)


def config_for(root: Path, **overrides: Any) -> SupervisorConfig:
    """Fast restarts and no background pings unless a test asks for them."""
    config = SupervisorConfig(
        state_dir=root / "state",
        restart=RestartPolicy(backoff_initial_s=0.05, backoff_max_s=0.2),
        ping_interval_s=0,
    )
    return replace(config, **overrides)


Scenario = Callable[[Supervisor], Awaitable[None]]


def supervise(
    root: Path,
    installs: list[PluginInstall],
    scenario: Scenario,
    *,
    hooks: tuple[HookSpec, ...] = (),
    **config: Any,
) -> MemoryAuditLog:
    """Run ``scenario`` against a started supervisor with ``installs`` added; returns the audit
    log so the test can assert what was recorded."""
    audit = MemoryAuditLog()

    async def main() -> None:
        async with Supervisor(config_for(root, **config), audit=audit) as runtime:
            for spec in hooks:
                runtime.declare_hook(spec)
            for install in installs:
                runtime.add(install)
            await runtime.start()
            await scenario(runtime)

    asyncio.run(main())
    return audit


def kinds(audit: MemoryAuditLog, plugin: str) -> list[str]:
    """Audit kinds recorded for ``plugin``, oldest first."""
    return [event.kind for event in reversed(audit.query(plugin=plugin, limit=1000))]


def data_file(data_dir: Path, name: str) -> bytes | None:
    """A file of a plugin's data dir as the plugin left it, read by the host: from its volume
    image when it has one (a root host), else from the directory. None when it is not there."""
    image = volumes.image_path(data_dir)
    if not image.exists():
        path = data_dir / name
        return path.read_bytes() if path.exists() else None
    found = subprocess.run(
        ["debugfs", "-R", f"cat /{name}", str(image)], capture_output=True, check=False
    )
    if b"File not found" in found.stderr:
        return None
    return found.stdout
