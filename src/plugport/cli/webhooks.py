"""``plugport webhooks dead/redeliver``: the operator's view of outbound webhook deliveries that
failed for good, and sending one again. Both read the host home's outbox without starting any
plugin; a running host sends a redelivered one within a second."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any

import typer

from plugport.cli._hostcommon import Home, run_host
from plugport.cli._output import out

__all__ = ["group"]


async def _now(value: Any) -> Any:
    return value


def dead(
    plugin: Annotated[str | None, typer.Argument(help="Only this plugin's.")] = None,
    limit: Annotated[int, typer.Option("--limit", help="How many, newest first.")] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    home: Home = None,
) -> None:
    """List dead letters: deliveries the receiver refused or that ran out of attempts."""
    rows = run_host(
        home,
        None,
        lambda host: _now(host.deliveries(state="dead", plugin=plugin, limit=limit)),
        sandbox="best-effort",
        plugins=False,
        read_only=True,
    )
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        out.print("no dead deliveries")
        return
    for row in rows:
        when = datetime.fromtimestamp(row["updated_at"], UTC).strftime("%Y-%m-%d %H:%M:%S")
        out.print(
            f"{row['id']}  {row['plugin']}  {row['target']}  {when}Z  "
            f"attempts {row['attempts']}: {row['last_error']}",
            markup=False,
            highlight=False,
        )
    out.print("redeliver one with: plugport webhooks redeliver ID", markup=False)


def redeliver(
    delivery_id: Annotated[str, typer.Argument(metavar="ID", help="A dead delivery's id.")],
    home: Home = None,
) -> None:
    """Send a dead delivery again, with a fresh count of attempts."""
    row = run_host(
        home,
        None,
        lambda host: _now(host.redeliver(delivery_id)),
        sandbox="best-effort",
        plugins=False,
    )
    out.print(f"delivery {row['id']} to {row['target']} is queued again", markup=False)


def group() -> typer.Typer:
    webhooks = typer.Typer(help="Outbound webhook deliveries: dead letters and redelivery.")
    webhooks.command()(dead)
    webhooks.command()(redeliver)
    return webhooks
