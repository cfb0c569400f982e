"""Host commands on a host home (``--home`` / ``$PLUGPORT_HOME``): install, update, uninstall,
enable, disable, list, info, search, run, status, audit, check-updates. A plugin's logs and
settings are in :mod:`plugport.cli.plugin_data`, ``plugport host`` (the host service) in
:mod:`plugport.cli.host_service`.

Each command opens the home, does one thing through :class:`~plugport.host.PluginHost`, and
closes it; the host's own state makes the next command see the result. The commands that only
read (list, status, audit, search, info, check-updates) never create a home: one that does not
exist reads as empty."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from plugport.cli import host_service, plugin_data, secrets, tasks, webhooks
from plugport.cli._hostcommon import (
    App,
    AppVersion,
    Home,
    Offline,
    Registry,
    Sandbox,
    TrustNewKey,
    Yes,
    home_dir,
    resolved,
    run_host,
)
from plugport.cli._output import err, out
from plugport.errors import InvalidInputError, PluginCallError

__all__ = ["register"]


def install(  # noqa: PLR0917 one parameter per command-line option
    plugins: Annotated[
        list[str], typer.Argument(help="Names (with ==/>= ranges), URLs, files or dirs.")
    ],
    home: Home = None,
    registry: Registry = None,
    app: App = "plugport-cli",
    app_version: AppVersion = "0",
    yes: Yes = False,
    trust_new_key: TrustNewKey = False,
    key: Annotated[
        Path | None, typer.Option("--key", help="Publisher key for a file, URL or index wheel.")
    ] = None,
    index_url: Annotated[
        str | None,
        typer.Option(
            "--index-url",
            help="A PEP 503/691 package index: each NAME[==VERSION] is a plugin wheel on it.",
        ),
    ] = None,
    offline: Offline = False,
    sandbox: Sandbox = "strict",
) -> None:
    """Install plugins with their dependencies, verified, all or nothing."""
    report = run_host(
        home,
        registry,
        lambda host: host.install(
            *plugins, trust_new_key=trust_new_key, key=key, index_url=index_url
        ),
        app=app,
        app_version=app_version,
        offline=offline,
        yes=yes,
        sandbox=sandbox,
        progress=True,
    )
    for name, version, previous in report.installed:
        was = f" (was {previous})" if previous else ""
        out.print(f"installed {name} {version}{was}")
    for name in report.unsigned:
        err.print(
            f"[yellow]{name} is unsigned[/]: installed from the package index because this "
            "host's policy allows unsigned index installs (allow_unsigned_index)"
        )
    _needs_settings(report)
    if not report.installed:
        out.print("nothing to do: already installed")


def _needs_settings(report: Any) -> None:
    from plugport.host.settings import setting_command

    for name, missing in report.needs_settings.items():
        err.print(
            f"[yellow]{name} is disabled: it needs settings: {', '.join(missing)}[/]; set "
            f"them with {setting_command(name, missing)}, then plugport enable {name}"
        )


def update(  # noqa: PLR0917 one parameter per command-line option
    plugins: Annotated[
        list[str] | None, typer.Argument(help="Installed plugins (default: all).")
    ] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Every plugin installed from a registry.")
    ] = False,
    home: Home = None,
    registry: Registry = None,
    app: App = "plugport-cli",
    app_version: AppVersion = "0",
    yes: Yes = False,
    trust_new_key: TrustNewKey = False,
    offline: Offline = False,
    sandbox: Sandbox = "strict",
) -> None:
    """Update to the newest compatible versions; a failed update rolls back."""
    if not plugins and not all_:
        raise typer.BadParameter("name plugins to update, or pass --all")
    report = run_host(
        home,
        registry,
        lambda host: host.update(*(plugins or []), trust_new_key=trust_new_key),
        app=app,
        app_version=app_version,
        offline=offline,
        yes=yes,
        sandbox=sandbox,
        progress=True,
    )
    for name, version, previous in report.installed:
        out.print(f"updated {name} {previous} -> {version}")
    _needs_settings(report)
    if not report.installed:
        out.print("everything is up to date")


def uninstall(
    plugin: str,
    purge: Annotated[bool, typer.Option("--purge", help="Also delete its data.")] = False,
    home: Home = None,
    sandbox: Sandbox = "strict",
) -> None:
    """Remove a plugin (refused while another installed plugin needs it)."""
    run_host(
        home,
        None,
        lambda host: host.uninstall(plugin, purge=purge),
        sandbox=sandbox,
        installed=plugin,
    )
    out.print(f"uninstalled {plugin}" + (" and its data" if purge else ""))


def enable(plugin: str, home: Home = None, sandbox: Sandbox = "strict") -> None:
    """Enable a plugin."""
    run_host(home, None, lambda host: host.enable(plugin), sandbox=sandbox, installed=plugin)
    out.print(f"enabled {plugin}")


def disable(plugin: str, home: Home = None, sandbox: Sandbox = "strict") -> None:
    """Disable a plugin (it stays installed, with its data)."""
    run_host(home, None, lambda host: host.disable(plugin), sandbox=sandbox, installed=plugin)
    out.print(f"disabled {plugin}")


def list_(home: Home = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Installed plugins."""
    rows = run_host(
        home,
        None,
        lambda host: resolved(host.installed()),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], default=str, indent=2))
        return
    if not rows:
        out.print(f"no plugins installed in {home_dir(home)}")
        return
    table = Table("name", "version", "enabled", "source", "requested")
    for row in rows:
        source = "development" if row.source_kind == "dev" else row.source
        table.add_row(
            row.name,
            row.version,
            "yes" if row.enabled else "no",
            source,
            "yes" if row.requested else "dependency",
        )
    out.print(table)


def status(
    home: Home = None,
    sandbox: Sandbox = "strict",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Installed plugins with their runtime state, each one's last error (crash, kill, limit,
    refusal or quarantine since it was installed, updated, enabled or disabled), and the
    problems the runtime found (error rate, latency regression, memory growth, restarts,
    timeouts, storage quota, slow hook), also when another process saw them: a running host
    reports them in the audit log, where this reads them."""
    rows = run_host(
        home, None, lambda host: resolved(host.status()), sandbox=sandbox, read_only=True
    )
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        out.print(f"no plugins installed in {home_dir(home)}")
        return
    table = Table("name", "version", "enabled", "state", "restarts", "problems", "last error")
    for row in rows:
        error = ""
        if row["last_error"]:
            error = f"{_when(row['last_error_at'])} {row['last_error_kind']}: {row['last_error']}"
        table.add_row(
            row["name"],
            row["version"],
            "yes" if row["enabled"] else "no",
            row["state"]
            + (
                f" (needs settings: {', '.join(row['needs_settings'])})"
                if row["needs_settings"]
                else ""
            ),
            str(row["restarts"]),
            ", ".join(_problem_label(p) for p in row["problems"]),
            error,
        )
    out.print(table)
    for row in rows:
        for problem in row["problems"]:
            out.print(
                f"\n{row['name']}: {problem['severity']} {problem['kind']} since "
                f"{_when(problem['since'])}: {problem['summary']}",
                markup=False,
            )
            out.print(f"  {problem['explanation']}", markup=False)


def _problem_label(problem: dict[str, Any]) -> str:
    label = str(problem["kind"])
    return f"[red]{label}[/]" if problem["severity"] == "critical" else f"[yellow]{label}[/]"


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def info(
    plugin: str, home: Home = None, registry: Registry = None, offline: Offline = False
) -> None:
    """A plugin's registry page, as JSON."""
    data = run_host(
        home,
        registry,
        lambda host: resolved(host.info(plugin)),
        offline=offline,
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    print(json.dumps(data, indent=2))


def search(  # noqa: PLR0917 one parameter per command-line option
    query: Annotated[str, typer.Argument()] = "",
    home: Home = None,
    registry: Registry = None,
    category: Annotated[str | None, typer.Option("--category")] = None,
    tag: Annotated[str | None, typer.Option("--tag")] = None,
    sort: Annotated[str | None, typer.Option("--sort")] = None,
    offline: Offline = False,
) -> None:
    """Search the registry."""
    filters = {"category": category or "", "tag": tag or "", "sort": sort or "", "compatible": "0"}
    data = run_host(
        home,
        registry,
        lambda host: resolved(host.search(query, **filters)),
        offline=offline,
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    table = Table("name", "version", "rating", "downloads", "description")
    for item in data["items"]:
        rating = item["rating"]["average"]
        table.add_row(
            item["name"],
            item["latest_version"] or "",
            f"{rating:.1f}" if rating else "-",
            str(item["downloads"]),
            item["description"][:60],
        )
    out.print(table)
    out.print(f"{data['total']} found")


def _arguments(pairs: Sequence[str], raw_pairs: Sequence[str] = ()) -> dict[str, Any]:
    """``--arg`` values are JSON when they parse as JSON (else the text); ``--arg-str`` values
    are always the text as given (a webhook body that happens to be JSON stays a string)."""
    values: dict[str, Any] = {}
    for option, pairs_given in (("--arg", pairs), ("--arg-str", raw_pairs)):
        for pair in pairs_given:
            key, sep, raw = pair.partition("=")
            if not sep or not key:
                raise InvalidInputError(f"{option} {pair!r}: write key=value")
            if key in values:
                raise InvalidInputError(f"{option} {pair!r}: {key!r} is given twice")
            if option == "--arg-str":
                values[key] = raw
                continue
            try:
                values[key] = json.loads(raw)
            except ValueError:
                values[key] = raw
    return values


def run(  # noqa: PLR0917 one parameter per command-line option
    plugin: str,
    target: Annotated[str, typer.Argument(help="A hook or a command the plugin contributes.")],
    arg: Annotated[
        list[str] | None,
        typer.Option("--arg", help="key=value; a value that parses as JSON is JSON."),
    ] = None,
    arg_str: Annotated[
        list[str] | None,
        typer.Option(
            "--arg-str", help="key=value; the value is always this text, never JSON-decoded."
        ),
    ] = None,
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Stream to stderr, one line each, the plugin's log lines, every capability "
            "call with its verdict (why, when denied) and duration, and the runtime's "
            "decisions. stdout stays the JSON result.",
        ),
    ] = False,
    home: Home = None,
    sandbox: Sandbox = "strict",
) -> None:
    """Run a plugin's hook or command in the sandbox and print the result as JSON. A failure
    shows the plugin's own traceback."""

    async def action(host: Any) -> Any:
        kwargs = _arguments(arg or [], arg_str or [])
        if verbose:
            from plugport.cli._activity import activity_line

            host.supervisor.activity.subscribe(lambda a: err.print(activity_line(a)))
        status = {s["name"]: s for s in host.status()}
        if plugin not in status:
            raise InvalidInputError(f"{plugin} is not installed")
        if not status[plugin]["enabled"]:
            raise InvalidInputError(f"{plugin} is disabled; plugport enable {plugin} first")
        try:
            return await host.commands.run(plugin, target, **kwargs)
        except InvalidInputError as exc:
            if "contributes no command" not in str(exc):
                raise
        from plugport.runtime.hooks import HookSpec

        if target not in host.supervisor.hooks.specs:  # the CLI is a host for any hook
            host.supervisor.declare_hook(HookSpec(target, tuple(kwargs)))
        outcomes = await getattr(host.hooks, target)(**kwargs)
        mine = [o for o in outcomes if o.plugin == plugin]
        if not mine:
            raise InvalidInputError(f"{plugin} has no command or hook {target!r}")
        if isinstance(mine[0].error, PluginCallError):
            raise mine[0].error  # shown with the plugin's own frames
        if not mine[0].ok:
            raise InvalidInputError(f"{plugin} {target}: {mine[0].error}")
        return mine[0].value

    print(json.dumps(run_host(home, None, action, sandbox=sandbox), default=str, indent=2))


def audit(
    home: Home = None,
    plugin: Annotated[str | None, typer.Option("--plugin", help="Only this plugin's.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who did what to which plugin, when, and how it ended: the host's operations and the
    runtime's decisions (activate, deny, limit, kill, crash, restart, quarantine, refuse; who:
    runtime), newest first."""
    rows = run_host(
        home,
        None,
        lambda host: resolved(host.audit(subject=plugin, limit=limit)),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], default=str, indent=2))
        return
    table = Table("when", "who", "action", "plugin", "outcome", "detail")
    for row in rows:
        detail = ", ".join(f"{k}={v}" for k, v in row.detail.items() if v is not None)
        table.add_row(_when(row.at), row.actor, row.action, row.subject, row.outcome, detail)
    out.print(table)


def check_updates(
    home: Home = None,
    registry: Registry = None,
    app: App = "plugport-cli",
    app_version: AppVersion = "0",
) -> None:
    """Which installed plugins have a newer compatible version, and which installed versions
    the registry has quarantined since (refused even pinned: update or uninstall them)."""
    found, flagged = run_host(
        home,
        registry,
        lambda host: resolved((host.check_updates(), host.quarantined_installs())),
        app=app,
        app_version=app_version,
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    for name, have, reason in flagged:
        why = f": {reason}" if reason else ""
        out.print(
            f"{name} {have} is QUARANTINED by the registry{why}; update it or uninstall it",
            markup=False,
        )
    for name, have, newest in found:
        out.print(f"{name}: {have} -> {newest}")
    if not found and not flagged:
        out.print("everything is up to date")


def register(app: typer.Typer) -> None:
    commands: list[Callable[..., None]] = [install, update, uninstall, enable, disable, status]
    commands += [info, search, run, plugin_data.logs, audit]
    for command in commands:
        app.command()(command)
    app.command("list")(list_)
    app.command("check-updates")(check_updates)
    app.add_typer(host_service.group(), name="host")
    app.add_typer(plugin_data.config_group(), name="config")
    app.add_typer(secrets.secret_group(), name="secret")
    app.add_typer(webhooks.group(), name="webhooks")
    app.add_typer(tasks.task_group(), name="task")
    app.add_typer(tasks.workflow_group(), name="workflow")
