"""``plugport trust status``: how this host verifies each registry — TUF (with the versions
and expiry of the metadata it trusts) or the v1 signed index (the pinned key and the newest
index version seen) — read from the home, without contacting anyone."""

from __future__ import annotations

import typer
from rich.table import Table

from plugport.cli._hostcommon import Home, Registry, _registries, home_dir
from plugport.cli._output import out, reporting_errors
from plugport.errors import InvalidInputError

__all__ = ["register"]


def status(home: Home = None, registry: Registry = None) -> None:
    """Show how each registry is verified: TUF or the v1 signed index."""
    from plugport.host.install import HostPaths
    from plugport.host.policy import trust_policy
    from plugport.host.state import HostState
    from plugport.host.tuf_client import has_trusted_root, metadata_dir, trusted_roles

    with reporting_errors():
        root = home_dir(home).absolute()
        policy = trust_policy(root)
        paths = HostPaths(root)
        state = HostState(paths.state_file if paths.state_file.is_file() else ":memory:")
        given = _registries(registry)
        for url in given:
            if not url.startswith(("https://", "http://")):
                raise InvalidInputError(f"--registry: {url!r} is not an http:// or https:// URL")
        urls = list(dict.fromkeys([*given, *policy.tuf_roots]))
        table = Table(title=f"How {root} verifies its registries")
        for column in ("registry", "verified by", "detail"):
            table.add_column(column)
        for url in urls:
            directory = metadata_dir(root, url)
            pinned = state.registry(url)
            if has_trusted_root(directory):
                roles = trusted_roles(directory).roles
                detail = "; ".join(
                    f"{role} v{version} (expires {expires})"
                    for role, (version, expires) in roles.items()
                )
                table.add_row(url, "TUF", detail)
            elif url in policy.tuf_roots:
                table.add_row(url, "TUF", "root configured; not contacted yet")
            elif pinned is not None:
                table.add_row(
                    url,
                    "v1 signed index",
                    f"key {pinned.key_id[:16]}…, index version {pinned.index_version}",
                )
            else:
                how = (
                    "TUF from its root version 1 if it serves TUF, else the v1 signed index"
                    if policy.index_fallback
                    else "TUF from its root version 1 if it serves TUF, else refused"
                )
                table.add_row(url, "not contacted yet", how)
        out.print(table)
        out.print(
            "v1 signed index fallback: "
            + ("allowed" if policy.index_fallback else "off (index_fallback = false)")
        )


def register(app: typer.Typer) -> None:
    group = typer.Typer(help="How this host verifies registries.", no_args_is_help=True)
    group.command()(status)
    app.add_typer(group, name="trust")
