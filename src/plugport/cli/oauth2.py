"""``plugport oauth2``: connect, list and revoke the OAuth2 accounts of a plugin's credentials,
through a running host service's API (it holds the tokens and receives the provider's
callback)."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from plugport.cli._output import out, reporting_errors

__all__ = ["register"]

Url = Annotated[
    str,
    typer.Option(
        "--url",
        envvar="PLUGPORT_HOST_SERVICE_URL",
        help="The host service, e.g. http://127.0.0.1:8100.",
    ),
]
Token = Annotated[
    str,
    typer.Option(
        "--token", envvar="PLUGPORT_HOST_SERVICE_TOKEN", help="A token for the workspace."
    ),
]
Workspace = Annotated[str, typer.Option("--workspace", "-w", help="The workspace.")]
Account = Annotated[str, typer.Option("--account", help="The account's label.")]


def _call(method: str, url: str, token: str, path: str, **options: Any) -> Any:
    import httpx

    from plugport._tls import default_context
    from plugport.errors import NotFoundError, PlugportError

    try:
        with httpx.Client(
            base_url=url, timeout=30, trust_env=False, verify=default_context(trust_env=False)
        ) as client:
            answer = client.request(
                method, path, headers={"Authorization": f"Bearer {token}"}, **options
            )
    except httpx.HTTPError as exc:
        raise PlugportError(f"could not reach the host service at {url}: {exc}") from None
    if answer.status_code >= 400:
        try:
            message = answer.json()["error"]["message"]
        except (ValueError, KeyError, TypeError):
            message = answer.text[:300]
        if answer.status_code == 404:
            raise NotFoundError("resource", path, message)
        raise PlugportError(f"the host service answered {answer.status_code}: {message}")
    return answer.json()


def _base(workspace: str, plugin: str, credential: str) -> str:
    return f"/api/v1/workspaces/{workspace}/installations/{plugin}/oauth2/{credential}"


def connect(  # noqa: PLR0917 one parameter per command-line option
    plugin: str,
    credential: str,
    workspace: Workspace,
    url: Url,
    token: Token,
    account: Account = "default",
) -> None:
    """Connect an account: prints the URL to open (authorization code), or fetches a token at
    once (client credentials)."""
    with reporting_errors():
        path = _base(workspace, plugin, credential)
        info = _call("GET", url, token, path)
        if info["grant"] == "client_credentials":
            shown = _call("POST", url, token, path, json={"account": account})
            out.print(f"Connected account {shown['account']!r} ({' '.join(shown['scopes'])}).")
            return
        out.print("Open this URL in a browser signed in to the workspace (good for 10 minutes")
        out.print("once you open it); the provider sends you back to the host service:")
        out.print(f"{info['start_url']}?account={account}")


def list_(plugin: str, credential: str, workspace: Workspace, url: Url, token: Token) -> None:
    """The credential's connected accounts: scopes, expiry, which is the default."""
    import time

    with reporting_errors():
        info = _call("GET", url, token, _base(workspace, plugin, credential))
        if not info["accounts"]:
            out.print(f"No account connected; run: plugport oauth2 connect {plugin} {credential}")
        for item in info["accounts"]:
            expires = item["expires_at"]
            left = "no expiry" if expires is None else f"expires in {expires - time.time():.0f} s"
            mark = " (default)" if item["default"] else ""
            out.print(f"{item['account']}{mark}: {' '.join(item['scopes'])}; {left}")


def revoke(  # noqa: PLR0917 one parameter per command-line option
    plugin: str,
    credential: str,
    account: str,
    workspace: Workspace,
    url: Url,
    token: Token,
) -> None:
    """Revoke an account's tokens at the provider (when it can) and forget them."""
    with reporting_errors():
        answer = _call("DELETE", url, token, f"{_base(workspace, plugin, credential)}/{account}")
        where = {
            True: "revoked at the provider",
            False: "the provider's revocation failed",
            None: "the provider has no revocation endpoint",
        }[answer["revoked_at_provider"]]
        out.print(f"Forgot account {account!r} ({where}).")


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="OAuth2 accounts of plugins' credentials.", no_args_is_help=True)
    group.command()(connect)
    group.command("list")(list_)
    group.command()(revoke)
    app.add_typer(group, name="oauth2")
