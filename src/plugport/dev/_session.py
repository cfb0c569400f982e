"""One plugin running from its source under a real :class:`Supervisor`: started, replaced on
every good change, called by the page, watched through the runtime's activity feed.

The rule it protects: a change that does not validate (manifest, syntax, settings) never
touches the supervisor, so the last good version keeps answering; only a change that passed
every check replaces it (deactivate, remove without purge, add, activate)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import time
from collections import deque
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from rich.markup import escape

from plugport._permissions import describe_permissions, permissions_beyond
from plugport.components import actions_of, check_tree, widget_config
from plugport.deps.libraries import development_libraries
from plugport.deps.lockfile import LOCK_FILENAME
from plugport.dev._problems import SourceProblem, from_call_error
from plugport.dev._source import SourceProblems, SourceTree, load_settings_file
from plugport.dev._stream import Stream, activity_json
from plugport.dev._watch_rules import DEV_HOME_NAME, Changes
from plugport.errors import DependencyError, InvalidInputError, NotFoundError, PlugportError
from plugport.manifest import Manifest
from plugport.runtime.activity import Activity
from plugport.runtime.capabilities.network import parse_endpoint
from plugport.runtime.launcher import ZygoteLauncher
from plugport.runtime.supervisor import PluginInstall, Supervisor, SupervisorConfig
from plugport.sdk import UiRequest

__all__ = ["DevOptions", "DevSession", "DevStartError"]

MAX_RECENT = 2000
"""Activities kept for the page (``GET /api/activity?since=``); older ones scroll away."""


class DevStartError(InvalidInputError):
    """``plugport dev`` cannot start on this input (exit 2); ``problems`` says where."""

    def __init__(self, problems: list[SourceProblem]) -> None:
        self.problems = problems
        super().__init__("; ".join(str(p) for p in problems))


@dataclass(frozen=True)
class DevOptions:
    """What ``plugport dev`` was asked to do."""

    path: Path
    home: Path | None = None
    """Dev state (storage, settings, runtime.sqlite, data dir, staged code); default
    ``PATH/.plugport-dev`` so storage survives restarts of ``dev``."""
    sandbox: Literal["strict", "best-effort"] = "strict"
    port: int | None = 0
    """The page's port on 127.0.0.1 (0: a free one; None: no page)."""
    as_json: bool = False
    fresh: bool = False
    config_file: Path | None = None
    allow_local: tuple[str, ...] = ()
    """``host:port`` endpoints ``net.fetch`` may reach although they are local (dev only)."""


class DevSession:
    def __init__(self, options: DevOptions, stream: Stream) -> None:
        self.options = options
        self.stream = stream
        self.root = options.path.resolve()
        self.home = (options.home or self.root / DEV_HOME_NAME).resolve()
        self.config_file = options.config_file.resolve() if options.config_file else None
        self.source = SourceTree(self.root)
        self.supervisor: Supervisor | None = None
        self.manifest: Manifest | None = None
        """The version running now (None until one started)."""
        self.settings: dict[str, Any] | None = None
        self.reloads = 0
        self.problems: list[SourceProblem] = []
        self.recent: deque[tuple[int, Activity]] = deque(maxlen=MAX_RECENT)
        self._count = 0
        self._generation = 0
        self._code_dir: Path | None = None
        self._idle = asyncio.Event()  # clear while a reload replaces the plugin
        self._idle.set()
        self._calls = 0  # calls and renders running now
        self._no_calls = asyncio.Event()  # set while there are none
        self._no_calls.set()
        self._unsubscribe: Any = None
        self._pids: set[int] = set()

    # --- start and stop ---------------------------------------------------------------------

    async def start(self) -> None:
        """Validate the input and start the plugin. Bad input (no directory, no or an invalid
        manifest, a bad ``--allow-local`` or settings file) raises :class:`DevStartError` with
        nothing started; a plugin that fails to import is reported and dev keeps going."""
        if not self.root.is_dir():
            raise DevStartError(
                [SourceProblem("start", str(self.options.path), "no such plugin directory")]
            )
        for endpoint in self.options.allow_local:
            try:
                parse_endpoint(endpoint)
            except ValueError as exc:
                raise DevStartError([SourceProblem("start", "--allow-local", str(exc))]) from None
        try:
            manifest = self.source.read_manifest()
            files = self.source.files()
            settings = self._read_settings(manifest)
        except SourceProblems as exc:
            raise DevStartError(exc.problems) from None
        if self.options.fresh:
            await self._wipe_home(manifest.name)
        self.home.mkdir(parents=True, exist_ok=True, mode=0o700)
        shutil.rmtree(self.home / "code", ignore_errors=True)  # a previous run's staged copies
        config = SupervisorConfig(state_dir=self.home, sandbox=self.options.sandbox)
        self.supervisor = Supervisor(config)
        self._unsubscribe = self.supervisor.activity.subscribe(self._on_activity)
        await self.supervisor.start()
        self._describe(manifest)
        try:
            self.source.compile_changed(files)
        except SourceProblems as exc:
            self._report(exc.problems)
            return
        await self._replace(manifest, files, settings)

    async def close(self) -> None:
        """Stop the plugin's worker and the zygote; the dev home (storage) stays."""
        supervisor, self.supervisor = self.supervisor, None
        if supervisor is None:
            return
        try:
            await supervisor.close()
        finally:
            if self._unsubscribe is not None:
                self._unsubscribe()
            shutil.rmtree(self.home / "code", ignore_errors=True)

    def kill_now(self) -> None:
        """The forced way out (a second Ctrl-C): SIGKILL every worker and the zygote."""
        supervisor = self.supervisor
        pids = set(self._pids)
        if supervisor is not None:
            pids |= {s.pid for s in supervisor.status() if s.pid}
            if isinstance(supervisor.launcher, ZygoteLauncher) and supervisor.launcher.pid:
                pids.add(supervisor.launcher.pid)
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    def pids(self) -> dict[str, Any]:
        """The processes dev started that run now: the worker and the zygote."""
        supervisor = self.supervisor
        if supervisor is None:
            return {"worker": None, "zygote": None}
        worker = None
        if self.manifest is not None:
            worker = supervisor.status(self.manifest.name)[0].pid
        zygote = (
            supervisor.launcher.pid if isinstance(supervisor.launcher, ZygoteLauncher) else None
        )
        for pid in (worker, zygote):
            if pid:
                self._pids.add(pid)
        return {"worker": worker, "zygote": zygote}

    async def _wipe_home(self, name: str) -> None:
        """``--fresh``: forget everything a previous run kept (its uid and volume too)."""
        if self.home.exists():
            config = SupervisorConfig(state_dir=self.home, sandbox="best-effort")
            supervisor = Supervisor(config)
            try:
                supervisor.purge(name)
            finally:
                await supervisor.close()
            shutil.rmtree(self.home)
        self.stream.say(
            "fresh", f"[yellow]--fresh: removed {escape(str(self.home))}[/]", home=str(self.home)
        )

    # --- changes ----------------------------------------------------------------------------

    async def changed(self, changes: Changes) -> None:
        """Act on one batch of file changes (see :func:`~plugport.dev._watch_rules.classify`)."""
        if changes.reload:
            await self.reload()
        elif changes.config:
            self.apply_settings()

    async def reload(self) -> None:
        """Re-read and check everything; replace the running plugin only if all of it is good."""
        keeping = self._running_label()
        try:
            manifest = self.source.read_manifest()
            files = self.source.files()
            self.source.compile_changed(files)
            settings = self._read_settings(manifest)
        except SourceProblems as exc:
            self._report(exc.problems, keeping=keeping)
            return
        await self._replace(manifest, files, settings)

    def apply_settings(self) -> None:
        """The settings file changed: check it and hand it to the running plugin."""
        if self.manifest is None or self.supervisor is None:
            return
        try:
            settings = self._read_settings(self.manifest)
            if settings is not None:
                self.supervisor.configure(self.manifest.name, settings)
        except SourceProblems as exc:
            self._report(exc.problems, keeping="the previous settings")
            return
        except InvalidInputError as exc:
            self._report(
                [SourceProblem("config", str(self.config_file), str(exc))],
                keeping="the previous settings",
            )
            return
        self.settings = settings
        self.stream.say("settings", "[green]settings applied[/]", values=settings)

    # --- calls from the page ----------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def _calling(self) -> AsyncIterator[None]:
        """A call or render: it waits out a reload in progress, and a reload waits for it to
        end before it stops the version that serves it (see :meth:`_replace`)."""
        await self._idle.wait()
        self._calls += 1
        self._no_calls.clear()
        try:
            yield
        finally:
            self._calls -= 1
            if not self._calls:
                self._no_calls.set()

    async def call(self, target: str, args: dict[str, Any]) -> tuple[str, Any]:
        """Run the command or hook ``target`` with keyword ``args``: ``(kind, value)``. A call
        never lands between two versions, nor is cut short by a reload."""
        async with self._calling():
            return await self._call(target, args)

    async def _call(self, target: str, args: dict[str, Any]) -> tuple[str, Any]:
        supervisor, manifest = self.supervisor, self.manifest
        if supervisor is None or manifest is None:
            raise InvalidInputError(
                "the plugin is not running: fix the errors dev printed, and it reloads"
            )
        commands = [c.id for c in manifest.contributes.commands]
        if target in commands:
            return "command", await supervisor.run_command(manifest.name, target, kwargs=args)
        if target in manifest.contributes.hooks:
            # The dev host declares no hooks (it cannot know their arguments):
            # call_hook_on calls a contributed hook with the caller's arguments as given.
            return "hook", await supervisor.call_hook_on(manifest.name, target, args)
        raise InvalidInputError(
            f"{manifest.name} has no command or hook {target!r} (commands: "
            f"{', '.join(commands) or 'none'}; hooks: "
            f"{', '.join(manifest.contributes.hooks) or 'none'})"
        )

    def info(self) -> dict[str, Any]:
        manifest, supervisor = self.manifest, self.supervisor
        status = None
        if manifest is not None and supervisor is not None:
            status = supervisor.status(manifest.name)[0]
        return {
            "path": str(self.root),
            "home": str(self.home),
            "name": manifest.name if manifest else None,
            "version": manifest.version if manifest else None,
            "state": status.state if status else "not loaded",
            "pid": status.pid if status else None,
            "last_error": status.last_error if status else None,
            "sandbox": self.options.sandbox,
            "layers": dict(status.sandbox) if status else {},
            "commands": [{"id": c.id, "title": c.title} for c in manifest.contributes.commands]
            if manifest
            else [],
            "hooks": sorted(manifest.contributes.hooks) if manifest else [],
            "widgets": [{"id": w.id, "title": w.title} for w in manifest.contributes.widgets]
            if manifest
            else [],
            "permissions": describe_permissions(manifest.permissions) if manifest else [],
            "allow_local": list(self.options.allow_local),
            "reloads": self.reloads,
            "problems": [p.to_json() for p in self.problems],
        }

    def audit(self, limit: int = 100) -> list[dict[str, Any]]:
        if self.supervisor is None:
            return []
        name = self.manifest.name if self.manifest else None
        return [
            {"id": e.id, "at": e.at, "kind": e.kind, "reason": e.reason, "capability": e.capability}
            for e in self.supervisor.audit.query(plugin=name, limit=limit)
        ]

    def storage(self) -> dict[str, Any]:
        if self.supervisor is None or self.manifest is None:
            return {"items": {}, "used_bytes": 0, "quota_bytes": 0}
        store, name = self.supervisor.services.storage, self.manifest.name
        return {
            "items": {key: store.get(name, key) for key in store.keys(name, "", limit=1000)},
            "used_bytes": store.usage(name),
            "quota_bytes": self.manifest.permissions.storage,
        }

    def current_settings(self) -> dict[str, Any]:
        if self.supervisor is None or self.manifest is None:
            return {}
        return self.supervisor.services.settings.get(self.manifest.name, dict(self.manifest.config))

    def widgets(self) -> list[dict[str, Any]]:
        """Each contributed widget with how often the plugin invalidated it; its tree is
        rendered on request (``GET /api/widgets/{id}``)."""
        if self.supervisor is None or self.manifest is None:
            return []
        return [
            {
                "id": w.id,
                "title": w.title,
                "version": self.supervisor.ui.version(self.manifest.name, w.id),
            }
            for w in self.manifest.contributes.widgets
        ]

    async def render_widget(
        self,
        widget_id: str,
        *,
        config: Mapping[str, Any] | None = None,
        action: str | None = None,
        payload: Mapping[str, Any] | None = None,
        values: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """The tree the plugin's ``@widget`` handler answers, asked for as the host asks:
        ``config`` over the widget's schema defaults, the answer held to the component schema
        (a :class:`~plugport.components.ComponentError` names the field). An ``action`` must
        be one the plain render offers (a button or form of its tree), as on the dashboard."""
        async with self._calling():
            supervisor, manifest = self.supervisor, self.manifest
            if supervisor is None or manifest is None:
                raise InvalidInputError(
                    "the plugin is not running: fix the errors dev printed, and it reloads"
                )
            widget = next((w for w in manifest.contributes.widgets if w.id == widget_id), None)
            if widget is None:
                offered = ", ".join(w.id for w in manifest.contributes.widgets) or "none"
                raise NotFoundError("widget", widget_id, f"{manifest.name} contributes: {offered}")
            settings = widget_config(widget.config, config)

            async def ask(action: str | None) -> Any:
                request = UiRequest(
                    "widget",
                    widget_id,
                    config=settings,
                    action=action,
                    payload=dict(payload or {}),
                    values=dict(values or {}),
                    workspace="dev",
                )
                answer = await supervisor.call_ui(manifest.name, widget_id, request.to_wire())
                return check_tree(
                    answer, plugin=manifest.name, surface=widget_id, overlay_allowed=bool(action)
                )

            if action is not None:
                actions = actions_of(await ask(None))
                if action not in actions:
                    raise InvalidInputError(
                        f"widget {widget_id!r} offers no action {action!r} now (its tree offers: "
                        f"{', '.join(sorted(actions)) or 'none'})"
                    )
            return {
                "id": widget_id,
                "title": widget.title,
                "version": supervisor.ui.version(manifest.name, widget_id),
                "config": settings,
                "action": action,
                "tree": await ask(action),
            }

    def activity_since(self, since: int) -> list[dict[str, Any]]:
        return [activity_json(n, a) for n, a in self.recent if n > since]

    # --- the replacement --------------------------------------------------------------------

    async def _replace(
        self, manifest: Manifest, files: list[str], settings: dict[str, Any] | None
    ) -> None:
        supervisor = self.supervisor
        if supervisor is None:
            raise InvalidInputError("plugport dev is shutting down")
        started = time.perf_counter()
        try:
            libraries = development_libraries(self.source.root, manifest)
        except DependencyError as exc:
            self._report(
                [SourceProblem("manifest", LOCK_FILENAME, str(exc))],
                keeping=self._running_label(),
            )
            return
        previous, old_dir = self.manifest, self._code_dir
        self._generation += 1
        code_dir = self.source.stage(files, self.home / "code" / str(self._generation))
        self._idle.clear()
        try:
            await self._no_calls.wait()  # the calls the old version is serving end first
            if previous is not None:
                await supervisor.deactivate(previous.name)
                await supervisor.remove(previous.name)  # no purge: storage and settings stay
                self._permission_diff(previous, manifest)
            supervisor.add(
                PluginInstall(
                    manifest,
                    code_dir,
                    local_endpoints=self.options.allow_local,
                    libraries=libraries,
                )
            )
            self.manifest, self._code_dir = manifest, code_dir
            if settings is not None:
                supervisor.configure(manifest.name, settings)
                self.settings = settings
            self.problems = []
            try:
                await supervisor.activate(manifest.name)
            except PlugportError as exc:
                self._report([from_call_error(exc)])
                return
        finally:
            self._idle.set()
            if old_dir is not None:
                shutil.rmtree(old_dir, ignore_errors=True)
        elapsed_ms = (time.perf_counter() - started) * 1000
        pids = self.pids()
        if previous is None:
            self.stream.say(
                "ready",
                f"[green]running[/] {escape(manifest.name)} {escape(manifest.version)} "
                f"[dim](worker pid {pids['worker']}, started in {elapsed_ms:.0f} ms)[/]",
                plugin=manifest.name,
                version=manifest.version,
                ms=round(elapsed_ms, 1),
                **pids,
            )
        else:
            self.reloads += 1
            self.stream.say(
                "reloaded",
                f"[green]reloaded in {elapsed_ms:.0f} ms[/] [dim]({escape(manifest.name)} "
                f"{escape(manifest.version)}, worker pid {pids['worker']})[/]",
                plugin=manifest.name,
                version=manifest.version,
                ms=round(elapsed_ms, 1),
                **pids,
            )

    def _permission_diff(self, before: Manifest, after: Manifest) -> None:
        added = permissions_beyond(before.permissions, after.permissions)
        removed = permissions_beyond(after.permissions, before.permissions)
        if not (added or removed):
            return
        lines = [f"[green]+ {escape(a)}[/]" for a in added]
        lines += [f"[red]- {escape(r)}[/]" for r in removed]
        self.stream.say(
            "permissions",
            "[yellow]permissions changed (granted without asking: dev only)[/] " + "; ".join(lines),
            added=added,
            removed=removed,
            now=describe_permissions(after.permissions),
        )

    # --- helpers ----------------------------------------------------------------------------

    def _read_settings(self, manifest: Manifest) -> dict[str, Any] | None:
        if self.config_file is None:
            return None
        return load_settings_file(self.config_file, dict(manifest.config))

    def _describe(self, manifest: Manifest) -> None:
        permissions = describe_permissions(manifest.permissions)
        lines = [
            f"plugin [bold]{escape(manifest.name)}[/] {escape(manifest.version)} from "
            f"{escape(str(self.root))}",
            f"dev home {escape(str(self.home))}",
        ]
        lines += [f"  permission: {escape(p)}" for p in permissions]
        self.stream.say(
            "plugin",
            "\n".join(lines),
            plugin=manifest.name,
            version=manifest.version,
            path=str(self.root),
            home=str(self.home),
            permissions=permissions,
            sandbox=self.options.sandbox,
            pid=os.getpid(),
        )
        for endpoint in self.options.allow_local:
            self.stream.say(
                "allow_local",
                f"[bold red]dev only: net.fetch may reach {escape(endpoint)}[/]",
                endpoint=endpoint,
            )
        if self.config_file is not None:
            self.stream.say(
                "config_file",
                f"[bold red]dev only: settings from {escape(str(self.config_file))}[/]",
                file=str(self.config_file),
            )

    def _report(self, problems: list[SourceProblem], *, keeping: str = "") -> None:
        self.problems = problems
        self.stream.problems(problems, keeping=keeping)

    def _running_label(self) -> str:
        if self.manifest is None or self.supervisor is None:
            return ""
        return f"{self.manifest.name} {self.manifest.version}"

    def _on_activity(self, activity: Activity) -> None:
        self._count += 1
        self.recent.append((self._count, activity))
        self.stream.activity(self._count, activity)
