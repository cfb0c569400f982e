"""A test's world: one real :class:`Supervisor` with a temporary home, the session's zygote,
the fake network, and the plugins the test loaded into it (events flow between them).

Every way loading can fail becomes one :class:`InvalidInputError` whose message names the file
or field and what to do; the pytest plugin shows it as the test's failure text.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from plugport.deps.libraries import development_libraries
from plugport.errors import (
    DependencyError,
    InvalidInputError,
    PluginCallError,
    PluginCrashedError,
    PluginValidationError,
    PlugportError,
    SandboxUnavailableError,
)
from plugport.manifest import load_manifest
from plugport.runtime._lifecycle import RestartPolicy
from plugport.runtime.activity import Activity
from plugport.runtime.broker import Grants
from plugport.runtime.capabilities.fakes import FakeNetwork
from plugport.runtime.supervisor import PluginInstall, Supervisor, SupervisorConfig
from plugport.testing._handle import PluginHandle
from plugport.testing._runner import Runner

__all__ = ["World", "describe", "find_plugin_dir"]

MANIFEST = "plugport.toml"
Sandbox = Literal["strict", "best-effort"]


def find_plugin_dir(start: Path) -> Path:
    """The nearest directory at or above ``start`` holding a ``plugport.toml``."""
    for folder in (start, *start.parents):
        if (folder / MANIFEST).is_file():
            return folder
    raise InvalidInputError(
        f"no {MANIFEST} in {start} or any directory above it; put the test inside the "
        "plugin's directory, or load the plugin with plugin_factory(PATH)"
    )


def _check_dir(path: Path) -> Path:
    if not path.exists():
        raise InvalidInputError(
            f"plugin directory {path} does not exist; pass the directory that holds the "
            f"plugin's {MANIFEST}"
        )
    if not (path / MANIFEST).is_file():
        raise InvalidInputError(
            f"{path} has no {MANIFEST}; pass the plugin's own directory "
            "(create one with `plugport init`)"
        )
    return path.resolve()


def _manifest_problems(path: Path, exc: PluginValidationError) -> str:
    lines = [f"{path / MANIFEST} is not a valid manifest:"]
    lines += [f"  - {problem}" for problem in exc.problems] or [f"  - {exc}"]
    lines.append("Fix the fields above (`plugport validate` shows the same list).")
    return "\n".join(lines)


class World:
    """The runtime a test's plugins run in. All of its async work runs on ``runner``."""

    def __init__(self, runner: Runner, home: Path, sandbox: Sandbox) -> None:
        self.runner = runner
        self.home = home
        self.sandbox = sandbox
        self.network = FakeNetwork()
        self.handles: dict[str, PluginHandle] = {}
        self.activity: list[Activity] = []
        config = SupervisorConfig(
            state_dir=home,
            sandbox=sandbox,
            restart=RestartPolicy(backoff_initial_s=0.05, backoff_max_s=0.2),
            ping_interval_s=0,
            # Plain, measured data directories: a loop-mounted volume per test would cost
            # more than the test itself.
            data_volumes=False,
            net=self.network.options(),
        )
        self.runtime: Supervisor = runner.call(Supervisor, config, launcher=runner.launcher)
        self.runtime.activity.subscribe(self.activity.append)
        runner.run(self.runtime.start())

    def load(
        self,
        path: Path,
        *,
        config: Mapping[str, Any] | None = None,
        routes: list[dict[str, Any]] | None = None,
    ) -> PluginHandle:
        """Add the plugin at ``path``, give it ``config`` and ``routes``, and start it, so an
        import error or a refused sandbox shows here rather than at the first call."""
        path = _check_dir(path)
        try:
            manifest = load_manifest(path / MANIFEST)
        except PluginValidationError as exc:
            raise InvalidInputError(_manifest_problems(path, exc)) from None
        if manifest.name in self.handles:
            raise InvalidInputError(f"plugin {manifest.name!r} is already loaded in this test")
        try:
            libraries = development_libraries(path, manifest)
        except DependencyError as exc:
            raise InvalidInputError(f"{manifest.name}: {exc}") from None
        self.runner.call(self.runtime.add, PluginInstall(manifest, path, libraries=libraries))
        handle = PluginHandle(self, manifest, path, Grants.from_manifest(manifest))
        self.handles[manifest.name] = handle
        for route in routes or []:
            handle.net.route(**route)
        if config:
            handle.config.set(**config)
        try:
            self.runner.run(self.runtime.activate(manifest.name))
        except SandboxUnavailableError as exc:
            raise InvalidInputError(
                f"{manifest.name} cannot run in the strict sandbox here: {exc}. Run "
                "`plugport doctor` to see the layers, or test with `--plugport-sandbox "
                "best-effort` (or @pytest.mark.plugport(sandbox='best-effort'))"
            ) from None
        except PluginCallError as exc:
            raise InvalidInputError(
                f"{manifest.name} failed to start: {exc.type} in its code (entry = "
                f"{manifest.entry!r} in {path / MANIFEST}):\n{exc.traceback.rstrip()}"
            ) from None
        except PluginCrashedError as exc:
            raise InvalidInputError(f"{manifest.name} failed to start: {exc.cause}") from None
        return handle

    def close(self) -> None:
        try:
            self.runner.run(self.runtime.close())
        finally:
            self.runner.run(self.network.aclose())


def describe(exc: PlugportError) -> str:
    """An error as a test failure shows it: the message, and the plugin's own frames."""
    if isinstance(exc, PluginCallError) and exc.traceback:
        return f"{exc}\n{exc.traceback.rstrip()}"
    return str(exc)
