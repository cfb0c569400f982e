"""Author commands: init, validate, pack, schema."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from plugport import authoring, scaffold
from plugport._permissions import describe_permissions, is_dangerous
from plugport.cli._output import EXIT_FAILED, err, out, reporting_errors
from plugport.manifest import manifest_json_schema

__all__ = ["register"]


def init(
    name: Annotated[str, typer.Argument(help="Plugin name, 'namespace.plugin'.")],
    template: Annotated[
        str, typer.Option("--template", "-t", help=f"One of: {', '.join(scaffold.TEMPLATES)}.")
    ] = "basic",
    path: Annotated[
        Path | None,
        typer.Option(
            "--path",
            help="Directory to create, with any missing parents (default: the part of NAME "
            "after the dot). An existing directory must be empty.",
        ),
    ] = None,
    author: Annotated[str, typer.Option(help="Author line for the manifest.")] = "",
) -> None:
    """Create a plugin from a template; it validates, packs and tests as it is."""
    with reporting_errors():
        dest = path or Path(name.partition(".")[2] or name)
        files = scaffold.create_plugin(name, template, dest, author=author)
    out.print(f"Created [bold]{name}[/] ({template}) in {dest}/")
    for file in files:
        out.print(f"  {file.relative_to(dest)}")
    from plugport.manifest import load_manifest

    if load_manifest(dest).python.dependencies:
        out.print(f"First: plugport lock {dest}  (pins its [python] dependencies with pip)")
    out.print(
        f"Next: plugport dev {dest}  (runs it, reloads on save); cd {dest} && pytest -q; "
        f"plugport check {dest}"
    )


def validate(
    path: Annotated[
        Path, typer.Argument(exists=True, help="Plugin directory or .plugport archive.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Check a plugin's manifest and code. Exit 0 valid, 1 invalid, 2 usage error."""
    from plugport import checks  # here: the other commands need not load the runtime's rules

    report = authoring.validate_path(path)
    report.warnings.extend(checks.undeclared_use_warnings(report))
    report.warnings.extend(checks.presentation_warnings(report))
    if as_json:
        out.print_json(json.dumps(report.to_json()))
    else:
        _print_report(report)
    if not report.valid:
        raise typer.Exit(EXIT_FAILED)


def _print_report(report: authoring.ValidationReport) -> None:
    for problem in report.errors:
        err.print(f"[red]error[/] {escape(str(problem))}")
    for finding in report.warnings:
        err.print(f"[yellow]warning[/] {escape(str(finding))}")
    if report.manifest and report.valid:
        manifest = report.manifest
        out.print(f"[green]valid[/] {manifest.name} {manifest.version} ({report.path})")
        for line in describe_permissions(manifest.permissions):
            shown = f"[bold red]{escape(line)}[/]" if is_dangerous(line) else escape(line)
            out.print(f"  permission: {shown}")
        if manifest.tasks:  # what it does, not what it may reach: no consent is asked for it
            out.print(f"  processes tasks: {escape(', '.join(manifest.tasks))}")
    else:
        count = len(report.errors)
        err.print(f"[bold red]invalid[/] {report.path}: {count} error{'s' if count != 1 else ''}")


def pack(
    directory: Annotated[Path, typer.Argument(exists=True, file_okay=False, help="Plugin dir.")],
    output: Annotated[
        Path | None,
        typer.Option(
            "--output",
            "-o",
            help="Where the archive goes (default: .). A name ending in .plugport is the file "
            "to write (its directory must exist); anything else is a directory, created if "
            "missing, that receives NAME-VERSION.plugport (e.g. -o dist/).",
        ),
    ] = None,
) -> None:
    """Validate and pack a plugin into a reproducible NAME-VERSION.plugport archive."""
    with reporting_errors():
        packed = authoring.pack_plugin(directory, output)
    for finding in packed.warnings:
        err.print(f"[yellow]warning[/] {finding}")
    result = packed.result
    out.print(f"packed {result.path}")
    out.print(f"  size    {result.size} bytes, {len(result.members)} files")
    out.print(f"  sha256  {result.sha256}")


def lock(
    directory: Annotated[
        Path, typer.Argument(exists=True, file_okay=False, help="Plugin dir (default: .).")
    ] = Path(),
    index_url: Annotated[
        str | None,
        typer.Option("--index-url", "-i", help="Package index (as pip's --index-url)."),
    ] = None,
    extra_index_url: Annotated[
        list[str] | None,
        typer.Option("--extra-index-url", help="Another index (as pip's; repeatable)."),
    ] = None,
    find_links: Annotated[
        list[str] | None,
        typer.Option("--find-links", "-f", help="A directory or page of wheels (as pip's)."),
    ] = None,
    upgrade: Annotated[
        bool,
        typer.Option(
            "--upgrade", help="Resolve afresh instead of keeping the versions already locked."
        ),
    ] = False,
) -> None:
    """Resolve [python] dependencies with pip into plugport.lock (exact versions and sha256
    of each wheel) and download the wheels for `plugport pack`. pip's own configuration
    (pip.conf, PIP_* variables) applies, as it does to pip."""
    from plugport.deps.locker import IndexOptions, lock_plugin, wheel_cache

    options = IndexOptions(index_url, tuple(extra_index_url or ()), tuple(find_links or ()))
    with reporting_errors():
        result = lock_plugin(directory, index=options, upgrade=upgrade)
    target = directory / "plugport.lock"
    if not result.packages:
        out.print(f"locked {target}: no [python] dependencies")
        return
    out.print(f"locked {target}: {len(result.packages)} packages")
    for package in result.packages:
        for wheel in package.wheels:
            out.print(f"  {package.name} {package.version}  {wheel.filename}  {wheel.sha256[:12]}…")
    out.print(f"wheels cached in {wheel_cache()}")


def schema(
    output: Annotated[Path | None, typer.Option("--output", "-o", help="Write to a file.")] = None,
) -> None:
    """Print the JSON Schema of plugport.toml."""
    text = json.dumps(manifest_json_schema(), indent=2, sort_keys=True) + "\n"
    if output:
        output.write_text(text, encoding="utf-8")
        out.print(f"wrote {output}")
    else:
        typer.echo(text, nl=False)


def register(app: typer.Typer) -> None:
    for command in (init, validate, lock, pack, schema):
        app.command()(command)
