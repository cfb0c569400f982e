"""A plugin's life after publishing, from the command line: ``unyank``, ``deprecate`` /
``undeprecate``, ``unlist`` / ``relist`` (its publishers), ``suspend`` / ``unsuspend`` and
``delete`` (admins), and API tokens (``token create`` / ``token revoke``). Each is one call to
the same API the web UI uses; the registry decides who may."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from plugport._identity import check_identity
from plugport.cli._output import out, reporting_errors
from plugport.cli._registry import connect
from plugport.cli.marketplace import Reason, Registry, Token
from plugport.errors import InvalidInputError

__all__ = ["register"]


def _call(method: str, path: str, registry: str | None, token: str | None, **body: Any) -> Any:
    with reporting_errors():
        return connect(registry, token).call(method, path, **({"json": body} if body else {}))


def unyank(name: str, version: str, registry: Registry = None, token: Token = None) -> None:
    """Let resolution choose a yanked version again."""
    _call("POST", f"/api/v1/plugins/{name}/versions/{version}/unyank", registry, token)
    out.print(f"{name} {version} is no longer yanked")


def deprecate(
    name: str,
    reason: Reason,
    replaced_by: Annotated[
        str | None, typer.Option("--replaced-by", help="The plugin to use instead.")
    ] = None,
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Mark a plugin deprecated: search ranks it lower and its page says why."""
    _call(
        "POST", f"/api/v1/plugins/{name}/deprecate", registry, token,
        reason=reason, replaced_by=replaced_by,
    )  # fmt: skip
    out.print(f"{name} deprecated" + (f"; use {replaced_by}" if replaced_by else ""))


def undeprecate(name: str, registry: Registry = None, token: Token = None) -> None:
    """Withdraw a deprecation."""
    _call("DELETE", f"/api/v1/plugins/{name}/deprecate", registry, token)
    out.print(f"{name} is no longer deprecated")


def unlist(name: str, registry: Registry = None, token: Token = None) -> None:
    """Hide a plugin from search and browsing (it still installs by name)."""
    _call("POST", f"/api/v1/plugins/{name}/unlist", registry, token)
    out.print(f"{name} unlisted: not shown in search, still installable by name")


def relist(name: str, registry: Registry = None, token: Token = None) -> None:
    """Show an unlisted plugin in search again."""
    _call("POST", f"/api/v1/plugins/{name}/list", registry, token)
    out.print(f"{name} listed again")


def suspend(name: str, reason: Reason, registry: Registry = None, token: Token = None) -> None:
    """Take a plugin out of search, resolution and downloads (admin)."""
    _call("POST", f"/api/v1/plugins/{name}/suspend", registry, token, reason=reason)
    out.print(f"{name} suspended")


def unsuspend(name: str, registry: Registry = None, token: Token = None) -> None:
    """Lift a suspension (admin)."""
    _call("POST", f"/api/v1/plugins/{name}/unsuspend", registry, token)
    out.print(f"{name} is no longer suspended")


def delete(
    name: str,
    yes: Annotated[
        bool, typer.Option("--yes", help="Yes, remove every version and archive for good.")
    ] = False,
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Remove a plugin, its versions and their archives (admin). Needs --yes."""
    if not yes:
        with reporting_errors():
            raise InvalidInputError(f"--yes: deleting {name} cannot be undone; pass --yes")
    done = _call("DELETE", f"/api/v1/plugins/{name}", registry, token)
    out.print(f"{name} deleted ({done['blobs']} archives removed)")


def token_create(  # noqa: PLR0917 one parameter per command-line option
    identity: Annotated[str, typer.Option("--identity", help="Who the token speaks for.")],
    scope: Annotated[
        list[str],
        typer.Option("--scope", help="admin, review or publish:<namespace>; repeat for more."),
    ],
    expires_days: Annotated[
        int, typer.Option("--expires-days", help="Valid for this many days (1 to 3650).")
    ] = 90,
    description: Annotated[str, typer.Option("--description", help="What it is for.")] = "",
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Print a new API token (shown once; admin)."""
    with reporting_errors():
        identity = check_identity(identity, field="--identity")
    done = _call(
        "POST", "/api/v1/tokens", registry, token,
        identity=identity, scopes=scope, expires_in_days=expires_days, description=description,
    )  # fmt: skip
    print(done["token"])  # plain stdout: scripts capture it


def token_revoke(prefix: str, registry: Registry = None, token: Token = None) -> None:
    """Revoke a token by its prefix (its owner or an admin); it stops working at once."""
    _call("DELETE", f"/api/v1/tokens/{prefix}", registry, token)
    out.print(f"token {prefix} revoked")


def register(app: typer.Typer) -> None:
    for command in (unyank, deprecate, undeprecate, unlist, relist, suspend, unsuspend, delete):
        app.command()(command)
    tokens = typer.Typer(help="API tokens of a registry.", no_args_is_help=True)
    tokens.command("create")(token_create)
    tokens.command("revoke")(token_revoke)
    app.add_typer(tokens, name="token")
