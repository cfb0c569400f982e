"""A plugin's own data on a host home: what it logged (``plugport logs``) and its settings
(``plugport config get/set/unset``). Each command reads or writes through
:class:`~plugport.host.PluginHost` without starting any plugin."""

from __future__ import annotations

import json
from typing import Annotated, Any

import typer

from plugport.cli._hostcommon import Home, home_dir, resolved, run_host
from plugport.cli._output import out
from plugport.errors import InvalidInputError

__all__ = ["config_group", "logs"]


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
    try:
        _logs(plugin, lines, follow, as_json, home)
    except KeyboardInterrupt:  # Ctrl-C ends --follow (at any moment, the tail included)
        if not follow:
            raise


def _logs(plugin: str, lines: int, follow: bool, as_json: bool, home: Any) -> None:
    records = run_host(
        home,
        None,
        lambda host: resolved(host.log_lines(plugin, lines=lines)),
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

    for record in PluginLogs(HostPaths(home_dir(home).absolute()).logs).follow(plugin):
        _print_log(plugin, record, as_json)


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

    found = run_host(
        home,
        None,
        lambda host: resolved(read(host)),
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
    run_host(
        home,
        None,
        lambda host: resolved(host.set_setting(plugin, key, parsed)),
        sandbox="best-effort",
        plugins=False,
        installed=plugin,
    )
    out.print(f"set {plugin} {key}")


def config_unset(plugin: str, key: str, home: Home = None) -> None:
    """Remove one setting, so its default applies again."""
    run_host(
        home,
        None,
        lambda host: resolved(host.unset_setting(plugin, key)),
        sandbox="best-effort",
        plugins=False,
        installed=plugin,
    )
    out.print(f"unset {plugin} {key}")


def config_group() -> typer.Typer:
    group = typer.Typer(
        help="A plugin's settings (the manifest's config table, a JSON Schema). A plugin whose "
        "schema requires settings installs disabled until they are set: plugport config set "
        "NAME KEY VALUE, then plugport enable NAME.",
        no_args_is_help=True,
    )
    group.command("get")(config_get)
    group.command("set")(config_set)
    group.command("unset")(config_unset)
    return group
