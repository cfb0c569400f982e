"""``plugport host``: the host service (``serve``), its admin token, workspaces and tokens."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from plugport.cli._output import out, reporting_errors

__all__ = ["group"]


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


def group() -> typer.Typer:
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
