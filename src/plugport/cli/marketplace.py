"""Talking to a registry: ``login``, ``publish``, ``review`` and ``yank`` (``namespace`` is in
:mod:`plugport.cli.namespaces`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from plugport.cli._output import EXIT_FAILED, err, out, reporting_errors
from plugport.cli._registry import connect, save_credentials
from plugport.errors import InvalidInputError

__all__ = ["register"]

Registry = Annotated[
    str | None, typer.Option("--registry", help="Registry URL (default $PLUGPORT_REGISTRY).")
]
Token = Annotated[str | None, typer.Option("--token", help="API token (default $PLUGPORT_TOKEN).")]
Reason = Annotated[
    str, typer.Option("--reason", help="Why; the publisher and the audit log see it.")
]


def login(
    registry: Annotated[str, typer.Option("--registry", help="Registry URL.")],
    token: Annotated[str, typer.Option("--token", prompt=True, hide_input=True, help="API token.")],
) -> None:
    """Check a token against a registry and remember both (0600) for later commands."""
    with reporting_errors():
        tokens = connect(registry, token).call("GET", "/api/v1/tokens")
        identity = next((t["identity"] for t in tokens if token.split("_")[1] == t["prefix"]), "?")
        path = save_credentials(registry, token)
    out.print(f"logged in to {registry} as {identity}; saved to {path}")


def publish(
    archive: Annotated[Path, typer.Argument(help="The .plugport archive.")],
    sig: Annotated[Path | None, typer.Option("--sig", help="Default: ARCHIVE.sig")] = None,
    registry: Registry = None,
    token: Token = None,
    skip_check: Annotated[
        bool,
        typer.Option(
            "--skip-check",
            help="Upload even when plugport check finds errors (the registry's scan and review "
            "still apply).",
        ),
    ] = False,
) -> None:
    """Upload a signed archive; it is scanned and queued for review. The static checks of
    plugport check run first, and errors refuse the upload."""
    from plugport.authoring import read_archive_manifest

    with reporting_errors():
        if archive.suffix == ".whl":
            raise InvalidInputError(
                f"{archive}: a registry takes .plugport archives (plugport pack); a plugin "
                "wheel is published to a package index and installed with "
                "plugport install --index-url"
            )
        signature = sig or archive.with_name(archive.name + ".sig")
        manifest = read_archive_manifest(archive)
        if not skip_check:
            _check_first(archive)
        files = {
            "archive": (archive.name, archive.read_bytes()),
            "signature": (signature.name, signature.read_bytes()),
        }
        done = connect(registry, token).call(
            "POST", f"/api/v1/plugins/{manifest.name}/versions", files=files
        )
    counts = done["scan"]["counts"]
    outcome = {
        "published": "published (trusted namespace, nothing high in the scan)",
        "pending_review": "waiting for review",
    }.get(done["status"], done["status"])
    out.print(
        f"uploaded {done['name']} {done['version']}: {outcome} "
        f"(scan: {counts['high']} high, {counts['medium']} medium, {counts['low']} low)"
    )


def _check_first(archive: Path) -> None:
    """The same objections and messages as ``plugport check``, before anything is uploaded;
    the registry's version round trip is left to the upload itself."""
    from plugport.checks import check_path
    from plugport.cli.check import show_items

    report = check_path(archive)
    if not report.passed:
        show_items(report.errors)
        count = len(report.errors)
        err.print(
            f"[bold red]refused:[/] {escape(str(archive))} has {count} "
            f"error{'s' if count != 1 else ''} (plugport check {escape(str(archive))} shows "
            "everything; --skip-check uploads anyway)"
        )
        raise typer.Exit(EXIT_FAILED)
    if report.warnings:
        out.print(
            f"check passed with {len(report.warnings)} warnings "
            f"(plugport check {escape(str(archive))} shows them)"
        )


def _review_table(items: list[dict[str, Any]]) -> Table:
    table = Table(title="Waiting for review")
    columns = ("plugin", "version", "highest finding", "permission changes", "library changes")
    for column in columns:
        table.add_column(column)
    for item in items:
        version = item["version"]
        changes = ", ".join(sorted(item["permission_diff"])) or "none"
        table.add_row(
            version["name"],
            version["version"],
            version["scan"]["highest"] or "-",
            changes,
            _library_changes(item.get("library_diff") or {}),
        )
    return table


def _library_changes(diff: dict[str, list[dict[str, Any]]]) -> str:
    parts = [f"+{d['name']} {d['version']}" for d in diff.get("added", [])]
    parts += [f"-{d['name']} {d['version']}" for d in diff.get("removed", [])]
    parts += [f"{d['name']} {d['from']} -> {d['to']}" for d in diff.get("changed", [])]
    return ", ".join(parts) or "none"


def review_list(registry: Registry = None, token: Token = None) -> None:
    """The review queue, oldest first."""
    with reporting_errors():
        items = connect(registry, token).call("GET", "/api/v1/review/queue")
    out.print(_review_table(items) if items else "nothing waits for review")


def review_show(name: str, version: str, registry: Registry = None, token: Token = None) -> None:
    """Scan findings, and the permission and library diffs against the last published version."""
    with reporting_errors():
        item = connect(registry, token).call("GET", f"/api/v1/review/{name}/{version}")
    out.print(f"{name} {version} (previous published: {item['previous_version'] or 'none'})")
    out.print_json(
        data={
            "permission_diff": item["permission_diff"],
            "library_diff": item.get("library_diff") or {},
            "python_dependencies": item["version"].get("python_dependencies"),
            "scan": item["version"]["scan"],
        }
    )


def _decide(
    action: str, name: str, version: str, *, reason: str, registry: str | None, token: str | None
) -> None:
    with reporting_errors():
        done = connect(registry, token).call(
            "POST", f"/api/v1/review/{name}/{version}/{action}", json={"reason": reason}
        )
    out.print(f"{name} {version}: {done['status']}")


def review_approve(
    name: str, version: str, reason: Reason, registry: Registry = None, token: Token = None
) -> None:
    """Publish a version waiting for review."""
    _decide("approve", name, version, reason=reason, registry=registry, token=token)


def review_reject(
    name: str, version: str, reason: Reason, registry: Registry = None, token: Token = None
) -> None:
    """Refuse a version waiting for review (its number is never reused)."""
    _decide("reject", name, version, reason=reason, registry=registry, token=token)


def yank(
    name: str, version: str, reason: Reason, registry: Registry = None, token: Token = None
) -> None:
    """Withdraw a version from resolution (exact-version installs still work)."""
    with reporting_errors():
        connect(registry, token).call(
            "POST", f"/api/v1/plugins/{name}/versions/{version}/yank", json={"reason": reason}
        )
    out.print(f"{name} {version} yanked")


def register(app: typer.Typer) -> None:
    app.command()(login)
    app.command()(publish)
    app.command()(yank)
    review = typer.Typer(help="Review uploads (needs the review scope).", no_args_is_help=True)
    review.command("list")(review_list)
    review.command("show")(review_show)
    review.command("approve")(review_approve)
    review.command("reject")(review_reject)
    app.add_typer(review, name="review")
