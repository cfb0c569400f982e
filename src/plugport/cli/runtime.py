"""Runtime commands: doctor."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table

from plugport.cli._output import EXIT_FAILED, out

__all__ = ["register"]


def doctor(
    strict: Annotated[
        bool, typer.Option("--strict", help="Exit 1 if any layer strict mode needs is missing.")
    ] = False,
) -> None:
    """Show which sandbox layers this machine offers, and the kernel facts behind each."""
    from plugport.runtime.sandbox import doctor as probe

    layers = probe()
    table = Table(title="Plugport sandbox layers")
    table.add_column("layer")
    table.add_column("available")
    table.add_column("detail")
    for layer in layers:
        mark = "[green]yes[/]" if layer.available else "[red]no[/]"
        table.add_row(layer.name, mark, layer.detail)
    out.print(table)
    missing = [layer.name for layer in layers if not layer.available]
    if missing:
        out.print(f"strict mode would refuse to start plugins: missing {', '.join(missing)}")
        if strict:
            raise typer.Exit(EXIT_FAILED)
    else:
        out.print("every layer is available: strict mode can run plugins here")


def register(app: typer.Typer) -> None:
    app.command()(doctor)
