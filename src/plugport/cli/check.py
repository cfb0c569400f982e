"""``plugport check``: the static checks of :mod:`plugport.checks`, plus the one round trip they
leave to the CLI (is this version already on the registry?), printed one line per objection
with a pass/fail summary. Exit 0 passed (warnings allowed), 1 errors found, 2 bad invocation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from plugport.cli._output import EXIT_FAILED, EXIT_USAGE, err, out, reporting_errors
from plugport.cli._registry import Connection, connect
from plugport.errors import InvalidInputError, RegistryResponseError
from plugport.manifest import MANIFEST_FILENAME, Manifest

if TYPE_CHECKING:
    from plugport import checks

__all__ = ["register", "show_items"]

_STYLE = {"error": "red", "warning": "yellow", "info": "dim"}
_REGISTRY_TIMEOUT_S = 10.0


def check(
    path: Annotated[
        Path, typer.Argument(help="Plugin directory or .plugport archive (default: .).")
    ] = Path(),
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    recorded: Annotated[
        Path | None,
        typer.Option(
            "--recorded",
            help="JSON of the capability calls a test run made (the pytest plugin writes it); "
            "what it used counts as used.",
        ),
    ] = None,
    registry: Annotated[
        str | None,
        typer.Option(
            "--registry",
            help="Registry to check the version against (default: $PLUGPORT_REGISTRY or what "
            "plugport login stored).",
        ),
    ] = None,
    offline: Annotated[
        bool, typer.Option("--offline", help="Do not ask a registry about the version.")
    ] = False,
) -> None:
    """Everything a reviewer would object to, before publishing. Exit 0 passed (warnings
    allowed), 1 errors found, 2 bad invocation."""
    from plugport import checks  # here: the other commands need not load the runtime's rules

    if not path.exists():
        _usage(f"{path} does not exist: give a plugin directory or a .plugport archive")
    recording = None
    if recorded is not None:
        try:
            recording = checks.load_recorded(recorded)
        except InvalidInputError as exc:
            _usage(str(exc))
    with reporting_errors():
        report = checks.check_path(path, recording.calls if recording else ())
    manifest = report.manifest
    if recording is not None and manifest is not None and recording.plugin != manifest.name:
        _usage(f"--recorded {recorded}: recorded for {recording.plugin!r}, not {manifest.name!r}")
    if manifest is not None:
        report.items += _version_items(manifest, registry, offline=offline)
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        show_items(report.items)
        _summary(report)
    if not report.passed:
        raise typer.Exit(EXIT_FAILED)


def _usage(message: str) -> None:
    err.print(f"[bold red]error:[/] {escape(message)}")
    raise typer.Exit(EXIT_USAGE)


def _version_items(
    manifest: Manifest, registry: str | None, *, offline: bool
) -> list[checks.CheckItem]:
    """Whether the registry has this version already; a registry that cannot be asked is a
    warning ("not checked"), never a failure."""
    from plugport import checks

    where = f"{MANIFEST_FILENAME}: version"
    if offline:
        return [checks.CheckItem("info", "version", where, "not checked against a registry")]
    try:
        connection = connect(registry, None, need_token=False)
    except InvalidInputError:
        return [
            checks.CheckItem(
                "info",
                "version",
                where,
                "not checked against a registry: none configured (pass --registry URL, set "
                "PLUGPORT_REGISTRY or run plugport login)",
            )
        ]
    try:
        published = _published(connection, manifest.name)
    except (RegistryResponseError, InvalidInputError) as exc:
        return [_not_checked(where, str(exc))]
    return checks.version_items(manifest, published, connection.url)


def _published(connection: Connection, name: str) -> list[str]:
    try:
        answer = connection.call(
            "GET", f"/api/v1/plugins/{name}/versions", timeout=_REGISTRY_TIMEOUT_S
        )
    except RegistryResponseError as exc:
        if exc.status == 404:  # a plugin the registry has never seen: any version is new
            return []
        raise
    if not isinstance(answer, list):
        raise InvalidInputError(f"{connection.url} did not answer with a list of versions")
    return [
        v["version"] for v in answer if isinstance(v, dict) and isinstance(v.get("version"), str)
    ]


def _not_checked(where: str, why: str) -> checks.CheckItem:
    from plugport import checks

    return checks.CheckItem("warning", "version", where, f"not checked against the registry: {why}")


def show_items(items: list[checks.CheckItem]) -> None:
    """One line per objection, errors first."""
    order = {"error": 0, "warning": 1, "info": 2}
    for item in sorted(items, key=lambda i: order[i.level]):
        err.print(f"[{_STYLE[item.level]}]{item.level}[/] {escape(str(item))}")


def _summary(report: checks.CheckReport) -> None:
    manifest = report.manifest
    what = f"{manifest.name} {manifest.version} ({report.path})" if manifest else report.path
    errors, warnings = len(report.errors), len(report.warnings)
    counts = f"{errors} error{'s' if errors != 1 else ''}, {warnings} warning" + (
        "s" if warnings != 1 else ""
    )
    if report.passed:
        out.print(f"[bold green]passed[/] {escape(what)}: {counts}")
    else:
        err.print(f"[bold red]failed[/] {escape(what)}: {counts}")


def register(app: typer.Typer) -> None:
    app.command()(check)
