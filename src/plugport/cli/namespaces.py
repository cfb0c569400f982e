"""``plugport namespace``: create a namespace (admin), register a publisher key, and manage
its members (its owners, with a ``publish:<namespace>`` token). Identities are checked here
as the registry checks them, so a bad one is refused before anything is sent."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from plugport._identity import check_identity
from plugport.cli._output import out, reporting_errors
from plugport.cli._registry import connect
from plugport.cli.marketplace import Registry, Token

__all__ = ["register"]

Identity = Annotated[str, typer.Argument(help="Who: the identity their tokens speak for.")]


def namespace_create(
    name: str,
    owner: Annotated[str, typer.Option("--owner", help="Identity that owns it.")],
    trusted: Annotated[
        bool, typer.Option("--trusted", help="Skip review without high findings.")
    ] = False,
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Create a namespace (admin)."""
    with reporting_errors():
        owner = check_identity(owner, field="--owner")
        done = connect(registry, token).call(
            "POST", "/api/v1/namespaces", json={"name": name, "owner": owner, "trusted": trusted}
        )
    out.print(f"namespace {done['name']} created, owned by {', '.join(done['owners'])}")


def namespace_add_key(
    name: str,
    key_file: Annotated[Path, typer.Argument(help="The publisher's KEY.pub.")],
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Register a publisher key for a namespace (its owner with publish:NAME, or an admin)."""
    with reporting_errors():
        pem = key_file.read_text()
        done = connect(registry, token).call(
            "POST", f"/api/v1/namespaces/{name}/keys", json={"public_key_pem": pem}
        )
    out.print(f"key {done['key_id'][:16]}… may now sign for {name}")


def namespace_members(name: str, registry: Registry = None) -> None:
    """Who may publish in a namespace: its owners, then its members."""
    with reporting_errors():
        members = connect(registry, None, need_token=False).call(
            "GET", f"/api/v1/namespaces/{name}/members"
        )
    table = Table(title=f"Members of {name}")
    for column in ("identity", "role", "added", "by"):
        table.add_column(column)
    for member in members:
        added = (member["added_at"] or "")[:10] or "-"
        table.add_row(member["identity"], member["role"], added, member["added_by"] or "-")
    out.print(table)


def namespace_add_member(
    name: str,
    identity: Identity,
    owner: Annotated[
        bool, typer.Option("--owner", help="As an owner (manages keys and members too).")
    ] = False,
    registry: Registry = None,
    token: Token = None,
) -> None:
    """Give someone a role in a namespace (its owner with publish:NAME, or an admin)."""
    role = "owner" if owner else "member"
    with reporting_errors():
        identity = check_identity(identity, field="IDENTITY")
        connect(registry, token).call(
            "POST", f"/api/v1/namespaces/{name}/members", json={"identity": identity, "role": role}
        )
    out.print(f"{identity} is now {'an owner' if owner else 'a member'} of {name}")


def namespace_remove_member(
    name: str, identity: Identity, registry: Registry = None, token: Token = None
) -> None:
    """Take someone's role away (not the last owner's); to change a role, remove, add again."""
    with reporting_errors():
        identity = check_identity(identity, field="IDENTITY")
        connect(registry, token).call(
            "DELETE", f"/api/v1/namespaces/{name}/members", params={"identity": identity}
        )
    out.print(f"{identity} is no longer a member of {name}")


def register(app: typer.Typer) -> None:
    namespace = typer.Typer(
        help="Namespaces, their publisher keys and their members.", no_args_is_help=True
    )
    namespace.command("create")(namespace_create)
    namespace.command("add-key")(namespace_add_key)
    namespace.command("members")(namespace_members)
    namespace.command("add-member")(namespace_add_member)
    namespace.command("remove-member")(namespace_remove_member)
    app.add_typer(namespace, name="namespace")
