"""Host commands on a host home (``--home`` / ``$PLUGPORT_HOME``): install, update, uninstall,
enable, disable, list, info, search, run, status, audit, check-updates; and ``plugport host``:
the host service (``serve``) with its workspaces and tokens.

Each command opens the home, does one thing through :class:`~plugport.host.PluginHost`, and
closes it; the host's own state makes the next command see the result. The commands that only
read (list, status, audit, search, info, check-updates) never create a home: one that does not
exist reads as empty."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn
from rich.table import Table

from plugport.cli._output import err, out, reporting_errors
from plugport.errors import InvalidInputError, PluginCallError

__all__ = ["register"]

T = TypeVar("T")

Home = Annotated[
    Path | None,
    typer.Option("--home", help="The host home (default $PLUGPORT_HOME, else ./plugport-home)."),
]
Registry = Annotated[
    list[str] | None,
    typer.Option(
        "--registry", help="Registry URL; repeat for several (default $PLUGPORT_REGISTRY)."
    ),
]
App = Annotated[
    str, typer.Option("--app", envvar="PLUGPORT_APP", help="The host application's name.")
]
AppVersion = Annotated[
    str,
    typer.Option("--app-version", envvar="PLUGPORT_APP_VERSION", help="Its version (PEP 440)."),
]
Offline = Annotated[
    bool, typer.Option("--offline", help="Use only the cache and local archives; no network.")
]
Sandbox = Annotated[
    str,
    typer.Option("--sandbox", envvar="PLUGPORT_SANDBOX", help="strict (default) or best-effort."),
]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Accept the permissions asked for.")]
TrustNewKey = Annotated[
    bool, typer.Option("--trust-new-key", help="Accept a publisher key this host has not seen.")
]


def _home(home: Path | None) -> Path:
    return home or Path(os.environ.get("PLUGPORT_HOME") or "plugport-home")


def _registries(given: list[str] | None) -> list[str]:
    if given:
        return given
    env = os.environ.get("PLUGPORT_REGISTRY", "")
    return [url for url in env.split(",") if url.strip()]


POLICY_FILE = "policy.toml"


def _preapproved(home: Path) -> Any:
    """``HOME/policy.toml``'s ``[preapproved]`` table (the manifest's permission vocabulary):
    what an unattended install or update may be granted without asking."""
    import tomllib

    from pydantic import ValidationError

    from plugport.manifest import Permissions

    path = home / POLICY_FILE
    if not path.is_file():
        return None
    try:
        data = tomllib.loads(path.read_text())
        return Permissions.model_validate(data.get("preapproved", {}))
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise InvalidInputError(f"{path}: not a valid policy ({exc})") from None


def _ask(yes: bool) -> Any:
    from plugport.host.consent import ConsentRequest, accept_all, refuse_growth

    if yes:
        return accept_all
    if not sys.stdin.isatty():
        return refuse_growth

    def prompt(request: ConsentRequest) -> bool:
        before = f" (installed: {request.previous_version})" if request.previous_version else ""
        out.print(f"[bold]{request.name} {request.version}[/]{before} asks to:")
        for line in request.added if request.previous_version else request.lines:
            out.print(f"  • {line}")
        return bool(typer.confirm("Allow?", default=False))

    return prompt


def _run(
    home: Path | None,
    registry: list[str] | None,
    action: Callable[[Any], Awaitable[T]],
    *,
    app: str = "plugport-cli",
    app_version: str = "0",
    offline: bool = False,
    yes: bool = False,
    sandbox: str = "strict",
    progress: bool = False,
    plugins: bool = True,
    read_only: bool = False,
) -> T:
    """``read_only``: the command only reads, so a home that does not exist stays absent (it
    reads as empty) instead of being created."""
    from plugport.host import PluginHost

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        console=err,
        transient=True,
        disable=not progress or not err.is_terminal,
    )
    tasks: dict[str, Any] = {}

    def on_progress(what: str, done: int, total: int) -> None:
        if what not in tasks:
            tasks[what] = bar.add_task(what, total=total)
        bar.update(tasks[what], completed=done)

    async def main() -> T:
        if sandbox not in ("strict", "best-effort"):
            raise InvalidInputError(f"--sandbox: {sandbox!r} is not strict or best-effort")
        host = PluginHost(
            app=app,
            app_version=app_version,
            home=_home(home),
            registries=_registries(registry),
            consent=_ask(yes),
            preapproved=_preapproved(_home(home)),
            offline=offline,
            sandbox=sandbox,  # type: ignore[arg-type]
            progress=on_progress,
            telemetry=os.environ.get("PLUGPORT_TELEMETRY", "1").lower() not in ("0", "off", "no"),
            read_only=read_only,
        )
        try:
            host.open()
            if plugins:
                await host.start_runtime()
            return await action(host)
        finally:
            await host.stop()

    with reporting_errors(), bar:
        return asyncio.run(main())


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
        Path | None, typer.Option("--key", help="Publisher key for a file or URL.")
    ] = None,
    offline: Offline = False,
    sandbox: Sandbox = "strict",
) -> None:
    """Install plugins with their dependencies, verified, all or nothing."""
    report = _run(
        home,
        registry,
        lambda host: host.install(*plugins, trust_new_key=trust_new_key, key=key),
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
    report = _run(
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
    _run(home, None, lambda host: host.uninstall(plugin, purge=purge), sandbox=sandbox)
    out.print(f"uninstalled {plugin}" + (" and its data" if purge else ""))


def enable(plugin: str, home: Home = None, sandbox: Sandbox = "strict") -> None:
    """Enable a plugin."""
    _run(home, None, lambda host: host.enable(plugin), sandbox=sandbox)
    out.print(f"enabled {plugin}")


def disable(plugin: str, home: Home = None, sandbox: Sandbox = "strict") -> None:
    """Disable a plugin (it stays installed, with its data)."""
    _run(home, None, lambda host: host.disable(plugin), sandbox=sandbox)
    out.print(f"disabled {plugin}")


async def _value(value: T) -> T:
    return value


def list_(home: Home = None, as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Installed plugins."""
    rows = _run(
        home,
        None,
        lambda host: _value(host.installed()),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    if as_json:
        print(json.dumps([r.__dict__ for r in rows], default=str, indent=2))
        return
    if not rows:
        out.print(f"no plugins installed in {_home(home)}")
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
    """Installed plugins with their runtime state, and each one's last error (crash, kill,
    limit, refusal or quarantine since it was installed, updated, enabled or disabled), also
    when another process saw it."""
    rows = _run(home, None, lambda host: _value(host.status()), sandbox=sandbox, read_only=True)
    if as_json:
        print(json.dumps(rows, default=str, indent=2))
        return
    if not rows:
        out.print(f"no plugins installed in {_home(home)}")
        return
    table = Table("name", "version", "enabled", "state", "restarts", "last error")
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
            error,
        )
    out.print(table)


def _when(at: float) -> str:
    return datetime.fromtimestamp(at, UTC).strftime("%Y-%m-%d %H:%M:%S")


def info(
    plugin: str, home: Home = None, registry: Registry = None, offline: Offline = False
) -> None:
    """A plugin's registry page, as JSON."""
    data = _run(
        home,
        registry,
        lambda host: _value(host.info(plugin)),
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
    data = _run(
        home,
        registry,
        lambda host: _value(host.search(query, **filters)),
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

    print(json.dumps(_run(home, None, action, sandbox=sandbox), default=str, indent=2))


def logs(
    plugin: str,
    lines: Annotated[int, typer.Option("--lines", "-n", help="How many of the last lines.")] = 50,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing new lines until Ctrl-C.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    home: Home = None,
) -> None:
    """What a plugin logged (self.log), from every process that ran it: its last lines,
    coloured by level; kept in HOME/logs, 1 MiB per plugin plus one rotated file."""
    if lines < 0:
        raise typer.BadParameter("--lines must be 0 or more")
    records = _run(
        home,
        None,
        lambda host: _value(host.log_lines(plugin, lines=lines)),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    for record in records:
        _print_log(plugin, record, as_json)
    if not follow:
        return
    from plugport.host.install import HostPaths
    from plugport.host.plugin_logs import PluginLogs

    try:
        for record in PluginLogs(HostPaths(_home(home).absolute()).logs).follow(plugin):
            _print_log(plugin, record, as_json)
    except KeyboardInterrupt:
        return


def _print_log(plugin: str, record: Any, as_json: bool) -> None:
    if as_json:
        print(record.to_json(), flush=True)
        return
    from plugport.cli._activity import log_line

    out.print(log_line(plugin, record.at, record.level, record.message, record.fields))
    out.file.flush()


def config_get(
    plugin: str,
    key: Annotated[str | None, typer.Argument(help="One setting (default: all).")] = None,
    home: Home = None,
) -> None:
    """Print a plugin's settings as JSON: its schema's defaults overlaid by what was set."""

    def read(host: Any) -> Any:
        values = host.settings(plugin)
        if key is None:
            return values
        if key not in values:
            known = ", ".join(sorted(host.config_schema(plugin).get("properties") or {}))
            raise InvalidInputError(
                f"{plugin}: no setting {key!r} is set or has a default (its schema names: "
                f"{known or 'none'})"
            )
        return values[key]

    found = _run(
        home,
        None,
        lambda host: _value(read(host)),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    print(json.dumps(found, indent=2, default=str))


def config_set(
    plugin: str,
    key: str,
    value: Annotated[str, typer.Argument(help="JSON when it parses as JSON, else text.")],
    as_str: Annotated[bool, typer.Option("--str", help="Keep VALUE as text.")] = False,
    home: Home = None,
) -> None:
    """Set one setting, checked against the manifest's config schema; a running plugin reads
    it on its next config.get. Settings the schema marks required may be given one at a time
    while the plugin is disabled; plugport enable waits until all are set."""
    from plugport.host.settings import parse_value

    parsed = parse_value(value, force_str=as_str)
    _run(
        home,
        None,
        lambda host: _value(host.set_setting(plugin, key, parsed)),
        sandbox="best-effort",
        plugins=False,
    )
    out.print(f"set {plugin} {key}")


def config_unset(plugin: str, key: str, home: Home = None) -> None:
    """Remove one setting, so its default applies again."""
    _run(
        home,
        None,
        lambda host: _value(host.unset_setting(plugin, key)),
        sandbox="best-effort",
        plugins=False,
    )
    out.print(f"unset {plugin} {key}")


def _config_group() -> typer.Typer:
    group = typer.Typer(
        help="A plugin's settings (the manifest's [config] JSON Schema). A plugin whose "
        "schema requires settings installs disabled until they are set: plugport config set "
        "NAME KEY VALUE, then plugport enable NAME.",
        no_args_is_help=True,
    )
    group.command("get")(config_get)
    group.command("set")(config_set)
    group.command("unset")(config_unset)
    return group


def audit(
    home: Home = None,
    plugin: Annotated[str | None, typer.Option("--plugin", help="Only this plugin's.")] = None,
    limit: Annotated[int, typer.Option("--limit")] = 50,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Who did what to which plugin, when, and how it ended: the host's operations and the
    runtime's decisions (activate, deny, limit, kill, crash, restart, quarantine, refuse; who:
    runtime), newest first."""
    rows = _run(
        home,
        None,
        lambda host: _value(host.audit(subject=plugin, limit=limit)),
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
    """Which installed plugins have a newer compatible version."""
    found = _run(
        home,
        registry,
        lambda host: _value(host.check_updates()),
        app=app,
        app_version=app_version,
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    for name, have, newest in found:
        out.print(f"{name}: {have} -> {newest}")
    if not found:
        out.print("everything is up to date")


ServiceDir = Annotated[
    Path | None,
    typer.Option(
        "--data-dir",
        help="The host service's data (default $PLUGPORT_HOST_SERVICE_DATA_DIR, else "
        "./plugport-host-service).",
    ),
]


def _service_settings(**given: Any) -> Any:
    from plugport.cli._settings import settings_from
    from plugport.host.service import HostServiceSettings

    return settings_from(HostServiceSettings, "host service settings", **given)


def _store(data_dir: Path | None) -> Any:
    from plugport.host.service.store import ServiceStore

    settings = _service_settings(data_dir=data_dir)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    return ServiceStore(settings.data_dir / "service.sqlite")


def serve(  # noqa: PLR0917 one parameter per command-line option
    data_dir: ServiceDir = None,
    registry: Annotated[
        list[str] | None,
        typer.Option("--registry", help="Registry URL; repeat for several."),
    ] = None,
    app: Annotated[str | None, typer.Option("--app", help="The application's name.")] = None,
    app_version: Annotated[
        str | None, typer.Option("--app-version", help="Its version (PEP 440).")
    ] = None,
    sandbox: Annotated[
        str | None, typer.Option("--sandbox", help="strict (default) or best-effort.")
    ] = None,
    host: Annotated[str | None, typer.Option("--host", help="Address to bind.")] = None,
    port: Annotated[int | None, typer.Option("--port", help="Port to bind (8100).")] = None,
) -> None:
    """Run the host service: workspaces of installed plugins over HTTP."""
    import uvicorn

    from plugport.host.service import create_host_service_app

    with reporting_errors():
        settings = _service_settings(
            data_dir=data_dir,
            registries=tuple(registry) if registry else None,
            app=app,
            app_version=app_version,
            sandbox=sandbox,
            host=host,
            port=port,
        )
        web_app = create_host_service_app(settings)
    out.print(
        f"starting the plugport host service on {settings.host}, port {settings.port} "
        "(uvicorn says when up)"
    )
    uvicorn.run(web_app, host=settings.host, port=settings.port, log_level="info")


def create_admin(data_dir: ServiceDir = None) -> None:
    """Print a new admin token for the host service (shown once)."""
    with reporting_errors():
        store = _store(data_dir)
        try:
            token, _ = store.create_token("admin", description="created by host create-admin")
        finally:
            store.close()
    print(token)  # plain stdout: scripts capture it


def workspace_create(name: str, data_dir: ServiceDir = None) -> None:
    """Create a workspace and print a token for it (shown once)."""
    with reporting_errors():
        store = _store(data_dir)
        try:
            store.create_workspace(name)
            token, _ = store.create_token(
                "workspace", name, description="created by host workspace create"
            )
        finally:
            store.close()
    print(token)


def token_create(
    workspace: Annotated[str, typer.Option("--workspace", help="The workspace it reaches.")],
    expires_days: Annotated[
        float | None, typer.Option("--expires-days", help="Valid for this many days.")
    ] = None,
    data_dir: ServiceDir = None,
) -> None:
    """Print a new token for a workspace (shown once)."""
    with reporting_errors():
        store = _store(data_dir)
        try:
            token, _ = store.create_token(
                "workspace",
                workspace,
                expires_days=expires_days,
                description="created by host token create",
            )
        finally:
            store.close()
    print(token)


def token_revoke(prefix: str, data_dir: ServiceDir = None) -> None:
    """Revoke a token by its prefix (the 8 characters after pph_)."""
    with reporting_errors():
        store = _store(data_dir)
        try:
            info = store.revoke(prefix.removeprefix("pph_").split("_")[0])
        finally:
            store.close()
    out.print(f"revoked token {info.prefix}" + (f" ({info.workspace})" if info.workspace else ""))


def _service_group() -> typer.Typer:
    group = typer.Typer(help="The host service: workspaces over HTTP.", no_args_is_help=True)
    group.command()(serve)
    group.command("create-admin")(create_admin)
    workspaces = typer.Typer(help="Workspaces of the host service.", no_args_is_help=True)
    workspaces.command("create")(workspace_create)
    group.add_typer(workspaces, name="workspace")
    tokens = typer.Typer(help="Tokens of the host service.", no_args_is_help=True)
    tokens.command("create")(token_create)
    tokens.command("revoke")(token_revoke)
    group.add_typer(tokens, name="token")
    return group


def register(app: typer.Typer) -> None:
    commands = (install, update, uninstall, enable, disable, status, info, search, run, logs, audit)
    for command in commands:
        app.command()(command)
    app.command("list")(list_)
    app.command("check-updates")(check_updates)
    app.add_typer(_service_group(), name="host")
    app.add_typer(_config_group(), name="config")
